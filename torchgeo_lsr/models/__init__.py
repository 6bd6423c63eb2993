"""Networks for label super-resolution."""

from .fcn import FCN, LearnedPriorFCN

__all__ = ["FCN", "LearnedPriorFCN"]
