"""The pixel grid every weak source is queried on, and the one way to open a raster.

:class:`Grid` is a north-up pixel grid (CRS, affine transform, shape): what a dataset
of :mod:`torchgeo_lsr.datasets` is indexed by, and what the mapping code tiles and
writes. :func:`open_raster` opens a raster file with an error that names it; it lives
here because :meth:`Grid.of_raster` needs it and this module imports nothing else of
the package.

Layering: ``grid`` <- :mod:`~torchgeo_lsr.datasets.warping` <-
:mod:`~torchgeo_lsr.datasets.base`. This module imports no other module of
``torchgeo_lsr``; anyone (warping, the dataset bases, region, priors, mapping) may import
it.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine, array_bounds, from_origin
from rasterio.windows import Window

__all__ = ["Grid", "PathLike", "open_raster"]

#: A file path: a string or an :class:`os.PathLike`.
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
        with open_raster(path, "raster") as src:
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


def open_raster(path: PathLike, what: str) -> rasterio.io.DatasetReader:
    """Open a raster file for reading.

    Args:
        path: the file.
        what: what the raster is, for the error message (``"NLCD"``, ``"raster"``).

    Returns:
        The open dataset (use it as a context manager).

    Raises:
        ValueError: naming ``what`` and ``path``, if rasterio cannot open the file.
    """
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise ValueError(f"{what} {path}: not a readable raster ({err})") from err
