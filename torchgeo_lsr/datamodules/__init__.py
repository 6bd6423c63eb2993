"""Lightning data modules."""

from .learned_prior import LearnedPriorDataModule
from .lsr import LSRDataModule, band_statistics, dihedral_augment

__all__ = ["LSRDataModule", "LearnedPriorDataModule", "band_statistics", "dihedral_augment"]
