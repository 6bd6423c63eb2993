"""Small fully convolutional networks for label super-resolution.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FCN", "LearnedPriorFCN", "cpu_channels_last"]


def cpu_channels_last(x: Tensor) -> Tensor:
    """``x`` in channels-last memory format if it is a ``(B, C, H, W)`` CPU tensor.

    oneDNN's native layout: the CPU convolutions of ``map``'s FCN run ~1.4x (a training
    step) to ~2.4x (a 1024 px prediction window) faster than in NCHW, the same values up to
    float rounding (``benchmarks/training.py``, ``benchmarks/full_tile.py``). Other devices
    and shapes get ``x`` as it is.

    Example:
        >>> cpu_channels_last(torch.zeros(1, 4, 2, 3)).stride()
        (24, 1, 12, 4)
    """
    if x.device.type == "cpu" and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


class FCN(nn.Module):
    """A stack of 'same'-padded convolutions with LeakyReLU, then a 1x1 classifier.

    With the defaults (5 layers of 3x3, 128 filters) this is the paper's land-cover
    network, receptive field 11 px. It generalises :class:`torchgeo.models.FCN`, which
    fixes the depth at 5 and the kernel at 3; for those settings the two have the same
    layers and the same ``state_dict`` keys (``backbone.*``, ``last.*``), so weights load
    either way.

    Args:
        in_channels: number of input bands.
        classes: number of output classes.
        num_filters: filters per hidden layer.
        num_layers: number of hidden convolution layers.
        kernel_size: kernel size of every hidden layer, or one size per layer (odd).

    Example:
        >>> import torch
        >>> net = FCN(4, 5, num_filters=8)
        >>> net(torch.zeros(2, 4, 32, 32)).shape
        torch.Size([2, 5, 32, 32])
        >>> net.receptive_field
        11
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        num_filters: int = 128,
        num_layers: int = 5,
        kernel_size: int | Sequence[int] = 3,
    ) -> None:
        super().__init__()
        kernels = [kernel_size] * num_layers if isinstance(kernel_size, int) else list(kernel_size)
        if num_layers < 1 or len(kernels) != num_layers:
            raise ValueError(
                f"need num_layers >= 1 and one kernel size per layer, got "
                f"num_layers={num_layers}, kernel_size={kernel_size}"
            )
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"kernel sizes must be odd and positive, got {kernels}")
        layers: list[nn.Module] = []
        channels = in_channels
        for k in kernels:
            layers += [
                nn.Conv2d(channels, num_filters, kernel_size=k, padding=k // 2),
                nn.LeakyReLU(inplace=True),
            ]
            channels = num_filters
        self.backbone = nn.Sequential(*layers)
        self.last = nn.Conv2d(num_filters, classes, kernel_size=1)
        self.kernels = tuple(kernels)

    @property
    def receptive_field(self) -> int:
        """Side of the square input window that one output pixel sees."""
        return 1 + sum(k - 1 for k in self.kernels)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(B, classes, H, W)`` for input ``(B, in_channels, H, W)``."""
        logits: Tensor = self.last(self.backbone(x))
        return logits


class LearnedPriorFCN(FCN):
    """The paper's learned-prior network (§4.4): three layers of kernels 11, 7, 5.

    Its input is a stack of weak sources on the imagery grid (a remapped NLCD prior,
    rasterised buildings, roads, water bodies, waterways); its output, after softmax,
    is a prior over the target classes. Receptive field 21 px.

    Args:
        in_channels: number of stacked weak-source channels.
        classes: number of target classes.
        num_filters: filters per hidden layer (paper: 128).
        kernel_size: kernel size per layer (paper: 11, 7, 5).
    """

    def __init__(
        self,
        in_channels: int,
        classes: int,
        num_filters: int = 128,
        kernel_size: Sequence[int] = (11, 7, 5),
    ) -> None:
        super().__init__(in_channels, classes, num_filters, len(kernel_size), kernel_size)
