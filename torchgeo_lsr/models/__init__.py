"""Networks for label super-resolution."""

from .fcn import FCN, LearnedPriorFCN, cpu_channels_last

__all__ = ["FCN", "LearnedPriorFCN", "cpu_channels_last"]
