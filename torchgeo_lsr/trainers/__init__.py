"""Lightning tasks (TorchGeo trainers)."""

from .base import PatchTask
from .learned_prior import LearnedPriorTask, PixelNLL
from .lsr import LabelSuperResolutionTask, LossName

__all__ = ["LabelSuperResolutionTask", "LearnedPriorTask", "LossName", "PatchTask", "PixelNLL"]
