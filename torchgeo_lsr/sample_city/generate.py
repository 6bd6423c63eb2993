"""Generating a sample city: the stages in order, the metadata, the directory swap.

:func:`make_sample_city` stages the region in a directory next to ``out_dir`` and swaps
it in whole at the end, so a failed run leaves the previous region (or none).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from shapely.geometry import box
from tqdm.auto import tqdm

from ..classes import ENVIROATLAS, ENVIROATLAS5, ENVIROATLAS_TO_ENVIROATLAS5, NLCD, NLCD_FILL
from ..outputs import write_text
from .layout import NAIP_CRS, NLCD_CRS, ORIGIN, Layout, naip_names
from .materials import MATERIAL_CODE
from .scene import draw_scene
from .sources import (
    FOOTPRINT_DROP,
    NLCD_CONFUSION,
    aggregate_nlcd,
    building_footprints,
    imagery,
    osm_xml,
)
from .writers import readme_text, scheme_colormap, write_tiff

NLCD_NAME = "Annual_NLCD_LndCov_2021_CU_C1V1.tif"

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


def make_sample_city(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    tiles: int = 4,
    size: int = 512,
    overwrite: bool = False,
    progress: bool | None = None,
) -> SampleCity:
    """Generate a sample city region directory (see the module docstring).

    Tiles are laid out on a grid of ``ceil(sqrt(tiles))`` columns, row by row, touching
    side by side. The default (4 tiles of 512 px) takes a few seconds.

    Args:
        out_dir: region directory to create.
        seed: random seed; the same seed gives byte-identical files.
        tiles: number of NAIP tiles (1 to 256).
        size: tile side in pixels (1 m), at least 64.
        overwrite: replace an existing non-empty ``out_dir`` (atomically: the region is
            generated next to it, then swapped in).
        progress: show a progress bar; None shows it when stderr is a terminal.

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


def _generate(
    staging: Path, out: Path, seed: int, tiles: int, size: int, progress: bool | None
) -> SampleCity:
    rng = np.random.default_rng(seed)
    cols = math.ceil(math.sqrt(tiles))
    layout = Layout(
        rows=math.ceil(tiles / cols), cols=cols, size=size, west=ORIGIN[0], north=ORIGIN[1]
    )
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=tiles + 4, desc="sample city", unit="step", disable=not show)

    def step(what: str) -> None:
        bar.set_postfix_str(what)
        bar.update()

    def shift(low: float, high: float) -> tuple[float, float]:
        r, a = rng.uniform(low, high), rng.uniform(0, 2 * np.pi)
        return round(float(r * math.cos(a)), 2), round(float(r * math.sin(a)), 2)

    osm_shift, footprint_shift, nlcd_shift = shift(2, 5), shift(1.5, 4), shift(3, 8)
    scene = draw_scene(rng, layout)
    step("scene")
    image = imagery(rng, scene)
    step("imagery")
    for sub in ("naip", "labels", "nlcd", "osm", "buildings"):
        (staging / sub).mkdir()
    names = naip_names(layout, tiles)
    codes = MATERIAL_CODE[scene.material]
    label_cmap = scheme_colormap(ENVIROATLAS.codes or (), ENVIROATLAS.colors)
    gains = []
    for i, name in enumerate(names):
        rows, cols_ = layout.tile_window(i)
        gain = rng.uniform(0.92, 1.08) * rng.uniform(0.97, 1.03, size=4)
        gains.append([round(float(g), 3) for g in gain])
        tile = image[:, rows, cols_] * gain[:, None, None].astype(np.float32) + rng.uniform(-4, 4)
        pixels = np.clip(np.rint(tile), 0, 255).astype(np.uint8)
        transform = layout.tile_transform(i)
        write_tiff(
            staging / "naip" / f"{name}.tif",
            pixels,
            transform,
            NAIP_CRS,
            descriptions=BAND_NAMES,
            tags={"SOURCE": f"torchgeo-lsr sample city, seed {seed} (synthetic NAIP)"},
        )
        write_tiff(
            staging / "labels" / f"{name}.tif",
            codes[None, rows, cols_],
            transform,
            NAIP_CRS,
            nodata=0,
            colormap=label_cmap,
        )
        step(name)

    nlcd, nlcd_transform, nlcd_stats = aggregate_nlcd(rng, layout, scene, nlcd_shift)
    nlcd_cmap = scheme_colormap(NLCD.codes or (), NLCD.colors)
    nlcd_cmap[NLCD_FILL] = (0, 0, 0, 0)
    write_tiff(
        staging / "nlcd" / NLCD_NAME,
        nlcd[None],
        nlcd_transform,
        NLCD_CRS,
        nodata=NLCD_FILL,
        colormap=nlcd_cmap,
    )
    step("nlcd")

    osm_text, osm_counts = osm_xml(rng, scene, layout, osm_shift)
    write_text(staging / "osm" / "sample_city.osm", osm_text)
    collection, footprints = building_footprints(rng, scene, footprint_shift)
    write_text(
        staging / "buildings" / "footprints.geojson", json.dumps(collection, indent=1) + "\n"
    )
    step("osm, buildings")

    tiled = np.concatenate([codes[layout.tile_window(i)].ravel() for i in range(tiles)])
    five, raw = _fractions(tiled)
    tile_area = shapely.unary_union(
        [
            box(*rasterio.transform.array_bounds(size, size, layout.tile_transform(i)))
            for i in range(tiles)
        ]
    )
    n_buildings = (
        int(
            shapely.contains_xy(
                tile_area, *np.array([b.centroid.coords[0] for b in scene.buildings]).T
            ).sum()
        )
        if scene.buildings
        else 0
    )
    n_footprints = (
        int(
            shapely.contains_xy(
                tile_area, *np.array([f.centroid.coords[0] for f in footprints]).T
            ).sum()
        )
        if footprints
        else 0
    )
    true_roads: dict[str, int] = {}
    for way in scene.ways:
        if "highway" in way.tags:
            true_roads[way.tags["highway"]] = true_roads.get(way.tags["highway"], 0) + 1
    meta: dict[str, Any] = {
        "generator": "torchgeo_lsr.sample_city",
        "seed": seed,
        "tiles": tiles,
        "tile_size_px": size,
        "grid": {"rows": layout.rows, "cols": layout.cols},
        "resolution_m": 1.0,
        "crs": {
            "naip": "EPSG:26917",
            "labels": "EPSG:26917",
            "nlcd": "EPSG:5070",
            "osm": "EPSG:4326",
            "buildings": "EPSG:4326",
        },
        "bounds_epsg26917": [
            layout.west,
            layout.north - layout.height,
            layout.west + layout.width,
            layout.north,
        ],
        "class_fractions": five,
        "enviroatlas_fractions": raw,
        "buildings": {
            "true": n_buildings,
            "footprints": n_footprints,
            "dropped_fraction": FOOTPRINT_DROP,
        },
        "osm_ways": osm_counts,
        "true_ways": true_roads,
        "misregistration_m": {
            "osm": list(osm_shift),
            "buildings": list(footprint_shift),
            "nlcd": list(nlcd_shift),
        },
        "nlcd": {
            **nlcd_stats,
            "confusion_rate": NLCD_CONFUSION,
            "changed_areas": [
                {
                    "what": "construction site",
                    "labels": "barren (30)",
                    "nlcd": "forest: the land was cleared after NLCD's year",
                    "polygon_epsg26917": [
                        [round(x, 2), round(y, 2)] for x, y in scene.construction.exterior.coords
                    ],
                }
            ],
        },
        "naip_gains": dict(zip(names, gains, strict=True)),
        "files": {
            "naip": [f"naip/{n}.tif" for n in names],
            "labels": [f"labels/{n}.tif" for n in names],
            "nlcd": f"nlcd/{NLCD_NAME}",
            "osm": "osm/sample_city.osm",
            "buildings": "buildings/footprints.geojson",
        },
    }
    write_text(staging / "city.json", json.dumps(meta, indent=2) + "\n")
    write_text(staging / "README.md", readme_text(meta))
    step("done")
    bar.close()
    return SampleCity(
        root=out,
        naip=tuple(out / "naip" / f"{n}.tif" for n in names),
        labels=tuple(out / "labels" / f"{n}.tif" for n in names),
        nlcd=out / "nlcd" / NLCD_NAME,
        osm=out / "osm" / "sample_city.osm",
        buildings=out / "buildings" / "footprints.geojson",
        readme=out / "README.md",
        metadata=out / "city.json",
        seed=seed,
        tiles=tiles,
        size=size,
        class_fractions=five,
        enviroatlas_fractions=raw,
        n_buildings=n_buildings,
        n_footprints=n_footprints,
    )
