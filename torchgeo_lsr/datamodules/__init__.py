"""Lightning data modules."""

from .learned_prior import LearnedPriorDataModule
from .lsr import LSRDataModule, ResumableLoader, band_statistics, dihedral_augment

__all__ = [
    "LSRDataModule",
    "LearnedPriorDataModule",
    "ResumableLoader",
    "band_statistics",
    "dihedral_augment",
]
