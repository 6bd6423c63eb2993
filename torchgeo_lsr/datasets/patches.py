"""Tensor patches from aligned in-memory tiles.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..samplers.patches import PatchIndex
from .aligned import AlignedTile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..classes import ClassScheme

__all__ = ["PatchDataset"]

#: numpy dtypes torch holds as they are; others (e.g. uint16) become float32.
_KEEP = (np.uint8, np.int16, np.int32, np.float32, np.float64)


def _torch_dtype(array: np.ndarray) -> np.ndarray:
    return array if array.dtype.type in _KEEP else array.astype(np.float32)


class PatchDataset(Dataset[dict[str, Tensor]]):
    """Map a :class:`~torchgeo_lsr.samplers.PatchIndex` to a tensor-only sample.

    Samples hold ``image`` ``(C, S, S)`` in its stored dtype (uint8 NAIP stays uint8,
    which halves to quarters the copying; the data module converts to float on the
    device; dtypes torch lacks, such as uint16, become float32), ``prior``
    ``(K, S, S)`` float32 when the tiles have one, ``mask`` ``(S, S)`` int64 when they
    have labels, and ``location`` ``(4,)`` int64 ``[tile, row, col, size]``. No CRS or
    bounds objects: they differ between TorchGeo lines and do not collate.

    Args:
        tiles: aligned tiles.
    """

    def __init__(self, tiles: Sequence[AlignedTile]) -> None:
        self.tiles = list(tiles)

    def __getitem__(self, index: PatchIndex | tuple[int, int, int, int]) -> dict[str, Tensor]:
        """Cut one patch out of its tile."""
        t, r, c, s = index
        tile = self.tiles[t]
        window = np.s_[..., r : r + s, c : c + s]
        sample = {
            "image": torch.from_numpy(_torch_dtype(np.ascontiguousarray(tile.image[window]))),
            "location": torch.tensor([t, r, c, s], dtype=torch.long),
        }
        if tile.prior is not None:
            sample["prior"] = torch.from_numpy(np.ascontiguousarray(tile.prior[window]))
        if tile.mask is not None:
            sample["mask"] = torch.from_numpy(np.ascontiguousarray(tile.mask[window]))
        return sample

    def plot(
        self,
        sample: dict[str, Tensor],
        scheme: ClassScheme | int | None = None,
        *,
        show_titles: bool = True,
        suptitle: str | None = None,
    ) -> Figure:
        """Draw a sample's image, prior (class colours mixed by probability) and labels.

        Args:
            sample: one sample of this dataset (or with ``prediction``, ``q``, ``r``).
            scheme: class colours and names; default a palette of the prior's class count
                (else the labels' largest class + 1).
            show_titles: a title over each panel.
            suptitle: a title over the figure.

        Returns:
            The figure (:func:`torchgeo_lsr.plot.plot_sample`).
        """
        from ..plot import plot_sample

        if scheme is None:
            if "prior" in sample:
                scheme = int(sample["prior"].shape[-3])
            else:
                scheme = int(sample["mask"].max()) + 1 if "mask" in sample else 1
        return plot_sample(sample, scheme, show_titles=show_titles, suptitle=suptitle)

    def __len__(self) -> int:
        """Number of tiles (patches are addressed by the sampler, not by position)."""
        return len(self.tiles)
