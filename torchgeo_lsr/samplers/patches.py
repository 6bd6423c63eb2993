"""Patch samplers over in-memory tiles.

A sampler yields :class:`PatchIndex` tuples ``(tile, row, col, size)`` in pixel units of
the imagery grid; :class:`torchgeo_lsr.datasets.PatchDataset` turns them into tensors.
They are plain index samplers (no bounding boxes), so they behave the same on every
TorchGeo line.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, TypeVar

import torch
from torch.utils.data import Sampler

T = TypeVar("T")

__all__ = ["GridPatchSampler", "PatchIndex", "RandomPatchSampler", "grid_offsets"]


class PatchIndex(NamedTuple):
    """Location of a square patch: tile index, top row, left column, side in pixels."""

    tile: int
    row: int
    col: int
    size: int


def _check(shapes: Sequence[tuple[int, int]], size: int) -> None:
    if not shapes:
        raise ValueError("no tiles to sample from (shapes is empty)")
    if size < 1:
        raise ValueError(f"patch_size must be >= 1, got {size}")
    small = [i for i, (h, w) in enumerate(shapes) if h < size or w < size]
    if small:
        raise ValueError(
            f"tiles {small} are smaller than patch_size={size} px "
            f"(shapes {[shapes[i] for i in small]}); use a smaller patch_size"
        )


class _Resumable:
    """Lets an epoch's iteration start part-way, with the same draws as a full one.

    :meth:`resume_at` asks the next iteration of ``epoch`` to skip its first ``items``
    (patches, or batches for a batch sampler): they are drawn, so the random stream is
    the same as in an uninterrupted epoch, but not yielded. This is how a training run
    killed mid-epoch resumes exactly (see
    :class:`~torchgeo_lsr.datamodules.ResumableLoader`).
    """

    epoch: int
    _skip: dict[int, int]

    def resume_at(self, epoch: int, items: int) -> None:
        """Skip the first ``items`` of the next iteration of ``epoch``."""
        if items < 0:
            raise ValueError(f"items must be >= 0, got {items}")
        self._skip = {int(epoch): int(items)}

    def _skipping(self, items: Iterator[T]) -> Iterator[T]:
        skip = getattr(self, "_skip", {}).pop(self.epoch, 0)
        self._skip = {}
        for i, item in enumerate(items):
            if i >= skip:
                yield item


class RandomPatchSampler(_Resumable, Sampler[PatchIndex]):
    """Random patches fully inside their tile, tiles drawn in proportion to their area.

    Consecutive draws are independent, so every batch mixes tiles (QR/RQ's batch
    denominator then sees the region's diversity, unlike TorchGeo's
    ``RandomBatchGeoSampler`` that draws a whole batch from one tile).

    Args:
        shapes: ``(H, W)`` of each tile.
        patch_size: side of the square patches.
        length: patches per epoch.
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e`` (call
            :meth:`set_epoch`), so runs are reproducible yet epochs differ.
    """

    def __init__(
        self, shapes: Sequence[tuple[int, int]], patch_size: int, length: int, seed: int = 0
    ) -> None:
        _check(shapes, patch_size)
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.shapes = [tuple(s) for s in shapes]
        self.patch_size = patch_size
        self.length = length
        self.seed = seed
        self.epoch = 0
        areas = torch.tensor([h * w for h, w in self.shapes], dtype=torch.float64)
        self.weights = areas / areas.sum()

    def set_epoch(self, epoch: int) -> None:
        """Use the random stream of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[PatchIndex]:
        """Yield ``length`` random patch locations."""
        yield from self._skipping(self._draw())
        self.epoch += 1

    def _draw(self) -> Iterator[PatchIndex]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        tiles = torch.multinomial(self.weights, self.length, replacement=True, generator=g)
        u = torch.rand(self.length, 2, generator=g, dtype=torch.float64)
        for t, (ur, uc) in zip(tiles.tolist(), u.tolist(), strict=True):
            h, w = self.shapes[t]
            row = int(ur * (h - self.patch_size + 1))
            col = int(uc * (w - self.patch_size + 1))
            yield PatchIndex(t, row, col, self.patch_size)

    def __len__(self) -> int:
        """Patches per epoch."""
        return self.length


def _random_patch(shape: tuple[int, int], size: int, tile: int, g: torch.Generator) -> PatchIndex:
    h, w = shape
    row = int(torch.randint(0, h - size + 1, (1,), generator=g))
    col = int(torch.randint(0, w - size + 1, (1,), generator=g))
    return PatchIndex(tile, row, col, size)


class TileQuotaSampler(_Resumable, Sampler[PatchIndex]):
    """Exactly ``per_tile`` random patches from every tile per epoch (paper: 400).

    Patches are interleaved across tiles in a random order, so any run of consecutive
    patches (a batch) comes from many tiles.

    Args:
        shapes: ``(H, W)`` of each tile.
        patch_size: side of the square patches.
        per_tile: patches drawn from each tile per epoch.
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e``.
    """

    def __init__(
        self, shapes: Sequence[tuple[int, int]], patch_size: int, per_tile: int, seed: int = 0
    ) -> None:
        _check(shapes, patch_size)
        if per_tile < 1:
            raise ValueError(f"per_tile must be >= 1, got {per_tile}")
        self.shapes = [(int(h), int(w)) for h, w in shapes]
        self.patch_size = patch_size
        self.per_tile = per_tile
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the random stream of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[PatchIndex]:
        """Yield ``per_tile`` patches of every tile, shuffled together."""
        yield from self._skipping(self._draw())
        self.epoch += 1

    def _draw(self) -> Iterator[PatchIndex]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        tiles = torch.arange(len(self.shapes)).repeat(self.per_tile)
        for t in tiles[torch.randperm(len(tiles), generator=g)].tolist():
            yield _random_patch(self.shapes[t], self.patch_size, t, g)

    def __len__(self) -> int:
        """Patches per epoch."""
        return self.per_tile * len(self.shapes)


class MixedTileBatchSampler(_Resumable, Sampler[list[PatchIndex]]):
    r"""Batches of random patches, each batch drawn from as many distinct tiles as possible.

    Every batch takes its patches from ``min(batch_size, tiles_per_batch, #tiles)``
    distinct tiles (round-robin within the batch), so QR/RQ's batch denominator
    :math:`\sum_j q_j(l)` sees the region's diversity. Use as a DataLoader
    ``batch_sampler``.

    Args:
        shapes: ``(H, W)`` of each tile.
        patch_size: side of the square patches.
        batch_size: patches per batch.
        length: batches per epoch.
        tiles_per_batch: cap on distinct tiles per batch (None: as many as possible).
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e``.
    """

    def __init__(
        self,
        shapes: Sequence[tuple[int, int]],
        patch_size: int,
        batch_size: int,
        length: int,
        tiles_per_batch: int | None = None,
        seed: int = 0,
    ) -> None:
        _check(shapes, patch_size)
        if batch_size < 1 or length < 1:
            raise ValueError(f"batch_size and length must be >= 1, got {batch_size}, {length}")
        self.shapes = [(int(h), int(w)) for h, w in shapes]
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.length = length
        cap = len(self.shapes) if tiles_per_batch is None else tiles_per_batch
        if cap < 1:
            raise ValueError(f"tiles_per_batch must be >= 1, got {tiles_per_batch}")
        self.tiles_per_batch = min(cap, batch_size, len(self.shapes))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the random stream of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[PatchIndex]]:
        """Yield ``length`` batches of patch locations."""
        yield from self._skipping(self._draw())
        self.epoch += 1

    def _draw(self) -> Iterator[list[PatchIndex]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        for _ in range(self.length):
            tiles = torch.randperm(len(self.shapes), generator=g)[: self.tiles_per_batch].tolist()
            yield [
                _random_patch(self.shapes[t], self.patch_size, t, g)
                for t in (tiles[i % len(tiles)] for i in range(self.batch_size))
            ]

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.length


def grid_offsets(extent: int, size: int, stride: int) -> list[int]:
    """Offsets of windows of ``size`` with ``stride`` covering ``[0, extent)`` exactly.

    The last window is shifted inward so it ends at ``extent`` (no overhang), unlike
    TorchGeo's ``GridGeoSampler``, whose last chips extend past the tile.

    Example:
        >>> grid_offsets(10, 4, 4)
        [0, 4, 6]
    """
    if size > extent:
        raise ValueError(f"window {size} is larger than the extent {extent}")
    if not 1 <= stride <= size:
        raise ValueError(f"stride must be in [1, window={size}] to cover every pixel, got {stride}")
    offsets = list(range(0, extent - size + 1, stride))
    if offsets[-1] != extent - size:
        offsets.append(extent - size)
    return offsets


class GridPatchSampler(Sampler[PatchIndex]):
    """Patches on a regular grid that covers every tile to its edges, never beyond.

    Args:
        shapes: ``(H, W)`` of each tile.
        patch_size: side of the square patches.
        stride: step between patches; ``patch_size - stride`` is the overlap
            (default: no overlap).
        rank: this process's shard (distributed evaluation).
        num_replicas: number of shards; shard ``rank`` takes every ``num_replicas``-th
            patch from the ``rank``-th, so the shards are disjoint and cover the grid.
    """

    def __init__(
        self,
        shapes: Sequence[tuple[int, int]],
        patch_size: int,
        stride: int | None = None,
        rank: int = 0,
        num_replicas: int = 1,
    ) -> None:
        _check(shapes, patch_size)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
        self.shapes = [tuple(s) for s in shapes]
        self.patch_size = patch_size
        self.stride = patch_size if stride is None else stride
        self.indices = [
            PatchIndex(t, r, c, patch_size)
            for t, (h, w) in enumerate(self.shapes)
            for r in grid_offsets(h, patch_size, self.stride)
            for c in grid_offsets(w, patch_size, self.stride)
        ][rank::num_replicas]

    def __iter__(self) -> Iterator[PatchIndex]:
        """Yield every grid patch (of this shard), tile by tile, row-major."""
        return iter(self.indices)

    def __len__(self) -> int:
        """Number of grid patches."""
        return len(self.indices)
