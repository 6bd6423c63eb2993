"""Base classes for weak-source datasets, queried by a target pixel grid.

Label super-resolution needs every source (imagery, NLCD, OSM, footprints, labels) on the
imagery's own pixel grid. So a dataset here is indexed by a :class:`Grid` (CRS, affine
transform, shape) and returns a tensor-only sample already warped or rasterised onto it.
This owns the part of the data path where TorchGeo 0.8 and 0.10 differ (query objects,
sample keys, index structures): samples never carry CRS, bounds or transform objects.

* :class:`RasterSource`: TorchGeo-style declarative raster dataset (``filename_glob``,
  ``filename_regex``, ``is_image``, ``all_bands``, ``rgb_bands``, ``cmap``); files are
  indexed once by footprint; a query warps every intersecting file onto the grid.
* :class:`VectorSource`: a vector file read once, spatially indexed, and rasterised per
  query (``all_touched`` option), unlike TorchGeo's ``VectorDataset``, which re-reads the
  file on every sample.

.. versionadded:: 0.1
"""

from __future__ import annotations

import abc
import functools
import glob
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import rasterio
import shapely
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.transform import Affine, array_bounds, from_origin
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, WindowError, from_bounds
from torch import Tensor
from torch.utils.data import Dataset
from torchgeo.datasets import DatasetNotFoundError

__all__ = ["GeoSource", "Grid", "RasterSource", "Sample", "VectorSource"]

Sample = dict[str, Tensor]

#: Fill value for warped float rasters outside the data. GDAL cannot use NaN as the
#: destination nodata of an integer source, so we use float32's lowest value, which no
#: imagery or probability raster holds.
FLOAT_FILL = float(np.finfo(np.float32).min)
Transform = Callable[[Sample], Sample]
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: CRS, affine transform and shape.

    Example:
        >>> g = Grid.from_bounds("EPSG:32617", (700000, 3900000, 700064, 3900032), res=1.0)
        >>> g.shape, g.res
        ((32, 64), 1.0)
        >>> g.window(0, 32, 16, 16).bounds
        (700032.0, 3900016.0, 700048.0, 3900032.0)
    """

    crs: CRS
    transform: Affine
    height: int
    width: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        if self.height < 1 or self.width < 1:
            raise ValueError(f"grid shape must be positive, got {self.height} x {self.width}")

    @classmethod
    def from_bounds(cls, crs: Any, bounds: tuple[float, float, float, float], res: float) -> Grid:
        """Grid covering ``(minx, miny, maxx, maxy)`` at square pixels of ``res``."""
        minx, miny, maxx, maxy = bounds
        width = max(1, round((maxx - minx) / res))
        height = max(1, round((maxy - miny) / res))
        return cls(CRS.from_user_input(crs), from_origin(minx, maxy, res, res), height, width)

    @classmethod
    def of_raster(cls, path: PathLike) -> Grid:
        """The grid of an existing raster file."""
        with _open_raster(path, "raster") as src:
            if src.crs is None:
                raise ValueError(f"{path}: has no CRS; expected a georeferenced raster")
            return cls(src.crs, src.transform, src.height, src.width)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def res(self) -> float:
        """Pixel size (x) in CRS units."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` in the grid's CRS."""
        w, s, e, n = array_bounds(self.height, self.width, self.transform)
        return float(w), float(s), float(e), float(n)

    def profile(self, count: int, dtype: str, **extra: Any) -> dict[str, Any]:
        """A rasterio profile for a tiled, deflate-compressed GeoTIFF on this grid.

        Bands are data (``photometric="MINISBLACK"``), never RGB(A): GDAL would otherwise
        tag the 4th band of a 4-band uint8 file as alpha. ``extra`` overrides any key.
        """
        return {
            "driver": "GTiff",
            "width": self.width,
            "height": self.height,
            "count": count,
            "dtype": dtype,
            "crs": self.crs,
            "transform": self.transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "compress": "deflate",
            "photometric": "MINISBLACK",
        } | extra

    def windows(self, size: int, margin: int = 0) -> Iterator[tuple[Window, Grid]]:
        """Tile this grid in windows of ``size`` px, each with a ``margin`` px border.

        Yields ``(window, padded)``: the rasterio :class:`~rasterio.windows.Window` to
        write (windows do not overlap and cover the grid) and the grid to read, extended
        by ``margin`` on every side (it may reach beyond this grid).
        """
        for r0 in range(0, self.height, size):
            for c0 in range(0, self.width, size):
                h, w = min(size, self.height - r0), min(size, self.width - c0)
                padded = self.window(r0 - margin, c0 - margin, h + 2 * margin, w + 2 * margin)
                yield Window(c0, r0, w, h), padded

    def window(self, row: int, col: int, height: int, width: int) -> Grid:
        """The sub-grid starting at pixel ``(row, col)``."""
        return Grid(self.crs, self.transform @ Affine.translation(col, row), height, width)


def _open_raster(path: PathLike, what: str) -> rasterio.io.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise ValueError(f"{what} {path}: not a readable raster ({err})") from err


@functools.lru_cache(maxsize=16)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(src_wkt, dst_wkt, always_xy=True)


#: Nearest lookups transform every NEAREST_LATTICE-th pixel centre exactly and interpolate
#: between them (see :func:`_centres_in`); 1 transforms every centre.
NEAREST_LATTICE = 16


def _centres_in(
    grid: Grid, crs: CRS, step: int = NEAREST_LATTICE, then: Affine | None = None
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
    lookup never depends on the window that reads it.
    """
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
    remap: Callable[[np.ndarray], np.ndarray] | None = None,
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
    remap: Callable[[np.ndarray], np.ndarray] | None = None,
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


class GeoSource(Dataset[Sample], abc.ABC):
    """A weak source queried by :class:`Grid`; subclasses fill :meth:`__getitem__`.

    Args:
        paths: files or directories (searched recursively).
        crs: CRS of the index; default that of the first file.
        res: native resolution override (informational for rasters).
        transforms: function applied to each sample.
        cache: keep decoded data in memory between queries.
        download: fetch missing data (subclasses that support it).
        checksum: verify downloads (subclasses that support it).
    """

    #: Short name used in error messages.
    what: ClassVar[str] = "data"

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        crs: Any | None = None,
        res: float | None = None,
        transforms: Transform | None = None,
        cache: bool = True,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        self.paths = paths
        self.crs = None if crs is None else CRS.from_user_input(crs)
        self.res = res
        self.transforms = transforms
        self.cache = cache
        self.download = download
        self.checksum = checksum

    @abc.abstractmethod
    def __getitem__(self, grid: Grid) -> Sample:
        """Sample on ``grid``: tensors only."""

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of all data, in :attr:`crs`."""

    def _apply(self, sample: Sample) -> Sample:
        return self.transforms(sample) if self.transforms is not None else sample

    def _list_files(self, patterns: Sequence[str]) -> list[str]:
        items = [self.paths] if isinstance(self.paths, str | os.PathLike) else list(self.paths)
        files: list[str] = []
        for item in items:
            path = os.fspath(item)
            if os.path.isdir(path):
                for pattern in patterns:
                    files += glob.glob(os.path.join(path, "**", pattern), recursive=True)
            elif os.path.isfile(path):
                files.append(path)
        return sorted(set(files))


class RasterSource(GeoSource):
    """Declarative raster dataset queried by :class:`Grid` (see the module docstring).

    Subclasses set the class attributes below. A query returns ``image`` (float32,
    ``(C, H, W)``) when :attr:`is_image`, else ``mask`` (int64, ``(H, W)``), plus
    ``valid`` (bool, ``(H, W)``): pixels covered by some file and not nodata.
    """

    #: Glob(s) of the files, relative to a directory in ``paths``.
    filename_glob: ClassVar[str | tuple[str, ...]] = "*.tif"
    #: Regex the file name must match (named groups are metadata, e.g. ``date``).
    filename_regex: ClassVar[str] = ".*"
    #: Imagery (bilinear, float) or a label raster (nearest, int). A class attribute that
    #: an instance may override (e.g. one class serving several layers).
    is_image: bool = True
    #: Band names, in file order.
    all_bands: ClassVar[tuple[str, ...]] = ()
    #: Bands shown by :meth:`plot`.
    rgb_bands: ClassVar[tuple[str, ...]] = ()
    #: Colormap for label rasters.
    cmap: ClassVar[ListedColormap | None] = None
    #: Nodata value when files do not declare one.
    nodata: ClassVar[float | None] = None

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        crs: Any | None = None,
        res: float | None = None,
        bands: Sequence[str] | None = None,
        transforms: Transform | None = None,
        cache: bool = True,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        super().__init__(paths, crs, res, transforms, cache, download, checksum)
        if download:
            self._download()
        self.bands = tuple(bands) if bands is not None else self.all_bands
        unknown = sorted(set(self.bands) - set(self.all_bands)) if self.all_bands else []
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown bands {unknown}; have {self.all_bands}"
            )
        patterns = (
            (self.filename_glob,) if isinstance(self.filename_glob, str) else self.filename_glob
        )
        regex = re.compile(self.filename_regex, re.VERBOSE)
        self.files = [f for f in self._list_files(patterns) if regex.match(os.path.basename(f))]
        if not self.files:
            raise DatasetNotFoundError(self)
        self.index = self._build_index()

    def _download(self) -> None:
        """Fetch missing files; subclasses that support ``download=True`` override."""
        raise ValueError(f"{type(self).__name__} cannot be downloaded; pass download=False")

    def _build_index(self) -> gpd.GeoDataFrame:
        rows = []
        for path in self.files:
            with _open_raster(path, self.what) as src:
                if src.crs is None:
                    raise ValueError(
                        f"{self.what} {path}: has no CRS; expected a georeferenced GeoTIFF"
                    )
                if self.crs is None:
                    self.crs = src.crs
                if self.res is None:
                    self.res = float(src.res[0])
                bounds = transform_bounds(src.crs, self.crs, *src.bounds, densify_pts=21)
                rows.append({"path": path, "geometry": shapely.box(*bounds)})
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=self.crs)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of all files, in :attr:`crs`."""
        minx, miny, maxx, maxy = self.index.total_bounds
        return float(minx), float(miny), float(maxx), float(maxy)

    def files_for(self, grid: Grid) -> list[str]:
        """Files whose footprint intersects ``grid``."""
        assert self.crs is not None
        box = shapely.box(*transform_bounds(grid.crs, self.crs, *grid.bounds, densify_pts=21))
        hits = self.index.sindex.query(box, predicate="intersects")
        return [self.index.iloc[int(i)]["path"] for i in sorted(hits)]

    def band_indexes(self, path: str) -> list[int]:
        """1-based band indexes to read from ``path``."""
        if not self.all_bands:
            with _open_raster(path, self.what) as src:
                return list(range(1, src.count + 1))
        return [self.all_bands.index(b) + 1 for b in self.bands]

    def read_file(
        self,
        path: str,
        grid: Grid,
        remap: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file resampled onto ``grid``: ``(data (C, H, W), valid (H, W))``.

        ``remap`` maps the file's values (see :func:`warp_to_grid`); a categorical source's
        fill, and anything ``remap`` maps below 0, is invalid.
        """
        with _open_raster(path, self.what) as src:
            data = warp_to_grid(
                src,
                grid,
                indexes=self.band_indexes(path),
                resampling=Resampling.bilinear if self.is_image else Resampling.nearest,
                dtype="float32" if self.is_image else "int32",
                fill=FLOAT_FILL if self.is_image else -1,
                src_nodata=src.nodata if src.nodata is not None else self.nodata,
                what=self.what,
                remap=remap,
            )
        valid: np.ndarray = np.asarray(
            (data > FLOAT_FILL).all(axis=0) if self.is_image else (data >= 0).all(axis=0)
        )
        return data, valid

    def __getitem__(self, grid: Grid) -> Sample:
        """Every intersecting file warped onto ``grid`` (earlier files win on overlaps).

        Raises:
            IndexError: if no file intersects the grid.
        """
        paths = self.files_for(grid)
        if not paths:
            raise IndexError(f"{type(self).__name__}: no file covers {grid.bounds} in {grid.crs}")
        if len(paths) == 1:
            return self._apply(self.finalize(*self.read_file(paths[0], grid)))
        out: np.ndarray | None = None
        covered = np.zeros(grid.shape, dtype=bool)
        for path in paths:
            data, valid = self.read_file(path, grid)
            if out is None:
                out = np.zeros(data.shape, dtype=data.dtype)
            take = valid & ~covered
            out[:, take] = data[:, take]
            covered |= take
        assert out is not None
        sample = self.finalize(out, covered)
        return self._apply(sample)

    def finalize(self, data: np.ndarray, valid: np.ndarray) -> Sample:
        """Turn the merged arrays into a sample; subclasses remap codes here."""
        if self.is_image:
            return {
                "image": torch.from_numpy(np.where(valid, data, 0).astype(np.float32)),
                "valid": torch.from_numpy(valid),
            }
        return {
            "mask": torch.from_numpy(np.where(valid, data[0], 0).astype(np.int64)),
            "valid": torch.from_numpy(valid),
        }

    def plot(self, sample: Sample, show_titles: bool = True, suptitle: str | None = None) -> Figure:
        """Plot a sample: RGB bands of ``image`` and/or ``mask`` with :attr:`cmap`."""
        import matplotlib.pyplot as plt

        panels = [k for k in ("image", "mask", "prediction") if k in sample]
        fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        for ax, key in zip(axs[0], panels, strict=True):
            if key == "image":
                rgb = [self.bands.index(b) for b in self.rgb_bands if b in self.bands] or [0]
                img = sample["image"][rgb].permute(1, 2, 0).float().numpy()
                lo, hi = np.percentile(img, (2, 98)) if img.size else (0, 1)
                ax.imshow(np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1).squeeze())
            else:
                n = self.cmap.N if self.cmap is not None else None
                ax.imshow(
                    sample[key].numpy(),
                    cmap=self.cmap,
                    vmin=0,
                    vmax=None if n is None else n - 1,
                    interpolation="none",
                )
            ax.axis("off")
            if show_titles:
                ax.set_title(key.capitalize())
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig


class VectorSource(GeoSource):
    """Vector features read once, spatially indexed, rasterised per :class:`Grid` query.

    Subclasses implement :meth:`load` (read the file(s) into a GeoDataFrame) and may
    override :meth:`burn_values` (value per feature, default 1) and :meth:`buffer_m`
    (per-feature buffer in metres, e.g. road width; default 0). A query returns ``mask``
    (burn values as an int64 tensor, ``(H, W)``).

    Args:
        all_touched: burn every pixel a feature touches (else pixel centres only).
    """

    #: Globs of the vector files.
    filename_glob: ClassVar[tuple[str, ...]] = ("*.geojson", "*.json", "*.gpkg", "*.parquet")

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        crs: Any | None = None,
        res: float | None = None,
        transforms: Transform | None = None,
        all_touched: bool = False,
        cache: bool = True,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        super().__init__(paths, crs, res, transforms, cache, download, checksum)
        self.all_touched = all_touched
        self.files = self._list_files(self.filename_glob)
        if download and not self.files:
            self._download()
            self.files = self._list_files(self.filename_glob)
        if not self.files:
            raise DatasetNotFoundError(self)
        frame = self.load(self.files)
        if frame.crs is None:
            where = self.files[0] if len(self.files) == 1 else f"{len(self.files)} files"
            raise ValueError(
                f"{self.what} ({where}): no CRS; expected georeferenced vector files "
                "(subclass loaders check and name each file)"
            )
        if self.crs is None:
            self.crs = CRS.from_user_input(frame.crs)
        self.features: gpd.GeoDataFrame = self._prepare(frame).to_crs(self.crs)
        self.features = self.features[
            ~self.features.geometry.is_empty & self.features.geometry.notna()
        ]
        self.features = self.features.reset_index(drop=True)
        self._projected: dict[str, gpd.GeoDataFrame] = {}

    def _download(self) -> None:
        """Fetch missing files; subclasses that support ``download=True`` override."""
        raise ValueError(f"{type(self).__name__} cannot be downloaded; pass download=False")

    @abc.abstractmethod
    def load(self, files: Sequence[str]) -> gpd.GeoDataFrame:
        """Read the features of ``files`` (any CRS)."""

    def burn_values(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Value burnt for each feature (default 1)."""
        return np.ones(len(features), dtype=np.uint8)

    def buffer_m(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Buffer in metres for each feature (default 0, no buffer)."""
        return np.zeros(len(features))

    def _prepare(self, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Apply per-feature buffers in a metric CRS, once."""
        frame = frame.copy()
        frame["burn"] = self.burn_values(frame)
        widths = self.buffer_m(frame)
        if (widths > 0).any():
            # Widths are in metres: buffer in the file's CRS only if it is projected in
            # metres (not, say, NC State Plane in US feet), else in the local UTM zone.
            in_metres = frame.crs.is_projected and all(
                axis.unit_name in ("metre", "meter") for axis in frame.crs.axis_info
            )
            metric = frame.crs if in_metres else frame.estimate_utm_crs()
            projected = frame.to_crs(metric)
            buffered = projected.geometry.where(widths <= 0, projected.geometry.buffer(widths))
            frame = frame.set_geometry(gpd.GeoSeries(buffered, crs=metric).to_crs(frame.crs))
        return frame

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of all features, in :attr:`crs`."""
        minx, miny, maxx, maxy = self.features.total_bounds
        return float(minx), float(miny), float(maxx), float(maxy)

    def _in_crs(self, crs: CRS) -> gpd.GeoDataFrame:
        key = crs.to_wkt()
        if key not in self._projected:
            projected = self.features.to_crs(crs)
            if not self.cache:
                return projected
            self._projected[key] = projected
        return self._projected[key]

    def __getitem__(self, grid: Grid) -> Sample:
        """Features intersecting ``grid`` burnt onto it; 0 where there is none."""
        features = self._in_crs(grid.crs)
        hits = features.sindex.query(shapely.box(*grid.bounds), predicate="intersects")
        mask = np.zeros(grid.shape, dtype=np.uint8)
        if len(hits):
            chosen = features.iloc[np.sort(hits)]
            shapes = zip(chosen.geometry, chosen["burn"].astype(int), strict=True)
            mask = rasterize(
                shapes,
                out_shape=grid.shape,
                transform=grid.transform,
                fill=0,
                all_touched=self.all_touched,
                dtype="uint8",
                merge_alg=rasterio.enums.MergeAlg.replace,
            )
        return self._apply({"mask": torch.from_numpy(mask.astype(np.int64))})
