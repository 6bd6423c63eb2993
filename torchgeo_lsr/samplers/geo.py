"""The patch samplers of :mod:`~torchgeo_lsr.samplers.patches` on any TorchGeo ``GeoDataset``.

Each row of ``dataset.index`` (a footprint and a time interval) is one *tile*: the
bounding box of its footprint, counted in pixels of ``dataset.res`` from its top-left
corner (row 0 is the top, ``maxy``, edge; column 0 the left, ``minx``, edge). The samplers
here hand the tiles' pixel shapes to the pixel samplers of
:mod:`~torchgeo_lsr.samplers.patches` and map each :class:`~.patches.PatchIndex` they draw
to a TorchGeo query, so the draws are literally those of the pixel sampler over the same
shapes and seed, and the queries index any ``GeoDataset`` (``RasterDataset``,
``VectorDataset``, ``IntersectionDataset``, ``UnionDataset``, ...).

A query is the fully resolved GeoSlice ``(slice(minx, maxx, xres), slice(miny, maxy, yres),
slice(mint, maxt, 1))``: ``maxx - minx = size * xres``, ``maxy - miny = size * yres`` (CRS
units) and the time slice is the index row's interval. TorchGeo's own samplers leave the
steps out (0.8.1's ``RandomGeoSampler`` / ``GridGeoSampler`` yield ``(x, y, t)`` slices,
0.10's ``RandomPatchSampler`` / ``GriddedPatchSampler`` ``(x, y)``);
``GeoDataset._disambiguate_slice`` fills a missing step with ``dataset.res`` and ``1``, so
on both lines the dataset reads exactly what it reads for a TorchGeo query of the same
window. The steps are explicit so the window keeps the res its shapes were counted at even
if ``dataset.res`` is changed later.

Only ``dataset.index`` (footprints in ``dataset.crs`` and a ``datetime`` IntervalIndex) and
``dataset.res`` are read, when the sampler is built. The patches are aligned to each
footprint's top-left corner; when that corner lies on the files' pixel grid (a
``RasterDataset`` read in its files' CRS and res), every read is an exact window of a file,
with no resampling. Like TorchGeo's samplers, these sample a footprint's bounding box: on a
footprint that is not a rectangle (a reprojected tile, an intersection of two) a patch may
cover nodata.

All four pixel samplers have a face here; none needs anything a ``GeoDataset`` lacks, since
a tile only needs a pixel shape, which every index row has at the dataset's res. There is
no ``toi`` argument: to sample some dates only, subset ``dataset.index`` by its
``datetime`` intervals before building the sampler.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
from torchgeo.samplers import BatchGeoSampler, GeoSampler

from .patches import (
    GridPatchSampler,
    MixedTileBatchSampler,
    PatchIndex,
    RandomPatchSampler,
    TileQuotaSampler,
)

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry
    from torchgeo.datasets import GeoDataset

__all__ = [
    "GeoQuery",
    "GeoTile",
    "GridGeoPatchSampler",
    "MixedTileBatchGeoSampler",
    "RandomGeoPatchSampler",
    "TileQuotaGeoSampler",
    "geo_tiles",
    "patch_query",
]

#: A fully resolved TorchGeo query: ``(x, y, t)`` slices with their steps (res, res, 1).
GeoQuery = tuple[slice, slice, slice]

#: Tolerance, in pixels, when footprint bounds are counted in pixels (float round-off).
_EPS = 1e-6


class GeoTile(NamedTuple):
    """One row of a ``GeoDataset``'s index as a tile of pixels.

    Attributes:
        iloc: position of the row in ``dataset.index``.
        left: x of the tile's left edge, CRS units.
        top: y of the tile's top edge, CRS units (pixel row 0 starts here).
        shape: ``(H, W)`` of the tile in pixels of the sampler's res.
        interval: the row's time interval (``dataset.index.index[iloc]``).
    """

    iloc: int
    left: float
    top: float
    shape: tuple[int, int]
    interval: pd.Interval[Any]


def geo_tiles(
    dataset: GeoDataset, patch_size: int, roi: BaseGeometry | None = None
) -> tuple[list[GeoTile], tuple[float, float]]:
    """The tiles of ``dataset.index`` that hold a ``patch_size`` patch, and the res used.

    A tile is the bounding box of a row's footprint, in whole pixels of ``dataset.res``
    counted from its top-left corner (a partial last row or column is left out). With
    ``roi``, a tile is the part of that pixel grid inside the bounding box of
    ``footprint & roi`` (whole pixels only, so patches stay on the footprint's grid).
    Rows whose tile is smaller than ``patch_size`` in either side are left out.

    Args:
        dataset: a ``torchgeo.datasets.GeoDataset`` (only ``index`` and ``res`` are read).
        patch_size: side of the square patches, pixels.
        roi: region of interest, in ``dataset.crs`` (default: everything).

    Returns:
        The kept tiles (in index order) and ``(xres, yres)``, CRS units per pixel.

    Raises:
        ValueError: if ``patch_size < 1``, the res is not positive, the index is empty,
            or no tile holds a patch.
    """
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    xres, yres = (float(r) for r in dataset.res)
    if not (xres > 0 and yres > 0):
        raise ValueError(f"dataset.res must be positive, got {tuple(dataset.res)}")
    index = dataset.index
    if len(index) == 0:
        raise ValueError("dataset.index is empty: no footprints to sample from")
    footprints = index.geometry.bounds.to_numpy(dtype=float)
    if roi is None:
        regions = footprints
        empty = [False] * len(index)
    else:
        clipped = index.geometry.intersection(roi)
        regions = clipped.bounds.to_numpy(dtype=float)
        empty = list(clipped.is_empty)

    tiles: list[GeoTile] = []
    shapes: list[tuple[int, int]] = []
    for i, ((fminx, _, _, fmaxy), (minx, miny, maxx, maxy)) in enumerate(
        zip(footprints, regions, strict=True)
    ):
        if empty[i]:
            shapes.append((0, 0))
            continue
        c0 = math.ceil((minx - fminx) / xres - _EPS)
        c1 = math.floor((maxx - fminx) / xres + _EPS)
        r0 = math.ceil((fmaxy - maxy) / yres - _EPS)
        r1 = math.floor((fmaxy - miny) / yres + _EPS)
        shape = (max(r1 - r0, 0), max(c1 - c0, 0))
        shapes.append(shape)
        if min(shape) >= patch_size:
            left, top = float(fminx + c0 * xres), float(fmaxy - r0 * yres)
            tiles.append(GeoTile(i, left, top, shape, index.index[i]))
    if not tiles:
        where = "" if roi is None else " inside roi"
        raise ValueError(
            f"no footprint of dataset.index holds a {patch_size} x {patch_size} px patch"
            f"{where} at res {(xres, yres)}: tile shapes (H, W) px {shapes}; "
            "use a smaller patch_size or a finer res"
        )
    return tiles, (xres, yres)


def patch_query(tile: GeoTile, patch: PatchIndex, res: tuple[float, float]) -> GeoQuery:
    """The TorchGeo query of pixel patch ``patch`` of ``tile``.

    Args:
        tile: the tile the patch is in.
        patch: the patch, pixels (row 0 at the tile's top edge).
        res: ``(xres, yres)``, CRS units per pixel.

    Returns:
        ``(slice(minx, maxx, xres), slice(miny, maxy, yres), slice(mint, maxt, 1))``.

    Example:
        >>> import pandas as pd
        >>> t = pd.Timestamp("2020-01-01")
        >>> tile = GeoTile(0, left=100.0, top=50.0, shape=(20, 30), interval=pd.Interval(t, t))
        >>> x, y, _ = patch_query(tile, PatchIndex(0, row=2, col=3, size=4), (0.5, 1.0))
        >>> (x.start, x.stop, x.step), (y.start, y.stop, y.step)
        ((101.5, 103.5, 0.5), (44.0, 48.0, 1.0))
    """
    xres, yres = res
    minx = tile.left + patch.col * xres
    maxy = tile.top - patch.row * yres
    return (
        slice(minx, minx + patch.size * xres, xres),
        slice(maxy - patch.size * yres, maxy, yres),
        slice(tile.interval.left, tile.interval.right, 1),
    )


class _GeoTiles:
    """The tiles of a dataset and the map from pixel patches to queries.

    TorchGeo's ``GeoSampler.__init__`` is not called: it differs between the lines (0.8:
    ``(dataset, roi, toi)``, clipping the index to ``roi`` off the pixel grid; 0.10's
    ``torchgeo.samplers.GeoSampler`` has none), and these samplers set the attributes it
    sets (``index``, ``res``, ``roi``) themselves, the same on both lines. Nor is
    ``BatchGeoSampler.__init__`` (the same on both lines), for the same ``roi`` reason.
    """

    index: Any
    res: tuple[float, float]
    roi: BaseGeometry | None
    tiles: list[GeoTile]

    def _init_tiles(self, dataset: GeoDataset, patch_size: int, roi: BaseGeometry | None) -> None:
        self.tiles, self.res = geo_tiles(dataset, patch_size, roi)
        self.index = dataset.index
        self.roi = roi

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """``(H, W)`` in pixels of each tile, in the order of :attr:`tiles`."""
        return [t.shape for t in self.tiles]

    def query(self, patch: PatchIndex) -> GeoQuery:
        """The TorchGeo query of a patch of tile ``patch.tile`` (see :func:`patch_query`)."""
        return patch_query(self.tiles[patch.tile], patch, self.res)


class _Epochs:
    """``epoch``, ``set_epoch`` and ``resume_at``, forwarded to the pixel sampler."""

    pixel_sampler: RandomPatchSampler | TileQuotaSampler | MixedTileBatchSampler

    @property
    def epoch(self) -> int:
        """The epoch whose random stream the next iteration uses."""
        return self.pixel_sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Use the random stream of ``epoch`` on the next iteration."""
        self.pixel_sampler.set_epoch(epoch)

    def resume_at(self, epoch: int, items: int) -> None:
        """Skip the first ``items`` of the next iteration of ``epoch`` (drawn, not yielded).

        See :class:`~torchgeo_lsr.samplers.patches._Resumable`.
        """
        self.pixel_sampler.resume_at(epoch, items)


class RandomGeoPatchSampler(_Epochs, _GeoTiles, GeoSampler):
    """Random patches inside the footprints of a ``GeoDataset``, tiles drawn by area.

    The draws of :class:`~torchgeo_lsr.samplers.RandomPatchSampler` over the tiles'
    pixel shapes (consecutive draws independent, so every batch mixes tiles), as TorchGeo
    queries. TorchGeo's nearest equivalents are ``RandomGeoSampler`` (0.8) and
    ``RandomPatchSampler`` (0.10), which use the global torch / a numpy generator rather
    than a per-epoch seed.

    Args:
        dataset: any ``torchgeo.datasets.GeoDataset``.
        patch_size: side of the square patches, pixels of ``dataset.res``.
        length: patches per epoch.
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e``.
        roi: region of interest, in ``dataset.crs`` (see :func:`geo_tiles`).

    Raises:
        ValueError: if no footprint holds a patch (see :func:`geo_tiles`), or ``length < 1``.

    Example:
        .. code-block:: python

            sampler = RandomGeoPatchSampler(naip, patch_size=256, length=1000, seed=0)
            loader = DataLoader(naip, sampler=sampler, batch_size=16, collate_fn=stack_samples)
            for epoch in range(epochs):
                sampler.set_epoch(epoch)
                for batch in loader:  # batch["image"]: (16, C, 256, 256)
                    ...
    """

    pixel_sampler: RandomPatchSampler

    def __init__(
        self,
        dataset: GeoDataset,
        patch_size: int,
        length: int,
        seed: int = 0,
        roi: BaseGeometry | None = None,
    ) -> None:
        self._init_tiles(dataset, patch_size, roi)
        self.pixel_sampler = RandomPatchSampler(self.shapes, patch_size, length, seed)

    def __iter__(self) -> Iterator[GeoQuery]:
        """Yield ``length`` queries of ``patch_size`` px squares."""
        for patch in self.pixel_sampler:
            yield self.query(patch)

    def __len__(self) -> int:
        """Patches per epoch."""
        return len(self.pixel_sampler)


class TileQuotaGeoSampler(_Epochs, _GeoTiles, GeoSampler):
    """Exactly ``per_tile`` random patches from every footprint per epoch, interleaved.

    The draws of :class:`~torchgeo_lsr.samplers.TileQuotaSampler` over the tiles' pixel
    shapes, as TorchGeo queries. A tile is an index row: a multi-date stack has one tile
    per date, so each date gets its quota. TorchGeo has no per-tile quota sampler; the
    closest are ``RandomGeoSampler`` (0.8) / ``RandomPatchSampler`` (0.10), drawing by area.

    Args:
        dataset: any ``torchgeo.datasets.GeoDataset``.
        patch_size: side of the square patches, pixels of ``dataset.res``.
        per_tile: patches drawn from each tile per epoch.
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e``.
        roi: region of interest, in ``dataset.crs`` (see :func:`geo_tiles`).

    Raises:
        ValueError: if no footprint holds a patch, or ``per_tile < 1``.

    Example:
        .. code-block:: python

            sampler = TileQuotaGeoSampler(naip, patch_size=240, per_tile=400)
            loader = DataLoader(naip, sampler=sampler, batch_size=16, collate_fn=stack_samples)
    """

    pixel_sampler: TileQuotaSampler

    def __init__(
        self,
        dataset: GeoDataset,
        patch_size: int,
        per_tile: int,
        seed: int = 0,
        roi: BaseGeometry | None = None,
    ) -> None:
        self._init_tiles(dataset, patch_size, roi)
        self.pixel_sampler = TileQuotaSampler(self.shapes, patch_size, per_tile, seed)

    def __iter__(self) -> Iterator[GeoQuery]:
        """Yield ``per_tile`` queries of every tile, shuffled together."""
        for patch in self.pixel_sampler:
            yield self.query(patch)

    def __len__(self) -> int:
        """Patches per epoch (``per_tile`` times the number of tiles)."""
        return len(self.pixel_sampler)


class MixedTileBatchGeoSampler(_Epochs, _GeoTiles, BatchGeoSampler):
    """Batches of random patches, each batch from as many distinct footprints as possible.

    The batches of :class:`~torchgeo_lsr.samplers.MixedTileBatchSampler` over the tiles'
    pixel shapes, as lists of TorchGeo queries; use as a DataLoader ``batch_sampler``.
    Distinct tiles are distinct index rows: rows that overlap in space (several dates of
    one place, overlapping scenes) count as distinct. TorchGeo's ``RandomBatchGeoSampler``
    (both lines) is the opposite: a whole batch from one tile.

    Args:
        dataset: any ``torchgeo.datasets.GeoDataset``.
        patch_size: side of the square patches, pixels of ``dataset.res``.
        batch_size: patches per batch.
        length: batches per epoch.
        tiles_per_batch: cap on distinct tiles per batch (None: as many as possible).
        seed: seed of the first epoch; epoch ``e`` uses ``seed + e``.
        roi: region of interest, in ``dataset.crs`` (see :func:`geo_tiles`).

    Raises:
        ValueError: if no footprint holds a patch, or a count is < 1.

    Example:
        .. code-block:: python

            sampler = MixedTileBatchGeoSampler(naip, patch_size=256, batch_size=16, length=500)
            loader = DataLoader(naip, batch_sampler=sampler, collate_fn=stack_samples)
    """

    pixel_sampler: MixedTileBatchSampler

    def __init__(
        self,
        dataset: GeoDataset,
        patch_size: int,
        batch_size: int,
        length: int,
        tiles_per_batch: int | None = None,
        seed: int = 0,
        roi: BaseGeometry | None = None,
    ) -> None:
        self._init_tiles(dataset, patch_size, roi)
        self.pixel_sampler = MixedTileBatchSampler(
            self.shapes, patch_size, batch_size, length, tiles_per_batch, seed
        )

    def __iter__(self) -> Iterator[list[GeoQuery]]:  # type: ignore[override]
        """Yield ``length`` batches of ``batch_size`` queries."""
        for batch in self.pixel_sampler:
            yield [self.query(patch) for patch in batch]

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self.pixel_sampler)


class GridGeoPatchSampler(_GeoTiles, GeoSampler):
    """Patches on a grid that covers every footprint to its edges, never beyond.

    The patches of :class:`~torchgeo_lsr.samplers.GridPatchSampler` (offsets
    :func:`~torchgeo_lsr.samplers.grid_offsets`: the last row and column shifted inward),
    as TorchGeo queries, tile by tile, row-major from the top-left. TorchGeo's equivalents
    are ``GridGeoSampler`` (0.8), whose last chips reach past the tile, and
    ``GriddedPatchSampler`` (0.10), one grid over the union of all footprints.

    Args:
        dataset: any ``torchgeo.datasets.GeoDataset``.
        patch_size: side of the square patches, pixels of ``dataset.res``.
        stride: step between patches, pixels (default: ``patch_size``, no overlap).
        rank: this process's shard (distributed evaluation).
        num_replicas: number of shards (see ``GridPatchSampler``).
        roi: region of interest, in ``dataset.crs`` (see :func:`geo_tiles`).

    Raises:
        ValueError: if no footprint holds a patch, or the stride or shard is invalid.

    Example:
        .. code-block:: python

            sampler = GridGeoPatchSampler(naip, patch_size=512, stride=448)
            loader = DataLoader(naip, sampler=sampler, batch_size=8, collate_fn=stack_samples)
    """

    def __init__(
        self,
        dataset: GeoDataset,
        patch_size: int,
        stride: int | None = None,
        rank: int = 0,
        num_replicas: int = 1,
        roi: BaseGeometry | None = None,
    ) -> None:
        self._init_tiles(dataset, patch_size, roi)
        self.pixel_sampler = GridPatchSampler(self.shapes, patch_size, stride, rank, num_replicas)

    @property
    def patches(self) -> Sequence[PatchIndex]:
        """The grid patches (of this shard), in pixels of their tiles, in yield order."""
        return self.pixel_sampler.indices

    def __iter__(self) -> Iterator[GeoQuery]:
        """Yield the query of every grid patch (of this shard)."""
        for patch in self.pixel_sampler:
            yield self.query(patch)

    def __len__(self) -> int:
        """Number of grid patches (of this shard)."""
        return len(self.pixel_sampler)
