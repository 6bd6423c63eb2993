"""The imagery and the weak sources, made from the scene the way real ones are wrong.

* :func:`imagery`, :func:`naip_tile`: NAIP-like reflectance with texture, shadows, blur
  and noise; each tile its own gain.
* :func:`aggregate_nlcd`: NLCD codes on NLCD's 30 m grid by NLCD's rules, from the
  misregistered scene of NLCD's year, with a few percent of plausible confusions.
* :func:`osm_ways`, :func:`building_footprints`: the ways and buildings shifted,
  jittered, simplified and incomplete.

Each draws from the city's generator; :mod:`.writers` turns the results into files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.transform import Affine, from_origin
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage
from shapely import affinity
from shapely.geometry import Polygon

from ..classes import NLCD_FILL
from .geometry import field, rectangle, shifted
from .layout import NAIP_CRS, NLCD_CRS, Layout
from .materials import (
    AGRICULTURE,
    BARREN,
    GRASS,
    IMPERVIOUS,
    MATERIAL_CODE,
    MATERIAL_SPECTRUM,
    MATERIAL_TEXTURE,
    ROADS,
    SHRUB,
    TREES,
    WATER,
)
from .scene import Scene

#: NLCD's grid: cell edges at 30 k + 15 m in EPSG:5070 (CONUS origin -2493045, 3310005).
NLCD_RES = 30.0
NLCD_GRID_OFFSET = 15.0

#: Plausible NLCD confusions: a code -> codes it is mistaken for.
NLCD_NEIGHBOURS = {
    11: (95, 90, 21),
    21: (22, 71, 41),
    22: (21, 23),
    23: (22, 24),
    24: (23,),
    31: (22, 71),
    41: (43, 42, 90, 21),
    42: (43, 41),
    43: (41, 42),
    52: (71, 41),
    71: (81, 52, 21),
    81: (71, 82),
    82: (81,),
    90: (41, 95),
    95: (90, 71, 11),
}
#: Fraction of NLCD cells relabelled to a plausible neighbour class.
NLCD_CONFUSION = 0.05
#: Fraction of the buildings the footprints miss.
FOOTPRINT_DROP = 0.15


def imagery(rng: np.random.Generator, scene: Scene) -> np.ndarray:
    """NAIP-like reflectance (4, H, W) float32 of the canvas, before per-tile gains.

    Class spectra with object-level variation, spatially correlated texture, illumination
    drift, cast shadows of trees and buildings (sun in the south-east at 60 degrees), a
    slight blur (mixed pixels at boundaries) and sensor noise.
    """
    material = scene.material
    shape = material.shape
    spectrum = MATERIAL_SPECTRUM[material].transpose(2, 0, 1)  # (4, H, W)
    texture = np.stack([field(rng, shape, 1.5) for _ in range(2)])
    strength = MATERIAL_TEXTURE[material]
    # Brightness texture shared by the bands plus a weaker per-band colour texture.
    image = spectrum + strength * texture[0] * (spectrum / 120.0)
    image[:3] += 0.35 * strength * texture[1]
    image *= 1 + 0.05 * field(rng, shape, 60)  # illumination / phenology drift
    # Cast shadows: pixel p is shaded if some object south-east of it is tall enough.
    height = scene.height
    shade = np.zeros(shape, dtype=bool)
    rise = math.tan(math.radians(60))
    for step in range(1, 10):
        caster = shifted(height, -step, -step)  # the object `step` px south-east
        shade |= caster - step * math.sqrt(2) * rise > height + 0.5
    shade_f = ndimage.gaussian_filter(shade.astype(np.float32), 0.8)
    image *= 1 - shade_f * np.array([0.45, 0.45, 0.4, 0.35], dtype=np.float32)[:, None, None]
    blurred: np.ndarray = ndimage.gaussian_filter(image, sigma=(0, 0.7, 0.7))  # mixed pixels
    blurred += rng.normal(0, 1.5, size=blurred.shape).astype(np.float32)
    return blurred


def naip_tile(
    rng: np.random.Generator, image: np.ndarray, window: tuple[slice, slice]
) -> tuple[np.ndarray, list[float]]:
    """One NAIP tile of the imagery: its own per-band gain and offset, as 8-bit DN.

    Args:
        rng: the city's generator.
        image: the canvas's reflectance from :func:`imagery`.
        window: the tile's canvas rows and columns.

    Returns:
        The ``(4, size, size)`` uint8 pixels and the gains, rounded for ``city.json``.
    """
    rows, cols = window
    gain = rng.uniform(0.92, 1.08) * rng.uniform(0.97, 1.03, size=4)
    tile = image[:, rows, cols] * gain[:, None, None].astype(np.float32) + rng.uniform(-4, 4)
    pixels = np.clip(np.rint(tile), 0, 255).astype(np.uint8)
    return pixels, [round(float(g), 3) for g in gain]


def _nlcd_grid(layout: Layout) -> tuple[Affine, int, int]:
    """NLCD-aligned 30 m EPSG:5070 grid covering the tiles with a two-cell margin."""
    left, bottom, right, top = transform_bounds(NAIP_CRS, NLCD_CRS, *layout.bounds, densify_pts=21)
    off = NLCD_GRID_OFFSET
    left = math.floor((left - off) / NLCD_RES) * NLCD_RES + off - 2 * NLCD_RES
    top = math.ceil((top - off) / NLCD_RES) * NLCD_RES + off + 2 * NLCD_RES
    right = math.ceil((right - off) / NLCD_RES) * NLCD_RES + off + 2 * NLCD_RES
    bottom = math.floor((bottom - off) / NLCD_RES) * NLCD_RES + off - 2 * NLCD_RES
    width, height = round((right - left) / NLCD_RES), round((top - bottom) / NLCD_RES)
    return from_origin(left, top, NLCD_RES, NLCD_RES), height, width


def aggregate_nlcd(
    rng: np.random.Generator, layout: Layout, scene: Scene, shift: tuple[float, float]
) -> tuple[np.ndarray, Affine, dict[str, Any]]:
    """NLCD codes of the scene in NLCD's year, with NLCD's rules and its errors."""
    transform, height, width = _nlcd_grid(layout)
    codes = MATERIAL_CODE[scene.past_material]
    classes = (WATER, IMPERVIOUS, BARREN, TREES, SHRUB, GRASS, AGRICULTURE)
    shape = codes.shape
    bands = [(codes == c).astype(np.float32) for c in classes]
    bands += [
        scene.wet.astype(np.float32),
        scene.developed.astype(np.float32),
        field(rng, shape, 60),  # forest type (deciduous / mixed / evergreen)
        field(rng, shape, 60),  # grassland vs pasture
    ]
    src = np.stack(bands)
    dst = np.zeros((len(bands), height, width), dtype=np.float32)
    src_transform = Affine.translation(*shift) * layout.canvas_transform
    reproject(
        src,
        dst,
        src_transform=src_transform,
        src_crs=NAIP_CRS,
        dst_transform=transform,
        dst_crs=NLCD_CRS,
        resampling=Resampling.average,
        src_nodata=None,
        dst_nodata=None,
    )
    # Valid: the whole 30 m cell lies inside the (shifted) canvas.
    cols, rows = np.meshgrid(np.arange(width + 1), np.arange(height + 1))
    cx, cy = transform * (cols.astype(np.float64), rows.astype(np.float64))
    ux, uy = Transformer.from_crs(NLCD_CRS, NAIP_CRS, always_xy=True).transform(cx, cy)
    inv = ~src_transform
    ccol, crow = inv * (ux, uy)
    inside = (ccol >= 0) & (ccol <= shape[1]) & (crow >= 0) & (crow <= shape[0])
    valid = inside[:-1, :-1] & inside[1:, :-1] & inside[:-1, 1:] & inside[1:, 1:]

    water, imp, barren, trees, shrub, grass, agri = dst[:7]
    wet, developed, forest_type, pasture = dst[7:]
    woody = trees + shrub
    out = np.full((height, width), NLCD_FILL, dtype=np.uint8)
    natural = np.stack([water, barren, woody, grass, agri]).argmax(axis=0)
    forest_code = np.where(forest_type < 0.4, 41, np.where(forest_type < 1.1, 43, 42))
    woody_code = np.where(shrub > trees, 52, np.where(wet > 0.6, 90, forest_code))
    grass_code = np.where(wet > 0.7, 95, np.where(pasture > 0.3, 81, 71))
    code = np.choose(natural, [11, 31, woody_code, grass_code, 82]).astype(np.uint8)
    open_space = (imp >= 0.08) | ((developed > 0.5) & (woody < 0.6))
    code = np.where(open_space, 21, code)
    code = np.where(imp >= 0.2, 22, code)
    code = np.where(imp >= 0.5, 23, code)
    code = np.where(imp >= 0.8, 24, code)
    code = np.where(water >= 0.5, 11, code)
    out[valid] = code[valid]

    # Classification errors: a few percent of cells take a plausible neighbour class.
    confused = valid & (rng.random(out.shape) < NLCD_CONFUSION)
    for c, neighbours in NLCD_NEIGHBOURS.items():
        cells = confused & (out == c)
        picks = np.array(neighbours, dtype=np.uint8)[rng.integers(0, len(neighbours), cells.sum())]
        out[cells] = picks
    stats = {"cells": int(valid.sum()), "confused_cells": int(confused.sum())}
    return out, transform, stats


@dataclass
class OsmWay:
    """A way as OpenStreetMap has it.

    Attributes:
        xy: ``(n, 2)`` nodes in EPSG:26917, misregistered; a closed way's first node is
            not repeated at the end.
        closed: whether the way is a ring.
        tags: its OSM tags.
    """

    xy: np.ndarray
    closed: bool
    tags: dict[str, str]


@dataclass
class Footprint:
    """A building footprint as the detector has it.

    Attributes:
        ring: ``(n, 2)`` vertices in EPSG:26917, misregistered, not closed.
        confidence: the detector's confidence.
    """

    ring: np.ndarray
    confidence: float

    @property
    def polygon(self) -> Polygon:
        """The footprint as a polygon (EPSG:26917)."""
        return Polygon(self.ring)


def _misregister(
    rng: np.random.Generator, coords: np.ndarray, shift: tuple[float, float], jitter: float
) -> np.ndarray:
    out: np.ndarray = coords + np.asarray(shift) + rng.normal(0, jitter, size=coords.shape)
    return out


def osm_ways(rng: np.random.Generator, scene: Scene, shift: tuple[float, float]) -> list[OsmWay]:
    """The scene's ways in OSM: shifted, jittered, simplified and with minor ways missing.

    Args:
        rng: the city's generator.
        scene: the drawn scene.
        shift: ``(east, north)`` misregistration (m) of all nodes.
    """
    ways = []
    for way in scene.ways:
        kind = way.tags.get("highway")
        if kind is not None and rng.random() >= ROADS[kind][1]:
            continue  # missing from OSM
        geom = way.geometry.simplify(0.8)
        xy = _misregister(rng, np.asarray(geom.coords), shift, 0.7)
        closed = way.geometry.is_closed
        if closed:
            xy = xy[:-1]
        ways.append(OsmWay(xy=xy, closed=closed, tags=way.tags))
    return ways


def building_footprints(
    rng: np.random.Generator, scene: Scene, shift: tuple[float, float]
) -> list[Footprint]:
    """Microsoft-style footprints: regularised, jittered, shifted, some missing, a few false.

    Args:
        rng: the city's generator.
        scene: the drawn scene.
        shift: ``(east, north)`` misregistration (m) of all vertices.
    """
    n = len(scene.buildings)
    n_drop = max(1, round(FOOTPRINT_DROP * n)) if n else 0
    dropped = set(rng.choice(n, size=n_drop, replace=False).tolist()) if n else set()
    shapes: list[Polygon] = []
    for i, building in enumerate(scene.buildings):
        if i in dropped:
            continue
        shape = building
        if len(building.exterior.coords) > 5 and rng.random() < 0.6:
            shape = building.minimum_rotated_rectangle  # the model regularises L shapes
        shape = shape.simplify(0.5)
        c = shape.centroid
        shape = affinity.rotate(shape, float(rng.normal(0, 2)), origin=c)
        shape = affinity.scale(shape, *(2 * [float(rng.uniform(0.93, 1.05))]), origin=c)
        shapes.append(shape)
    # A few false detections (sheds and stacked materials) on lots and the construction site.
    for lot in [*scene.parking, scene.construction][: max(0, n_drop // 4)]:
        p = lot.representative_point()
        shapes.append(rectangle(p.x, p.y, float(rng.uniform(6, 10)), float(rng.uniform(4, 7)), 0.0))
    footprints = []
    for shape in shapes:
        ring = _misregister(rng, np.asarray(shape.exterior.coords)[:-1], shift, 0.5)
        footprints.append(Footprint(ring=ring, confidence=round(float(rng.uniform(0.8, 0.99)), 2)))
    return footprints
