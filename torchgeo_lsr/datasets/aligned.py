"""Read imagery with its prior and labels, aligned once onto the imagery grid.

TorchGeo's ``IntersectionDataset`` reprojects every source on every sample. For label
super-resolution the imagery grid is the only grid that matters, so we warp each
auxiliary raster (any CRS, any resolution) onto each imagery tile once, with
:func:`~torchgeo_lsr.datasets.warping.warp_to_grid`, and keep plain arrays.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.transform import array_bounds
from rasterio.warp import transform_bounds

from ..formats import prior_scale
from .grid import Grid
from .warping import FLOAT_FILL, warp_to_grid

__all__ = ["AlignedTile", "list_rasters", "match_by_stem", "read_aligned_tile"]

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")


@dataclass
class AlignedTile:
    """One imagery tile with its prior and labels on the same grid.

    Attributes:
        name: tile name (file stem of the imagery).
        image: ``(C, H, W)`` imagery, as stored (e.g. uint8 for NAIP).
        prior: ``(K, H, W)`` float32 class probabilities; all zeros where nodata.
        mask: ``(H, W)`` int64 labels (``ignore_index`` where nodata), or None.
        crs: the imagery's CRS.
        transform: the imagery's affine transform.
    """

    name: str
    image: np.ndarray
    prior: np.ndarray | None
    mask: np.ndarray | None
    crs: CRS
    transform: rasterio.Affine
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the tile."""
        return int(self.image.shape[-2]), int(self.image.shape[-1])


def list_rasters(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], what: str
) -> list[Path]:
    """Raster files named by ``paths`` (files or directories, searched recursively).

    Raises:
        FileNotFoundError: if a path does not exist or nothing is found.
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in RASTER_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{what}: {p} does not exist")
    if not found:
        raise FileNotFoundError(
            f"{what}: no GeoTIFF (.tif, .tiff, .vrt) under {[str(i) for i in items]}"
        )
    return found


def match_by_stem(images: Sequence[Path], others: Sequence[Path], what: str) -> list[Path]:
    """Pair each image with the file of the same stem, or with a single region-wide file."""
    if len(others) == 1:
        return [others[0]] * len(images)
    by_stem = {p.stem: p for p in others}
    missing = [img.name for img in images if img.stem not in by_stem]
    if missing:
        raise ValueError(
            f"{what}: expected one file per imagery tile with the same stem, or one file for "
            f"the whole region; no match for {missing[:5]} among {sorted(by_stem)[:5]}"
        )
    return [by_stem[img.stem] for img in images]


def _open(path: Path, what: str) -> rasterio.io.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise ValueError(f"{what} {path}: not a readable GeoTIFF ({err})") from err


def _warp(
    path: Path,
    what: str,
    crs: CRS,
    transform: rasterio.Affine,
    shape: tuple[int, int],
    resampling: Resampling,
    dtype: str,
    nodata: float,
    bounds: tuple[float, float, float, float],
) -> np.ndarray:
    """Read ``path`` warped onto the given grid; pixels outside it get ``nodata``."""
    with _open(path, what) as src:
        if src.crs is None:
            raise ValueError(f"{what} {path}: has no CRS; expected a georeferenced raster")
        src_bounds = transform_bounds(src.crs, crs, *src.bounds)
        if (
            src_bounds[0] >= bounds[2]
            or src_bounds[2] <= bounds[0]
            or src_bounds[1] >= bounds[3]
            or src_bounds[3] <= bounds[1]
        ):
            raise ValueError(
                f"{what} {path}: does not overlap the imagery (imagery bounds {bounds} in "
                f"{crs}, {what} bounds {tuple(round(v, 1) for v in src_bounds)})"
            )
        grid = Grid(crs, transform, shape[0], shape[1])
        return warp_to_grid(src, grid, resampling=resampling, dtype=dtype, fill=nodata, what=what)


def read_aligned_tile(
    image_path: Path,
    prior_path: Path | None = None,
    label_path: Path | None = None,
    *,
    label_map: Mapping[int, int] | None = None,
    ignore_index: int = 255,
) -> AlignedTile:
    """Read one imagery tile, and its prior and labels warped onto its grid.

    Args:
        image_path: imagery GeoTIFF (defines the grid).
        prior_path: prior GeoTIFF, one band per class (float probabilities, or uint8
            scaled by 255), any CRS and resolution; bilinear resampling.
        label_path: hi-res labels, any CRS; nearest resampling.
        label_map: optional mapping from stored label codes to class indices; codes not
            in it become ``ignore_index``.
        ignore_index: label value for nodata.

    Returns:
        The aligned tile.

    Raises:
        ValueError: on a file without CRS, not overlapping, or unreadable.
    """
    with _open(image_path, "imagery") as src:
        if src.crs is None:
            raise ValueError(f"imagery {image_path}: has no CRS; expected a georeferenced GeoTIFF")
        try:
            image = src.read()
        except RasterioIOError as err:
            raise ValueError(
                f"imagery {image_path}: could not be read, truncated or corrupt? ({err})"
            ) from err
        crs, transform, shape = src.crs, src.transform, (src.height, src.width)
    bounds = array_bounds(shape[0], shape[1], transform)
    bounds = (bounds[0], bounds[1], bounds[2], bounds[3])

    prior = None
    if prior_path is not None:
        raw = _warp(
            prior_path,
            "prior",
            crs,
            transform,
            shape,
            Resampling.bilinear,
            "float32",
            FLOAT_FILL,
            bounds,
        )
        with _open(prior_path, "prior") as src:
            scale = prior_scale(src)
            nan_is_nodata = src.nodata is not None and np.isnan(src.nodata)
        if not nan_is_nodata and np.isnan(raw).any():
            raise ValueError(
                f"{prior_path}: prior has NaN values over {image_path.name} and no NaN "
                "nodata; a prior holds probabilities (set nodata=nan to mark missing pixels)"
            )
        # in place: a full NAIP tile's prior is ~0.8 GB of float32 per copy
        prior = np.asarray(raw, dtype=np.float32)
        prior[~(prior > FLOAT_FILL)] = 0.0  # the fill value and NaN: no information
        if scale != 1.0:
            prior /= np.float32(scale)
        np.clip(prior, 0, None, out=prior)
        total = prior.sum(axis=0, keepdims=True)
        # where the total is 0 every class is already 0
        np.divide(prior, total, out=prior, where=total > 0)

    mask = None
    if label_path is not None:
        raw_labels = _warp(
            label_path, "labels", crs, transform, shape, Resampling.nearest, "int32", -1, bounds
        )[0]
        if label_map is not None:
            lut_keys = np.array(list(label_map), dtype=np.int64)
            lut_vals = np.array(list(label_map.values()), dtype=np.int64)
            mapped = np.full(raw_labels.shape, ignore_index, dtype=np.int64)
            for k, v in zip(lut_keys, lut_vals, strict=True):
                mapped[raw_labels == k] = v
            mask = mapped
        else:
            mask = np.where(raw_labels < 0, ignore_index, raw_labels).astype(np.int64)

    return AlignedTile(image_path.stem, image, prior, mask, crs, transform)
