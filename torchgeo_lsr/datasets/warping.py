"""The warping engine: bands of an open raster resampled onto a :class:`~.grid.Grid`.

:func:`warp_to_grid` reads the window of a raster that covers a grid and resamples it:
a plain read when the raster is already on the grid, an exact per-pixel-centre lookup
for nearest resampling (so a pixel's source cell never depends on the window being
read), and GDAL's warper with an exact transformer otherwise. :data:`FLOAT_FILL` is the
fill of float rasters outside the data; :data:`Remap` the type of a value map applied
while reading.

Layering: :mod:`~torchgeo_lsr.datasets.grid` <- ``warping`` <-
:mod:`~torchgeo_lsr.datasets.base`. This module imports only ``grid`` from the package;
everything above it (the dataset bases and sources, aligned tiles, region, priors,
mapping) may import it, and it never imports them.

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, WindowError, from_bounds
from torch import Tensor

from .grid import Grid

__all__ = ["FLOAT_FILL", "NEAREST_LATTICE", "Remap", "warp_to_grid"]

#: Fill value for warped float rasters outside the data. GDAL cannot use NaN as the
#: destination nodata of an integer source, so we use float32's lowest value, which no
#: imagery or probability raster holds.
FLOAT_FILL = float(np.finfo(np.float32).min)
#: A map of raster values (codes to class indices, say) that :func:`warp_to_grid` applies:
#: an array ``(bands, h, w)`` in, one of the same shape out.
Remap = Callable[[np.ndarray], np.ndarray]


@functools.lru_cache(maxsize=16)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(src_wkt, dst_wkt, always_xy=True)


#: Nearest lookups transform every NEAREST_LATTICE-th pixel centre exactly and interpolate
#: between them (see :func:`_centres_in`); 1 transforms every centre.
NEAREST_LATTICE = 16


def _centres_in(
    grid: Grid, crs: CRS, step: int | None = None, then: Affine | None = None
) -> tuple[Tensor, Tensor]:
    """``(H, W)`` float64 coordinates in ``crs`` of the centres of ``grid``'s pixels.

    With ``then``, the coordinates are passed through that affine map (for instance a
    raster's inverse transform, giving fractional column and row); being linear, it is
    applied to the lattice nodes before interpolating.

    Centres on a lattice of every ``step``-th pixel are transformed exactly (PROJ) and the
    rest interpolated bilinearly between them. Over ``step`` = 16 pixels of 1 m the
    projection is linear to far below a nanometre, so the chosen source cells equal an
    exact per-pixel transform's except for centres within that distance of a cell edge.
    The lattice is anchored to the grid's pixel lattice extended to the CRS origin, not to
    the window, so every window of a tile interpolates between the same nodes and a pixel's
    lookup never depends on the window that reads it. ``step`` None reads
    :data:`NEAREST_LATTICE` when called.
    """
    step = NEAREST_LATTICE if step is None else step
    t = grid.transform
    if step <= 1 or t.b != 0 or t.d != 0:  # rotated grids: every centre exactly
        rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
        xs, ys = t * (cols.ravel() + 0.5, rows.ravel() + 0.5)
        if crs != grid.crs:
            xs, ys = _transformer(grid.crs.to_wkt(), crs.to_wkt()).transform(xs, ys)
        if then is not None:
            xs, ys = then * (np.asarray(xs), np.asarray(ys))
        shape = grid.shape
        return (
            torch.from_numpy(np.asarray(xs, dtype=np.float64).reshape(shape)),
            torch.from_numpy(np.asarray(ys, dtype=np.float64).reshape(shape)),
        )
    # first lattice node at or before pixel 0, counted on the lattice anchored at the origin
    start_c = -(math.floor(t.c / t.a + 1e-6) % step)
    start_r = -(math.floor(t.f / t.e + 1e-6) % step)
    n_c = -(-(grid.width - 1 - start_c) // step) + 1
    n_r = -(-(grid.height - 1 - start_r) // step) + 1
    node_c = start_c + step * np.arange(n_c) + 0.5
    node_r = start_r + step * np.arange(n_r) + 0.5
    cols, rows = np.meshgrid(node_c, node_r)
    xs, ys = t * (cols.ravel(), rows.ravel())
    if crs != grid.crs:
        xs, ys = _transformer(grid.crs.to_wkt(), crs.to_wkt()).transform(xs, ys)
    if then is not None:
        xs, ys = then * (np.asarray(xs), np.asarray(ys))
    nodes = torch.from_numpy(np.stack([np.asarray(xs), np.asarray(ys)]).reshape(1, 2, n_r, n_c))
    size = ((n_r - 1) * step + 1, (n_c - 1) * step + 1)
    dense = F.interpolate(nodes, size=size, mode="bilinear", align_corners=True)[0]
    dense = dense[:, -start_r : -start_r + grid.height, -start_c : -start_c + grid.width]
    return dense[0], dense[1]


def _nearest_lookup(
    src: rasterio.io.DatasetReader,
    grid: Grid,
    bands: list[int],
    out: np.ndarray,
    fill: float,
    nodata: float | None,
    what: str,
    remap: Remap | None = None,
) -> np.ndarray:
    """Nearest-neighbour resampling by a lookup of every target pixel centre.

    Centres are transformed to the source CRS by :func:`_centres_in` (exact on a lattice
    anchored to the grid, bilinear in between) and mapped through the source's inverse
    affine, so the source cell chosen for a pixel never depends on which window is being
    read (GDAL's warper approximates the transformation per window, which moves a few
    lookups across cell edges from one window to the next).
    """
    fc, fr = _centres_in(grid, src.crs, then=~src.transform)
    col = fc.floor_().to(torch.int64)
    row = fr.floor_().to(torch.int64)
    lo_r, hi_r, lo_c, hi_c = int(row.min()), int(row.max()), int(col.min()), int(col.max())
    everywhere = lo_r >= 0 and lo_c >= 0 and hi_r < src.height and hi_c < src.width
    inside: Tensor | None = None
    if not everywhere:
        inside = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width)
        if not inside.any():
            return out
        lo_r, hi_r = int(row[inside].min()), int(row[inside].max())
        lo_c, hi_c = int(col[inside].min()), int(col[inside].max())
    h, w = hi_r - lo_r + 1, hi_c - lo_c + 1
    try:
        data = src.read(bands, window=Window(lo_c, lo_r, w, h))
    except RasterioIOError as err:
        raise ValueError(
            f"{what} {src.name}: could not be read, truncated or corrupt? ({err})"
        ) from err
    # nodata to fill on the (small) source window, then one flat gather; pixels outside
    # the source are clamped here and filled below
    values = data.astype(out.dtype)
    if nodata is not None:
        values[:, (data == nodata).any(axis=0)] = fill
    if remap is not None:
        values = remap(values)
    flat = (row - lo_r).clamp_(0, h - 1) * w + (col - lo_c).clamp_(0, w - 1)
    index = flat.view(-1).numpy()
    if inside is None:
        np.take(values.reshape(len(bands), -1), index, axis=1, out=out.reshape(len(bands), -1))
    else:
        gathered = np.take(values.reshape(len(bands), -1), index, axis=1)
        keep = inside.numpy()
        out[:, keep] = gathered.reshape(len(bands), *grid.shape)[:, keep]
    return out


def warp_to_grid(
    src: rasterio.io.DatasetReader,
    grid: Grid,
    *,
    indexes: Sequence[int] | None = None,
    resampling: Resampling = Resampling.nearest,
    dtype: str = "float32",
    fill: float = FLOAT_FILL,
    src_nodata: float | None = None,
    what: str = "raster",
    remap: Remap | None = None,
) -> np.ndarray:
    """Read bands of ``src`` resampled onto ``grid``; pixels it does not cover get ``fill``.

    Reads only the source window that covers the grid (plus a 2 px margin for the
    resampling kernel) and reprojects the array. Unlike a ``WarpedVRT`` this ignores the
    file's colour interpretation: a default 4-band uint8 GeoTIFF has its 4th band tagged
    as alpha, which GDAL's warper would silently use as a mask (NAIP's NIR, or a prior's
    4th class). When ``src`` is already on ``grid`` it is a plain read; nearest
    resampling is an exact lookup of each pixel centre (see :func:`_nearest_lookup`).

    Args:
        src: an open raster.
        grid: the target grid.
        indexes: 1-based bands to read (default all).
        resampling: resampling method.
        dtype: output dtype.
        fill: value for pixels outside the source, and for source nodata.
        src_nodata: the source's nodata value (default: the file's own).
        what: what the raster is, for error messages.
        remap: optional map of values (codes to class indices, say) that keeps ``fill``
            and the dtype; a nearest lookup applies it to the source window, once per
            source cell rather than once per target pixel.

    Returns:
        ``(bands, H, W)`` array of ``dtype``.

    Raises:
        ValueError: if the file cannot be read (truncated or corrupt).
    """
    bands = list(indexes) if indexes is not None else list(src.indexes)
    nodata = src.nodata if src_nodata is None else src_nodata
    out = np.full((len(bands), grid.height, grid.width), fill, dtype=dtype)
    same_grid = (
        src.crs == grid.crs
        and src.shape == grid.shape
        and src.transform.almost_equals(grid.transform)
    )
    if resampling == Resampling.nearest and not same_grid:
        return _nearest_lookup(src, grid, bands, out, fill, nodata, what, remap)
    out = _warp_or_read(src, grid, bands, out, resampling, dtype, fill, nodata, what, same_grid)
    return out if remap is None else remap(out)


def _warp_or_read(
    src: rasterio.io.DatasetReader,
    grid: Grid,
    bands: list[int],
    out: np.ndarray,
    resampling: Resampling,
    dtype: str,
    fill: float,
    nodata: float | None,
    what: str,
    same_grid: bool,
) -> np.ndarray:
    """:func:`warp_to_grid` without a nearest lookup: a plain read or GDAL's warper."""
    try:
        if same_grid:
            raw = src.read(bands)
            out[:] = raw
            if nodata is not None:
                out[:, (raw == nodata).any(axis=0)] = fill
            return out
        left, bottom, right, top = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
        window = from_bounds(left, bottom, right, top, src.transform)
        window = (
            Window(window.col_off - 2, window.row_off - 2, window.width + 4, window.height + 4)
            .round_offsets(op="floor")
            .round_lengths(op="ceil")
        )
        window = window.intersection(Window(0, 0, src.width, src.height))
        data = src.read(bands, window=window).astype(dtype)
    except WindowError:
        return out  # no overlap
    except RasterioIOError as err:
        raise ValueError(
            f"{what} {src.name}: could not be read, truncated or corrupt? ({err})"
        ) from err
    reproject(
        data,
        out,
        src_transform=src.window_transform(window),
        src_crs=src.crs,
        src_nodata=nodata,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=fill,
        resampling=resampling,
        # An exact transformer: GDAL's default approximation (0.125 px) lets a nearest
        # lookup pick a different source cell depending on the window being read, which
        # would put seams between windows of the same tile.
        tolerance=0,
    )
    return out
