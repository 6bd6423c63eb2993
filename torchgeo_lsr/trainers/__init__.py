"""Lightning tasks (TorchGeo trainers)."""

from .learned_prior import LearnedPriorTask, PixelNLL
from .lsr import LabelSuperResolutionTask, LossName

__all__ = ["LabelSuperResolutionTask", "LearnedPriorTask", "LossName", "PixelNLL"]
