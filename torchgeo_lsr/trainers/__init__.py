"""Lightning tasks (TorchGeo trainers)."""

from .lsr import LabelSuperResolutionTask, LossName

__all__ = ["LabelSuperResolutionTask", "LossName"]
