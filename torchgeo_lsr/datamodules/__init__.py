"""Lightning data modules."""

from .learned_prior import LearnedPriorDataModule
from .lsr import LSRDataModule, dihedral_augment

__all__ = ["LSRDataModule", "LearnedPriorDataModule", "dihedral_augment"]
