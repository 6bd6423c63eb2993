"""Base classes for weak-source datasets, queried by a target pixel grid.

Label super-resolution needs every source (imagery, NLCD, OSM, footprints, labels) on the
imagery's own pixel grid. So a dataset here is indexed by a :class:`~.grid.Grid` (CRS,
affine transform, shape) and returns a tensor-only sample already warped or rasterised
onto it. This owns the part of the data path where TorchGeo 0.8 and 0.10 differ (query
objects, sample keys, index structures): a :class:`Grid` query's sample holds tensors only;
a GeoSlice query's sample adds the metadata of the installed line
(:func:`~torchgeo_lsr._compat.query_metadata`).

* :class:`GeoSource`: what every source shares (paths, CRS, transforms, the TorchGeo
  constructor options, file listing), and its TorchGeo face: every source is a
  :class:`torchgeo.datasets.GeoDataset` (``index``, ``crs``, ``res``, ``bounds``, ``&``,
  ``|``) that also answers TorchGeo's spatiotemporal slices (``ds[x0:x1:res, y0:y1:res,
  t0:t1]``, what TorchGeo's samplers yield) through the same read as a :class:`Grid`
  query, with the sample keys of the installed TorchGeo line.
* :class:`RasterSource`: TorchGeo-style declarative raster dataset (``filename_glob``,
  ``filename_regex``, ``is_image``, ``all_bands``, ``rgb_bands``, ``cmap``); files are
  indexed once by footprint; a query warps every intersecting file onto the grid
  (:func:`~.warping.warp_to_grid`).
* :class:`VectorSource`: a vector file read once, spatially indexed, and rasterised per
  query (``all_touched`` option), unlike TorchGeo's ``VectorDataset``, which re-reads the
  file on every sample.

Layering: :mod:`~torchgeo_lsr.datasets.grid` <- :mod:`~torchgeo_lsr.datasets.warping` <-
``base``. This module imports both; the concrete sources (``naip``, ``nlcd``, ...) import
it, and neither ``grid`` nor ``warping`` imports it.

.. versionadded:: 0.1
"""

from __future__ import annotations

import abc
import glob
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypedDict, Unpack, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from torch import Tensor
from torchgeo.datasets import DatasetNotFoundError, GeoDataset
from torchgeo.datasets.utils import GeoSlice

from .._compat import query_metadata
from .grid import Grid, PathLike, open_raster
from .warping import FLOAT_FILL, Remap, warp_to_grid

__all__ = [
    "GeoSource",
    "RasterOptions",
    "RasterSource",
    "Sample",
    "SourceOptions",
    "Transform",
    "VectorOptions",
    "VectorSource",
]

Sample = dict[str, Tensor]
Transform = Callable[[dict[str, Any]], dict[str, Any]]
#: The time interval of data that carries no date (TorchGeo's choice for undated files).
ALL_TIME = (pd.Timestamp.min, pd.Timestamp.max)


class SourceOptions(TypedDict, total=False):
    """The keyword options every :class:`GeoSource` takes, in TorchGeo's order.

    A subclass constructor names only its own options and passes these on unchanged
    (``**kwargs: Unpack[SourceOptions]``), so mypy checks them against
    :meth:`GeoSource.__init__`, which documents them.
    """

    crs: Any | None
    res: float | tuple[float, float] | None
    transforms: Transform | None
    sample_key: str | None
    cache: bool
    download: bool
    checksum: bool


class RasterOptions(SourceOptions, total=False):
    """:class:`SourceOptions` and ``bands``: the keywords of every :class:`RasterSource`."""

    bands: Sequence[str] | None


class VectorOptions(SourceOptions, total=False):
    """:class:`SourceOptions` and ``all_touched``: the keywords of every :class:`VectorSource`."""

    all_touched: bool


class GeoSource(GeoDataset):
    """A weak source: a TorchGeo ``GeoDataset`` also queried by :class:`Grid`.

    Two faces, one read. ``ds[grid]`` (a :class:`Grid`) returns the source on that pixel
    grid, tensors only: what ``LSRDataModule`` and ``map`` use. ``ds[x0:x1:xres,
    y0:y1:yres, t0:t1]`` (a GeoSlice, what TorchGeo's samplers yield) returns the same
    read on the grid of that slice in :attr:`crs`, with TorchGeo's semantics: IndexError
    outside :attr:`index`, only the data key (``image`` or ``mask``, or ``sample_key``;
    no ``valid``, so that ``&`` can merge samples) and the metadata keys of the installed
    TorchGeo line (0.8: ``crs``, ``bounds``; 0.9+: ``bounds``, ``transform``).

    As a ``GeoDataset``: :attr:`index` is a GeoDataFrame of footprints (column
    ``filepath``) in :attr:`crs` over a ``datetime`` IntervalIndex (undated sources span
    all time, :data:`ALL_TIME`, so ``NAIP & NLCD`` intersect whatever the years);
    :attr:`res` is an ``(x, y)`` tuple; :attr:`bounds` are TorchGeo's three slices and
    :attr:`extent` is ``(minx, miny, maxx, maxy)``; setting :attr:`crs` or :attr:`res`
    (as ``&`` does) changes the TorchGeo face only, since a :class:`Grid` carries its own.

    ``paths`` is the only positional parameter. The options are keyword-only and follow
    TorchGeo's order (``crs``, ``res``, ``bands`` for rasters, ``transforms``, the
    source's own options, ``cache``, ``download``, ``checksum``). This constructor is
    the one that spells them out: a subclass names only its own options and passes the
    rest on as ``**kwargs`` (:class:`SourceOptions`). It only stores them;
    :class:`RasterSource` and :class:`VectorSource` then call :meth:`_find_files`
    (download, list, check) and build :attr:`index`.

    Args:
        paths: files or directories (searched recursively).
        crs: CRS of the index; default that of the first file.
        res: resolution of the TorchGeo face, a number or ``(x, y)``; default that of the
            first file (rasters), 1 CRS unit (vectors in a projected CRS) or 1e-5 degrees.
        transforms: function applied to each sample (both faces).
        sample_key: key of the data in a sample; default ``"image"`` for imagery and
            ``"mask"`` otherwise. Give sources distinct keys to compose several masks with
            ``&`` (TorchGeo concatenates equal keys).
        cache: what a source keeps between queries: see :class:`RasterSource` (nothing)
            and :class:`VectorSource` (the features reprojected per queried CRS).
        download: fetch missing data (:meth:`_download`) before the files are listed;
            sources that cannot download raise ValueError.
        checksum: verify downloads (sources that download and can verify).
    """

    #: Short name used in error messages.
    what: ClassVar[str] = "data"
    #: Glob(s) of the files, relative to a directory in ``paths``.
    filename_glob: str | tuple[str, ...] = "*"  # type: ignore[assignment]
    #: The footprints, over time (see the class docstring).
    index: gpd.GeoDataFrame
    _crs: CRS

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        crs: Any | None = None,
        res: float | tuple[float, float] | None = None,
        transforms: Transform | None = None,
        sample_key: str | None = None,
        cache: bool = True,
        download: bool = False,
        checksum: bool = False,
    ) -> None:
        self.paths = paths
        self._wanted_crs = None if crs is None else CRS.from_user_input(crs)
        self._wanted_res = None if res is None else _pair(res)
        self.transforms = transforms
        self.sample_key = sample_key
        self.cache = cache
        self.download = download
        self.checksum = checksum
        self._files: list[str] = []

    @property
    def files(self) -> list[str]:
        """The files of this source, as found at construction (see :meth:`_find_files`)."""
        return self._files

    @property
    def crs(self) -> CRS:
        """CRS of :attr:`index` (a rasterio CRS); setting it reprojects the index."""
        return self._crs

    @crs.setter
    def crs(self, new_crs: Any) -> None:
        new = CRS.from_user_input(new_crs)
        if new != self._crs:
            GeoDataset.crs.fset(self, new)  # type: ignore[attr-defined]
            self._crs = new
            self._reprojected(new)

    def _reprojected(self, crs: CRS) -> None:
        """Called once :attr:`crs` has changed: a source holding data in it follows."""

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of all data, in :attr:`crs`."""
        minx, miny, maxx, maxy = self.index.total_bounds
        return float(minx), float(miny), float(maxx), float(maxy)

    def _set_index(
        self,
        paths: Sequence[str],
        footprints: Sequence[shapely.Geometry],
        intervals: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
        crs: CRS,
        res: tuple[float, float],
    ) -> None:
        """Build :attr:`index` (TorchGeo's layout) and set :attr:`crs` and :attr:`res`."""
        times = pd.IntervalIndex.from_tuples(list(intervals), closed="both", name="datetime")
        self.index = gpd.GeoDataFrame(
            {"filepath": list(paths)}, index=times, geometry=list(footprints), crs=crs
        )
        self._crs = crs
        self._res = res

    def _find_files(self) -> list[str]:
        """The files of this source: :meth:`_download` first when ``download=True``.

        Returns:
            The files :meth:`_list_files` finds for :attr:`filename_glob`.

        Raises:
            DatasetNotFoundError: if there is none.
            ValueError: from :meth:`_download`, if the source cannot be downloaded.
        """
        if self.download:
            self._download()
        globs = self.filename_glob
        files = self._list_files((globs,) if isinstance(globs, str) else globs)
        if not files:
            raise DatasetNotFoundError(self)
        return files

    def _download(self) -> None:
        """Fetch what is missing under ``paths``; sources that can download override this.

        Raises:
            ValueError: always, here: this source cannot be downloaded.
        """
        raise ValueError(f"{type(self).__name__} cannot be downloaded; pass download=False")

    @overload
    def __getitem__(self, query: Grid) -> Sample: ...

    @overload
    def __getitem__(self, query: GeoSlice) -> dict[str, Any]: ...

    def __getitem__(self, query: Grid | GeoSlice) -> dict[str, Any]:
        """The source on ``query``: a :class:`Grid`, or a TorchGeo GeoSlice.

        Raises:
            IndexError: if no data covers the query (a raster on any query, a vector
                source on a GeoSlice outside its :attr:`index`).
        """
        if isinstance(query, Grid):
            return self._apply(self._rename(self._read(query)))
        grid, rows = self._slice_grid(query)
        if rows.empty:
            raise IndexError(
                f"{type(self).__name__}: query {query} not found in index with bounds {self.bounds}"
            )
        sample: dict[str, Any] = self._rename(self._read(grid, rows))
        sample.pop("valid", None)
        sample.update(query_metadata(self, query, grid.transform))
        return self._apply(sample)

    @abc.abstractmethod
    def _read(self, grid: Grid, rows: gpd.GeoDataFrame | None = None) -> Sample:
        """The source on ``grid``: data and ``valid`` keys, before renaming and transforms.

        ``rows`` are the :attr:`index` rows a GeoSlice selected (None for a Grid query:
        the source picks by space alone).
        """

    def _slice_grid(self, query: GeoSlice) -> tuple[Grid, gpd.GeoDataFrame]:
        """The grid of a GeoSlice in :attr:`crs`, and the :attr:`index` rows it selects.

        As TorchGeo's ``RasterDataset``: rows whose interval overlaps the time slice and
        whose footprint meets the box; the grid's origin is ``(x.start, y.stop)``, its
        pixels ``x.step`` by ``y.step``.
        """
        x, y, t = self._disambiguate_slice(query)
        rows = self.index.iloc[self.index.index.overlaps(pd.Interval(t.start, t.stop))]
        rows = rows.iloc[:: t.step].cx[x.start : x.stop, y.start : y.stop]
        width = max(1, round((x.stop - x.start) / x.step))
        height = max(1, round((y.stop - y.start) / y.step))
        transform = from_origin(x.start, y.stop, x.step, y.step)
        return Grid(self.crs, transform, height, width), rows

    def _default_key(self) -> str:
        return "mask"

    def _rename(self, sample: Sample) -> Sample:
        key = self._default_key()
        if self.sample_key is not None and self.sample_key != key and key in sample:
            sample[self.sample_key] = sample.pop(key)
        return sample

    def _apply(self, sample: dict[str, Any]) -> dict[str, Any]:
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


def _pair(res: float | tuple[float, float]) -> tuple[float, float]:
    """``res`` as ``(x, y)``: a number is both."""
    if isinstance(res, int | float):
        return float(res), float(res)
    x, y = res
    return float(x), float(y)


class RasterSource(GeoSource):
    """Declarative raster dataset queried by :class:`Grid` (see the module docstring).

    Subclasses set the class attributes below. A query returns ``image`` (float32,
    ``(C, H, W)``) when :attr:`is_image`, else ``mask`` (int64, ``(H, W)``), plus
    ``valid`` (bool, ``(H, W)``): pixels covered by some file and not nodata.

    Files are those of :attr:`filename_glob` whose name matches :attr:`filename_regex`;
    their footprints are indexed once, at construction. A query opens the files it
    needs, reads the window that covers the grid and closes them: nothing read is kept
    between queries, whatever ``cache`` says (TorchGeo's ``RasterDataset`` keeps open
    file handles; the keyword is accepted for TorchGeo's signature and has no effect
    here). Sources that cannot download raise ValueError on ``download=True``.

    Args:
        paths: files or directories (searched recursively).
        bands: subset of :attr:`all_bands` to read, in the order wanted (default all).
        **kwargs: ``crs``, ``res``, ``transforms``, ``cache``, ``download`` and
            ``checksum`` (:class:`SourceOptions`, described by :class:`GeoSource`).

    Raises:
        DatasetNotFoundError: if no file is found.
        ValueError: on unknown bands, or ``download=True`` for a source that cannot
            download.
    """

    #: Glob(s) of the raster files.
    filename_glob: str | tuple[str, ...] = "*.tif"
    #: Regex the file name must match (named groups are metadata, e.g. ``date``).
    filename_regex: ClassVar[str] = ".*"
    #: Imagery (bilinear, float) or a label raster (nearest, int). A class attribute that
    #: an instance may override (e.g. one class serving several layers).
    is_image: bool = True
    #: Band names, in file order.
    all_bands: tuple[str, ...] = ()
    #: Bands shown by :meth:`plot`.
    rgb_bands: tuple[str, ...] = ()
    #: Colormap for label rasters.
    cmap: ListedColormap | None = None
    #: Nodata value when files do not declare one.
    nodata: ClassVar[float | None] = None

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        bands: Sequence[str] | None = None,
        **kwargs: Unpack[SourceOptions],
    ) -> None:
        super().__init__(paths, **kwargs)
        self.bands = self._select_bands(bands)
        self._files = self._find_files()
        self._build_index()

    def _select_bands(self, bands: Sequence[str] | None) -> tuple[str, ...]:
        """The bands to read: ``bands`` (default :attr:`all_bands`).

        Checked against :attr:`all_bands` when the class names its bands; subclasses whose
        bands depend on the instance (a layer) override this.

        Raises:
            ValueError: on a band not in :attr:`all_bands`.
        """
        if not self.all_bands:
            return tuple(bands) if bands is not None else ()
        return self._check_bands(bands, self.all_bands, type(self).__name__)

    @staticmethod
    def _check_bands(
        bands: Sequence[str] | None, have: tuple[str, ...], what: str
    ) -> tuple[str, ...]:
        """``bands`` (default all of ``have``), each of which must be in ``have``.

        Raises:
            ValueError: naming ``what``, on a band not in ``have``.
        """
        chosen = tuple(bands) if bands is not None else have
        unknown = sorted(set(chosen) - set(have))
        if unknown:
            raise ValueError(f"{what}: unknown bands {unknown}; have {have}")
        return chosen

    def _list_files(self, patterns: Sequence[str]) -> list[str]:
        """Files under ``paths`` matching ``patterns`` whose name matches :attr:`filename_regex`."""
        regex = re.compile(self.filename_regex, re.VERBOSE)
        return [f for f in super()._list_files(patterns) if regex.match(os.path.basename(f))]

    def _build_index(self) -> None:
        """Index every file's footprint (in :attr:`crs`) over its :meth:`interval`."""
        crs, res = self._wanted_crs, self._wanted_res
        footprints = []
        for path in self.files:
            with open_raster(path, self.what) as src:
                if src.crs is None:
                    raise ValueError(
                        f"{self.what} {path}: has no CRS; expected a georeferenced GeoTIFF"
                    )
                crs = src.crs if crs is None else crs
                res = (float(src.res[0]), float(src.res[1])) if res is None else res
                bounds = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
                footprints.append(shapely.box(*bounds))
        assert crs is not None  # there is a file (_find_files)
        assert res is not None
        intervals = [self.interval(path) for path in self.files]
        self._set_index(self.files, footprints, intervals, crs, res)

    def interval(self, path: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The time span of ``path``'s data in :attr:`index`.

        :data:`ALL_TIME` unless a source dates its files (NAIP: the acquisition day).
        """
        return ALL_TIME

    def _default_key(self) -> str:
        return "image" if self.is_image else "mask"

    def files_for(self, grid: Grid) -> list[str]:
        """Files whose footprint intersects ``grid``."""
        box = shapely.box(*transform_bounds(grid.crs, self.crs, *grid.bounds, densify_pts=21))
        hits = self.index.sindex.query(box, predicate="intersects")
        return [str(self.index["filepath"].iloc[int(i)]) for i in sorted(hits)]

    def band_indexes(self, path: str) -> list[int]:
        """1-based band indexes to read from ``path``."""
        if not self.all_bands:
            with open_raster(path, self.what) as src:
                return list(range(1, src.count + 1))
        return [self.all_bands.index(b) + 1 for b in self.bands]

    def read_file(
        self, path: str, grid: Grid, remap: Remap | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file resampled onto ``grid``: ``(data (C, H, W), valid (H, W))``.

        ``remap`` maps the file's values (see :func:`warp_to_grid`); a categorical source's
        fill, and anything ``remap`` maps below 0, is invalid.
        """
        with open_raster(path, self.what) as src:
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

    def _read(self, grid: Grid, rows: gpd.GeoDataFrame | None = None) -> Sample:
        """Every file (of ``rows``, else intersecting ``grid``) warped onto ``grid``.

        Earlier files win on overlaps (path order; a GeoSlice keeps :attr:`index` order).

        Raises:
            IndexError: if no file intersects the grid.
        """
        paths = self.files_for(grid) if rows is None else [str(p) for p in rows["filepath"]]
        if not paths:
            raise IndexError(f"{type(self).__name__}: no file covers {grid.bounds} in {grid.crs}")
        if len(paths) == 1:
            return self.finalize(*self.read_file(paths[0], grid))
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
        return self.finalize(out, covered)

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
        """Plot a sample: RGB bands of the imagery and/or the label mask with :attr:`cmap`.

        The data key is ``sample_key`` (default ``image`` or ``mask``); ``image``, ``mask``
        and ``prediction`` keys of a composed sample are drawn too.

        Raises:
            ValueError: if the sample holds none of those keys.
        """
        import matplotlib.pyplot as plt

        own = self.sample_key or self._default_key()
        panels = list(dict.fromkeys(k for k in (own, "image", "mask", "prediction") if k in sample))
        if not panels:
            raise ValueError(
                f"{type(self).__name__}.plot: the sample has none of "
                f"{sorted({own, 'image', 'mask', 'prediction'})} (keys: {sorted(sample)})"
            )
        fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        for ax, key in zip(axs[0], panels, strict=True):
            if key == "image" or (key == own and self.is_image):
                rgb = [self.bands.index(b) for b in self.rgb_bands if b in self.bands] or [0]
                img = sample[key][rgb].permute(1, 2, 0).float().numpy()
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

    The files are read once, at construction. With ``cache`` (default) the features
    reprojected to a queried grid's CRS, and their spatial index, are kept (one copy per
    CRS) for later queries; without it every query reprojects and indexes them again.
    ``download=True`` is refused (ValueError) only when no file is found, unless a
    subclass overrides :meth:`_download`.

    As a TorchGeo ``GeoDataset`` the :attr:`index` has one row (the files are merged when
    read): the features' extent over :data:`ALL_TIME` (no row when there is no feature).
    Unlike TorchGeo's ``VectorDataset``, a GeoSlice query rasterises the features already
    in memory instead of reading the file again.

    Args:
        paths: files or directories (searched recursively).
        all_touched: burn every pixel a feature touches (else pixel centres only).
        **kwargs: ``crs``, ``res`` (the TorchGeo face's; a :class:`Grid` carries its own),
            ``transforms``, ``sample_key``, ``cache``, ``download`` and ``checksum``
            (:class:`SourceOptions`, described by :class:`GeoSource`).
    """

    #: Globs of the vector files.
    filename_glob: str | tuple[str, ...] = ("*.geojson", "*.json", "*.gpkg", "*.parquet")

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        all_touched: bool = False,
        **kwargs: Unpack[SourceOptions],
    ) -> None:
        super().__init__(paths, **kwargs)
        self.all_touched = all_touched
        self._files = self._find_files()
        frame = self.load(self.files)
        if frame.crs is None:
            where = self.files[0] if len(self.files) == 1 else f"{len(self.files)} files"
            raise ValueError(
                f"{self.what} ({where}): no CRS; expected georeferenced vector files "
                "(subclass loaders check and name each file)"
            )
        crs = CRS.from_user_input(frame.crs) if self._wanted_crs is None else self._wanted_crs
        features = self._prepare(frame).to_crs(crs)
        features = features[~features.geometry.is_empty & features.geometry.notna()]
        self.features: gpd.GeoDataFrame = features.reset_index(drop=True)
        self._projected: dict[str, gpd.GeoDataFrame] = {}
        res = self._wanted_res or ((1.0, 1.0) if crs.is_projected else (1e-5, 1e-5))
        extent = [] if self.features.empty else [shapely.box(*self.features.total_bounds)]
        merged = [";".join(self.files)] if extent else []
        self._set_index(merged, extent, [ALL_TIME] * len(extent), crs, res)

    def _download(self) -> None:
        """Nothing to fetch: ``download=True`` is refused only when no file is there."""
        if not self._list_files(self.filename_glob):
            super()._download()

    @abc.abstractmethod
    def load(self, files: Sequence[str]) -> gpd.GeoDataFrame:
        """Read the features of ``files`` (any CRS)."""

    def plot(
        self,
        sample: dict[str, Any],
        show_titles: bool = True,
        suptitle: str | None = None,
        color: str = "#ff00ff",
    ) -> Figure:
        """Plot a sample: its mask over the imagery when the sample has ``image``.

        A sample of this source alone draws the mask; one of ``imagery & self`` (or with an
        ``image`` key from anywhere) draws the image, and the mask over it in ``color``
        at 60% opacity, beside the mask alone.

        Args:
            sample: one (unbatched) sample with this source's key (``sample_key``, else
                ``mask``), optionally ``image`` ``(C, H, W)`` (first three bands as RGB).
            show_titles: a title over each panel.
            suptitle: a title over the figure.
            color: the mask's colour over the image.

        Returns:
            The figure.
        """
        import matplotlib.pyplot as plt
        from matplotlib.colors import to_rgb

        from ..plot import image_rgb

        key = self.sample_key or "mask"
        mask = np.asarray(sample[key]).reshape(np.shape(sample[key])[-2:]) > 0
        panels: list[tuple[str, np.ndarray]] = []
        if "image" in sample:
            rgb = image_rgb(sample["image"])
            panels.append(("Image", rgb))
            over = rgb.copy()
            over[mask] = 0.4 * over[mask] + 0.6 * np.asarray(to_rgb(color))
            panels.append((f"{self.what} over image", over))
        panels.append((key.capitalize(), mask.astype(np.float32)))
        fig, axs = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
        for ax, (title, data) in zip(axs[0], panels, strict=True):
            ax.imshow(data, cmap="gray" if data.ndim == 2 else None, interpolation="none")
            ax.axis("off")
            if show_titles:
                ax.set_title(title)
        if suptitle is not None:
            fig.suptitle(suptitle)
        return fig

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

    def _in_crs(self, crs: CRS) -> gpd.GeoDataFrame:
        key = crs.to_wkt()
        if key not in self._projected:
            projected = self.features.to_crs(crs)
            if not self.cache:
                return projected
            self._projected[key] = projected
        return self._projected[key]

    def _reprojected(self, crs: CRS) -> None:
        """:attr:`features` follow :attr:`crs` (as ``&`` sets it)."""
        self.features = self._in_crs(crs)

    def _read(self, grid: Grid, rows: gpd.GeoDataFrame | None = None) -> Sample:
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
        return {"mask": torch.from_numpy(mask.astype(np.int64))}
