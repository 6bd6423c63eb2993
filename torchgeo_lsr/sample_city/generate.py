"""Generating a sample city: the stages in order, the metadata, the directory swap.

:func:`make_sample_city` stages the region in a directory next to ``out_dir`` and swaps
it in whole at the end, so a failed run leaves the previous region (or none).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from ..classes import ENVIROATLAS, ENVIROATLAS5, ENVIROATLAS_TO_ENVIROATLAS5, NLCD, NLCD_FILL
from ..outputs import write_text
from ..progress import Progress
from .layout import NAIP_CRS, NLCD_CRS, Layout, naip_names
from .materials import MATERIAL_CODE
from .scene import Scene, draw_scene
from .sources import (
    FOOTPRINT_DROP,
    NLCD_CONFUSION,
    Footprint,
    aggregate_nlcd,
    building_footprints,
    imagery,
    naip_tile,
    osm_ways,
)
from .writers import footprints_geojson, osm_xml, readme_text, scheme_colormap, write_tiff

#: The NLCD file, named as the real Annual NLCD release names it.
NLCD_NAME = "Annual_NLCD_LndCov_2021_CU_C1V1.tif"

#: Band descriptions of the NAIP tiles.
BAND_NAMES = ("Red", "Green", "Blue", "NIR")


@dataclass(frozen=True)
class SampleCity:
    """The files of a generated sample city and the scene's ground-truth statistics.

    Attributes:
        root: the region directory.
        naip: imagery tiles, ``naip/*.tif``.
        labels: hi-res label tiles, same stems as ``naip``.
        nlcd: the NLCD GeoTIFF.
        osm: the OpenStreetMap XML file.
        buildings: the building-footprint GeoJSON.
        readme: the region's README.md.
        metadata: ``city.json``.
        seed: generator seed.
        tiles: number of NAIP tiles.
        size: tile side in pixels (1 m).
        class_fractions: fraction of each EnviroAtlas5 target class over the tiles
            (agriculture, which the 5-class scheme ignores, left out).
        enviroatlas_fractions: fraction of each EnviroAtlas class name over the tiles.
        n_buildings: true buildings whose centre lies in the tiles.
        n_footprints: footprints in the GeoJSON whose centre lies in the tiles.
    """

    root: Path
    naip: tuple[Path, ...]
    labels: tuple[Path, ...]
    nlcd: Path
    osm: Path
    buildings: Path
    readme: Path
    metadata: Path
    seed: int
    tiles: int
    size: int
    class_fractions: dict[str, float]
    enviroatlas_fractions: dict[str, float]
    n_buildings: int
    n_footprints: int


def make_sample_city(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    tiles: int = 4,
    size: int = 512,
    overwrite: bool = False,
    progress: bool | None = None,
) -> SampleCity:
    """Generate a sample city region directory (see :mod:`torchgeo_lsr.sample_city`).

    Tiles are laid out on a grid of ``ceil(sqrt(tiles))`` columns, row by row, touching
    side by side. The default (4 tiles of 512 px) takes a few seconds.

    Args:
        out_dir: region directory to create.
        seed: random seed; the same seed gives byte-identical files.
        tiles: number of NAIP tiles (1 to 256).
        size: tile side in pixels (1 m), at least 64.
        overwrite: replace an existing non-empty ``out_dir`` (atomically: the region is
            generated next to it, then swapped in).
        progress: False shows no progress, True shows it, None decides from the
            verbosity (:mod:`torchgeo_lsr.progress`).

    Returns:
        The paths written and the scene's ground-truth statistics.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and ``overwrite`` is False.
        ValueError: on a bad ``tiles`` or ``size``.
    """
    if not 1 <= tiles <= 256:
        raise ValueError(f"tiles must be between 1 and 256, got {tiles}")
    if size < 64:
        raise ValueError(f"size must be at least 64 px, got {size}")
    out = Path(out_dir)
    staging = _prepare_dir(out, overwrite)
    try:
        city = _generate(staging, out, seed, tiles, size, progress)
        _commit_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return city


def _prepare_dir(out_dir: Path, overwrite: bool) -> Path:
    """Check the target and make a staging directory next to it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} already exists and is not empty; pass overwrite=True "
            "(--overwrite) to replace it"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    staging.chmod(0o755)
    return staging


def _commit_dir(staging: Path, out_dir: Path) -> None:
    """Move the staged region into place, replacing what was there."""
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)


def _generate(
    staging: Path, out: Path, seed: int, tiles: int, size: int, progress: bool | None
) -> SampleCity:
    """Draw the city and write its files into ``staging``; the paths it returns are in ``out``.

    The stages draw from one generator in a fixed order (misregistrations, scene, imagery,
    tiles, NLCD, OSM, footprints): the order is part of what a seed means.
    """
    rng = np.random.default_rng(seed)
    layout = Layout.grid(tiles, size)
    bar = Progress("sample city", tiles + 5, "steps", progress=progress)  # as step() is called

    def step(what: str) -> None:
        bar.update(item=what)

    shifts = {
        "osm": _misregistration(rng, 2, 5),
        "buildings": _misregistration(rng, 1.5, 4),
        "nlcd": _misregistration(rng, 3, 8),
    }
    scene = draw_scene(rng, layout)
    step("scene")
    image = imagery(rng, scene)
    step("imagery")
    for sub in ("naip", "labels", "nlcd", "osm", "buildings"):
        (staging / sub).mkdir()
    names = naip_names(layout, tiles)
    files = _Files.of(names)
    codes = MATERIAL_CODE[scene.material]
    gains = _write_tiles(rng, staging, layout, files, image, codes, seed, step)
    nlcd_stats = _write_nlcd(rng, staging / files.nlcd, layout, scene, shifts["nlcd"])
    step("nlcd")
    osm = osm_ways(rng, scene, shifts["osm"])
    write_text(staging / files.osm, osm_xml(osm, layout))
    footprints = building_footprints(rng, scene, shifts["buildings"])
    write_text(staging / files.buildings, footprints_geojson(footprints))
    step("osm, buildings")

    truth = _truth(layout, tiles, codes, scene, footprints)
    meta = _metadata(
        seed=seed,
        layout=layout,
        tiles=tiles,
        truth=truth,
        osm_counts=_count(_osm_kind(way.tags) for way in osm),
        shifts=shifts,
        nlcd_stats=nlcd_stats,
        construction=scene.construction,
        gains=dict(zip(names, gains, strict=True)),
        files=files,
    )
    write_text(staging / "city.json", json.dumps(meta, indent=2) + "\n")
    write_text(staging / "README.md", readme_text(meta))
    step("done")
    bar.close()
    return SampleCity(
        root=out,
        naip=tuple(out / p for p in files.naip),
        labels=tuple(out / p for p in files.labels),
        nlcd=out / files.nlcd,
        osm=out / files.osm,
        buildings=out / files.buildings,
        readme=out / "README.md",
        metadata=out / "city.json",
        seed=seed,
        tiles=tiles,
        size=size,
        class_fractions=truth.class_fractions,
        enviroatlas_fractions=truth.enviroatlas_fractions,
        n_buildings=truth.n_buildings,
        n_footprints=truth.n_footprints,
    )


@dataclass(frozen=True)
class _Files:
    """The region's files relative to its root, as ``city.json`` lists them."""

    naip: list[str]
    labels: list[str]
    nlcd: str = f"nlcd/{NLCD_NAME}"
    osm: str = "osm/sample_city.osm"
    buildings: str = "buildings/footprints.geojson"

    @classmethod
    def of(cls, names: list[str]) -> _Files:
        """The files of a region whose NAIP tiles have these names."""
        return cls(naip=[f"naip/{n}.tif" for n in names], labels=[f"labels/{n}.tif" for n in names])


@dataclass(frozen=True)
class _Truth:
    """What the scene holds inside the tiles (fractions over the tiles' pixels)."""

    class_fractions: dict[str, float]
    enviroatlas_fractions: dict[str, float]
    n_buildings: int
    n_footprints: int
    true_ways: dict[str, int]


def _misregistration(rng: np.random.Generator, low: float, high: float) -> tuple[float, float]:
    """An ``(east, north)`` shift (m) of length between ``low`` and ``high``, any direction."""
    r, a = rng.uniform(low, high), rng.uniform(0, 2 * np.pi)
    return round(float(r * math.cos(a)), 2), round(float(r * math.sin(a)), 2)


def _write_tiles(
    rng: np.random.Generator,
    staging: Path,
    layout: Layout,
    files: _Files,
    image: np.ndarray,
    codes: np.ndarray,
    seed: int,
    done: Callable[[str], None],
) -> list[list[float]]:
    """Write each NAIP tile (its own gain) and its label tile; returns the gains.

    ``done`` is called with each tile's name once both of its files are written.
    """
    label_cmap = scheme_colormap(ENVIROATLAS.codes or (), ENVIROATLAS.colors)
    gains = []
    for i, (naip, labels) in enumerate(zip(files.naip, files.labels, strict=True)):
        rows, cols = layout.tile_window(i)
        pixels, gain = naip_tile(rng, image, (rows, cols))
        gains.append(gain)
        transform = layout.tile_transform(i)
        write_tiff(
            staging / naip,
            pixels,
            transform,
            NAIP_CRS,
            descriptions=BAND_NAMES,
            tags={"SOURCE": f"torchgeo-lsr sample city, seed {seed} (synthetic NAIP)"},
        )
        write_tiff(
            staging / labels,
            codes[None, rows, cols],
            transform,
            NAIP_CRS,
            nodata=0,
            colormap=label_cmap,
        )
        done(Path(naip).stem)
    return gains


def _write_nlcd(
    rng: np.random.Generator, path: Path, layout: Layout, scene: Scene, shift: tuple[float, float]
) -> dict[str, Any]:
    """Aggregate and write the NLCD GeoTIFF (with NLCD's colour table); returns its stats."""
    nlcd, transform, stats = aggregate_nlcd(rng, layout, scene, shift)
    cmap = scheme_colormap(NLCD.codes or (), NLCD.colors)
    cmap[NLCD_FILL] = (0, 0, 0, 0)
    write_tiff(path, nlcd[None], transform, NLCD_CRS, nodata=NLCD_FILL, colormap=cmap)
    return stats


def _truth(
    layout: Layout, tiles: int, codes: np.ndarray, scene: Scene, footprints: list[Footprint]
) -> _Truth:
    """Class fractions, buildings and footprints inside the tiles, and the scene's roads."""
    tiled = np.concatenate([codes[layout.tile_window(i)].ravel() for i in range(tiles)])
    five, raw = _fractions(tiled)
    tile_area = shapely.unary_union(
        [
            box(
                *rasterio.transform.array_bounds(layout.size, layout.size, layout.tile_transform(i))
            )
            for i in range(tiles)
        ]
    )
    return _Truth(
        class_fractions=five,
        enviroatlas_fractions=raw,
        n_buildings=_count_inside(tile_area, scene.buildings),
        n_footprints=_count_inside(tile_area, [f.polygon for f in footprints]),
        true_ways=_count(w.tags["highway"] for w in scene.ways if "highway" in w.tags),
    )


def _fractions(codes: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """EnviroAtlas5 and EnviroAtlas class fractions of raw codes."""
    index = ENVIROATLAS.code_to_index(codes)
    counts = np.bincount(index.ravel(), minlength=len(ENVIROATLAS))
    raw = {
        ENVIROATLAS.names[i]: round(float(c) / float(counts.sum()), 5)
        for i, c in enumerate(counts)
        if c
    }
    five = ENVIROATLAS_TO_ENVIROATLAS5[index]
    c5 = np.bincount(five[five != 255].ravel(), minlength=len(ENVIROATLAS5))
    total = max(int(c5.sum()), 1)
    return {n: round(float(c / total), 5) for n, c in zip(ENVIROATLAS5.names, c5, strict=True)}, raw


def _count_inside(area: BaseGeometry, polygons: list[Polygon]) -> int:
    """How many of ``polygons`` have their centroid in ``area``."""
    if not polygons:
        return 0
    centres = np.array([p.centroid.coords[0] for p in polygons])
    return int(shapely.contains_xy(area, *centres.T).sum())


def _count(keys: Iterable[str]) -> dict[str, int]:
    """How often each key occurs, in the order of first occurrence."""
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts


def _osm_kind(tags: dict[str, str]) -> str:
    """What an OSM way is, for ``city.json``: its highway, waterway, natural or amenity tag."""
    return (
        tags.get("highway")
        or tags.get("waterway")
        or tags.get("natural")
        or tags.get("amenity", "other")
    )


def _metadata(
    *,
    seed: int,
    layout: Layout,
    tiles: int,
    truth: _Truth,
    osm_counts: dict[str, int],
    shifts: dict[str, tuple[float, float]],
    nlcd_stats: dict[str, Any],
    construction: Polygon,
    gains: dict[str, list[float]],
    files: _Files,
) -> dict[str, Any]:
    """``city.json``: the seed, sizes, CRSs, ground truth and every error applied."""
    return {
        "generator": "torchgeo_lsr.sample_city",
        "seed": seed,
        "tiles": tiles,
        "tile_size_px": layout.size,
        "grid": {"rows": layout.rows, "cols": layout.cols},
        "resolution_m": 1.0,
        "crs": {
            "naip": "EPSG:26917",
            "labels": "EPSG:26917",
            "nlcd": "EPSG:5070",
            "osm": "EPSG:4326",
            "buildings": "EPSG:4326",
        },
        "bounds_epsg26917": list(layout.bounds),
        "class_fractions": truth.class_fractions,
        "enviroatlas_fractions": truth.enviroatlas_fractions,
        "buildings": {
            "true": truth.n_buildings,
            "footprints": truth.n_footprints,
            "dropped_fraction": FOOTPRINT_DROP,
        },
        "osm_ways": osm_counts,
        "true_ways": truth.true_ways,
        "misregistration_m": {source: list(shift) for source, shift in shifts.items()},
        "nlcd": {
            **nlcd_stats,
            "confusion_rate": NLCD_CONFUSION,
            "changed_areas": [
                {
                    "what": "construction site",
                    "labels": "barren (30)",
                    "nlcd": "forest: the land was cleared after NLCD's year",
                    "polygon_epsg26917": [
                        [round(x, 2), round(y, 2)] for x, y in construction.exterior.coords
                    ],
                }
            ],
        },
        "naip_gains": gains,
        "files": asdict(files),
    }
