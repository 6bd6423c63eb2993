"""Lightning tasks (TorchGeo trainers)."""

from .base import PatchTask
from .learned_prior import LearnedPriorTask, PixelNLL
from .lsr import LabelSuperResolutionTask, LossName, LRSchedule, WarmupLoss

__all__ = [
    "LRSchedule",
    "LabelSuperResolutionTask",
    "LearnedPriorTask",
    "LossName",
    "PatchTask",
    "PixelNLL",
    "WarmupLoss",
]
