"""Lightning data modules."""

from .lsr import LSRDataModule, dihedral_augment

__all__ = ["LSRDataModule", "dihedral_augment"]
