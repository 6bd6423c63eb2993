"""A synthetic but realistic sample city, written in the real formats of each source.

:func:`make_sample_city` draws a small 1 m scene (a road network with arterials and a
residential street grid, houses with lawns and yard trees, a meandering river with a sand
bar, a lake with a stream and a culvert, forest, meadows, a construction site) and writes
it as a *region directory*::

    REGION/
      naip/       4-band (R, G, B, NIR) uint8 GeoTIFF tiles, EPSG:26917 (UTM 17N), 1 m
      nlcd/       Annual_NLCD_LndCov_2021_CU_C1V1.tif: NLCD codes, EPSG:5070, 30 m
      osm/        sample_city.osm: OpenStreetMap XML (roads, waterways, a lake), EPSG:4326
      buildings/  footprints.geojson: Microsoft-style footprints, EPSG:4326
      labels/     EnviroAtlas 1 m land-cover codes, one GeoTIFF per NAIP tile
      README.md   what was generated, how, and how the weak sources are wrong
      city.json   seed, sizes, class fractions and the applied errors

The weak sources are imperfect the way real ones are, so a benchmark on this city does
not flatter a method: NLCD is aggregated to 30 m with NLCD's own rules from a slightly
misregistered, *older* state of the scene (a construction site is still forest), and a few
percent of its cells are relabelled to a plausible neighbour class; OSM and the building
footprints are shifted by a few metres, jittered, simplified and incomplete.

Everything is drawn from one seeded generator: the same seed gives byte-identical files.

Example::

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     city = make_sample_city(f"{tmp}/city", tiles=1, size=128, progress=False)
    ...     [p.name for p in city.naip], sorted(city.class_fractions)
    (['m_3507801_ne_17_060_20220615.tif'], ['barren', 'grass', 'impervious', 'trees', 'water'])

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from rasterio.warp import reproject, transform_bounds
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, MultiLineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring
from tqdm.auto import tqdm

from .classes import ENVIROATLAS, ENVIROATLAS5, ENVIROATLAS_TO_ENVIROATLAS5, NLCD, NLCD_FILL
from .outputs import atomic_output, raster_check, write_text

__all__ = ["NAIP_CRS", "NLCD_CRS", "SampleCity", "main", "make_sample_city"]

#: NAIP in North Carolina: NAD83 / UTM zone 17N.
NAIP_CRS = CRS.from_epsg(26917)
#: NLCD: NAD83 / Conus Albers.
NLCD_CRS = CRS.from_epsg(5070)
WGS84 = CRS.from_epsg(4326)

#: North-west corner of the tiled area (EPSG:26917), in Durham, NC.
ORIGIN = (688_000.0, 3_985_000.0)
#: Scene drawn this far beyond the tiles (m), so 30 m NLCD cells at the edges are whole.
MARGIN = 64
NAIP_DATE = "20220615"
NLCD_NAME = "Annual_NLCD_LndCov_2021_CU_C1V1.tif"
#: NLCD's grid: cell edges at 30 k + 15 m in EPSG:5070 (CONUS origin -2493045, 3310005).
NLCD_RES = 30.0
NLCD_GRID_OFFSET = 15.0

# EnviroAtlas raw codes used by the scene.
WATER, IMPERVIOUS, BARREN, TREES, SHRUB, GRASS, AGRICULTURE = 10, 20, 30, 40, 52, 70, 80


@dataclass(frozen=True)
class _Material:
    """A surface: its EnviroAtlas code, NAIP-like DN (R, G, B, NIR) and texture strength."""

    name: str
    code: int
    spectrum: tuple[int, int, int, int]
    texture: float


#: Surfaces of the scene. Index = value of the material map. Spectra are typical 8-bit NAIP
#: DN of a summer acquisition: water dark with little NIR, vegetation bright in NIR,
#: asphalt and roofs grey (roofs vary), soil and sand bright brownish.
MATERIALS = (
    _Material("meadow", GRASS, (118, 134, 90, 178), 7.0),
    _Material("lawn", GRASS, (100, 132, 82, 192), 6.0),
    _Material("dry meadow", GRASS, (142, 144, 104, 166), 8.0),
    _Material("crop field", AGRICULTURE, (122, 140, 90, 182), 5.0),
    _Material("forest", TREES, (56, 80, 58, 160), 15.0),
    _Material("yard tree", TREES, (62, 86, 60, 166), 14.0),
    _Material("shrub", SHRUB, (88, 100, 74, 150), 10.0),
    _Material("lake", WATER, (44, 58, 66, 24), 2.5),
    _Material("river", WATER, (66, 78, 72, 34), 3.5),
    _Material("stream", WATER, (58, 70, 66, 40), 4.0),
    _Material("bare soil", BARREN, (176, 156, 126, 150), 10.0),
    _Material("sand bar", BARREN, (196, 186, 160, 168), 8.0),
    _Material("asphalt", IMPERVIOUS, (104, 104, 102, 92), 4.0),
    _Material("concrete path", IMPERVIOUS, (168, 166, 158, 150), 5.0),
    _Material("parking lot", IMPERVIOUS, (124, 122, 118, 108), 6.0),
    _Material("grey roof", IMPERVIOUS, (148, 146, 144, 134), 5.0),
    _Material("dark roof", IMPERVIOUS, (82, 80, 80, 76), 4.0),
    _Material("red roof", IMPERVIOUS, (150, 104, 92, 104), 5.0),
    _Material("white roof", IMPERVIOUS, (212, 210, 206, 196), 4.0),
    _Material("tan roof", IMPERVIOUS, (162, 146, 124, 136), 5.0),
)
_M = {m.name: i for i, m in enumerate(MATERIALS)}
ROOFS = tuple(_M[n] for n in ("grey roof", "dark roof", "red roof", "white roof", "tan roof"))
MATERIAL_CODE = np.array([m.code for m in MATERIALS], dtype=np.uint8)
MATERIAL_SPECTRUM = np.array([m.spectrum for m in MATERIALS], dtype=np.float32)
MATERIAL_TEXTURE = np.array([m.texture for m in MATERIALS], dtype=np.float32)

#: Road classes: OSM highway value -> (paved width in m, probability the way is in OSM).
ROADS = {
    "primary": (20.0, 1.0),
    "secondary": (14.0, 1.0),
    "residential": (8.0, 0.97),
    "service": (6.0, 0.6),
    "footway": (2.5, 0.6),
}
DRIVEWAY_WIDTH = 4.0
STREET_NAMES = (
    "Oak", "Maple", "Dogwood", "Willow", "Hickory", "Magnolia", "Cedar", "Sycamore", "Poplar",
    "Chestnut", "Laurel", "Holly", "Birch", "Pine", "Elm", "Ash",
)  # fmt: skip

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
NLCD_CONFUSION = 0.05
FOOTPRINT_DROP = 0.15

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


@dataclass
class _Way:
    """A linear or closed OSM feature in UTM coordinates."""

    geometry: LineString
    tags: dict[str, str]


@dataclass
class _Layout:
    """The tiled area and the 1 m canvas (tiles + margin) in EPSG:26917."""

    rows: int
    cols: int
    size: int
    west: float
    north: float

    @property
    def width(self) -> int:
        return self.cols * self.size

    @property
    def height(self) -> int:
        return self.rows * self.size

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return self.height + 2 * MARGIN, self.width + 2 * MARGIN

    @property
    def canvas_transform(self) -> Affine:
        return from_origin(self.west - MARGIN, self.north + MARGIN, 1.0, 1.0)

    def point(self, fx: float, fy: float) -> tuple[float, float]:
        """UTM coordinates of a point given as fractions of the tiled area (fy from the top)."""
        return self.west + fx * self.width, self.north - fy * self.height

    def tile_window(self, index: int) -> tuple[slice, slice]:
        """Canvas rows and columns of tile ``index``."""
        r, c = divmod(index, self.cols)
        top, left = MARGIN + r * self.size, MARGIN + c * self.size
        return slice(top, top + self.size), slice(left, left + self.size)

    def tile_transform(self, index: int) -> Affine:
        r, c = divmod(index, self.cols)
        return from_origin(self.west + c * self.size, self.north - r * self.size, 1.0, 1.0)


@dataclass
class _Scene:
    """What was drawn: the material map now and in NLCD's year, heights and the vectors."""

    material: np.ndarray
    past_material: np.ndarray
    height: np.ndarray
    wet: np.ndarray
    developed: np.ndarray
    ways: list[_Way]
    buildings: list[Polygon]
    parking: list[Polygon]
    construction: Polygon


# --- small numerical helpers -----------------------------------------------------------


def _field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth standard-normal random field with correlation length ``scale`` pixels.

    Drawn on a coarse grid and interpolated, so large scales cost no more than small ones.
    """
    factor = max(1, int(scale // 4))
    coarse_shape = (shape[0] // factor + 4, shape[1] // factor + 4)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape), scale / factor)
    fine = ndimage.zoom(coarse, factor, order=1)[: shape[0], : shape[1]]
    out: np.ndarray = ((fine - fine.mean()) / (fine.std() + 1e-12)).astype(np.float32)
    return out


def _shift(a: np.ndarray, dy: int, dx: int, fill: float = 0.0) -> np.ndarray:
    """``out[y, x] = a[y - dy, x - dx]`` (zero-padded), for the last two axes."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def _smooth_1d(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter1d(rng.standard_normal(n + 8 * int(sigma) + 8), sigma)
    noise = noise[4 * int(sigma) + 4 : 4 * int(sigma) + 4 + n]
    out: np.ndarray = noise / (noise.std() + 1e-12)
    return out


def _wiggly_line(
    rng: np.random.Generator,
    start: tuple[float, float],
    end: tuple[float, float],
    amplitude: float,
    *,
    step: float = 8.0,
    wavelength: float | None = None,
    sine: float = 0.0,
) -> LineString:
    """A line from start to end, bent sideways by smooth noise (and optionally a sine)."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    n = max(3, int(length / step) + 1)
    t = np.linspace(0.0, 1.0, n)
    offset = amplitude * _smooth_1d(rng, n, sigma=max(2.0, 60.0 / step))
    offset *= np.sin(np.pi * t) ** 0.3  # pinned at the ends
    if wavelength is not None:
        offset += sine * np.sin(2 * np.pi * t * length / wavelength + rng.uniform(0, 2 * np.pi))
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    xs = x0 + t * (x1 - x0) + offset * nx
    ys = y0 + t * (y1 - y0) + offset * ny
    return LineString(np.column_stack([xs, ys]))


def _rectangle(cx: float, cy: float, w: float, d: float, angle: float) -> Polygon:
    """A ``w`` x ``d`` rectangle centred on (cx, cy), rotated by ``angle`` degrees."""
    rect = box(-w / 2, -d / 2, w / 2, d / 2)
    return affinity.translate(affinity.rotate(rect, angle, origin=(0, 0)), cx, cy)


def _parts(geom: BaseGeometry, min_length: float = 0.0) -> list[LineString]:
    """The LineStrings of a (multi)line geometry, dropping parts shorter than min_length."""
    if isinstance(geom, LineString):
        lines = [geom]
    elif isinstance(geom, MultiLineString):
        lines = list(geom.geoms)
    elif hasattr(geom, "geoms"):
        lines = [g for g in geom.geoms if isinstance(g, LineString)]
    else:
        lines = []
    return [g for g in lines if not g.is_empty and g.length >= min_length]


def _burn(
    layout: _Layout,
    shapes: Sequence[tuple[BaseGeometry, float]],
    dtype: str = "uint8",
    fill: float = 0,
) -> np.ndarray:
    """Rasterize (geometry, value) pairs onto the canvas; later shapes win."""
    shapes = [(g, v) for g, v in shapes if not g.is_empty]
    if not shapes:
        return np.full(layout.canvas_shape, fill, dtype=dtype)
    out: np.ndarray = rasterize(
        shapes,
        out_shape=layout.canvas_shape,
        transform=layout.canvas_transform,
        fill=fill,
        dtype=dtype,
    )
    return out


# --- the scene -------------------------------------------------------------------------


def _west_of(line: LineString, far: float) -> Polygon:
    """The half-plane west of a north-south line, as a polygon reaching x = far."""
    coords = list(line.coords)
    return Polygon([*coords, (far, coords[-1][1]), (far, coords[0][1])])


def _south_of(line: LineString, far: float) -> Polygon:
    """The half-plane south of a west-east line, as a polygon reaching y = far."""
    coords = list(line.coords)
    return Polygon([*coords, (coords[-1][0], far), (coords[0][0], far)])


def _draw_scene(rng: np.random.Generator, layout: _Layout) -> _Scene:
    """Draw the vectors and the 1 m material map of the whole canvas."""
    W, H = layout.width, layout.height
    west, north = layout.west - MARGIN, layout.north + MARGIN
    east, south = layout.west + W + MARGIN, layout.north - H - MARGIN
    P = layout.point
    ways: list[_Way] = []

    def road(line: LineString, highway: str, **tags: str) -> None:
        ways.append(_Way(line, {"highway": highway, **tags}))

    # Arterials: a primary road west-east, a secondary road north-south.
    wiggle = min(12.0, 0.03 * min(W, H))
    primary = _wiggly_line(rng, (west, P(0, 0.42)[1]), (east, P(0, 0.44)[1]), wiggle)
    secondary = _wiggly_line(rng, (P(0.3, 0)[0], north), (P(0.31, 0)[0], south), wiggle)

    # River: meandering west-east through the south; lake in the north-west.
    river_width = float(rng.uniform(14, 22))
    river = _wiggly_line(
        rng,
        (west, P(0, 0.78)[1]),
        (east, P(0, 0.8)[1]),
        min(8.0, 0.02 * H),
        step=4.0,
        wavelength=float(rng.uniform(260, 420)),
        sine=min(28.0, 0.08 * H),
    )
    river_poly = river.buffer(river_width / 2, cap_style="flat")
    lake_c = P(0.15, 0.2)
    lake_r = float(np.clip(0.06 * min(W, H), 12, 42))
    angles = np.linspace(0, 2 * np.pi, 73)[:-1]
    radial = (
        1
        + 0.12 * np.cos(2 * angles + rng.uniform(0, 6))
        + 0.08 * np.cos(3 * angles + rng.uniform(0, 6))
    )
    lake_poly = Polygon(
        np.column_stack(
            [
                lake_c[0] + 1.3 * lake_r * radial * np.cos(angles),
                lake_c[1] + lake_r * radial * np.sin(angles),
            ]
        )
    )
    ways.append(
        _Way(lake_poly.exterior, {"natural": "water", "water": "lake", "name": "Mill Pond"})
    )

    # Stream: lake outlet -> river, under the primary road through a culvert.
    outlet = (lake_c[0] + 0.1 * lake_r, lake_c[1] - 0.8 * lake_r)
    stream_end = river.interpolate(river.project(Point(outlet[0] + 25, outlet[1])))
    stream = _wiggly_line(rng, outlet, (stream_end.x, stream_end.y), 5.0, step=5.0)
    culvert_zone = primary.buffer(ROADS["primary"][0] / 2 + 4)
    for part in _parts(stream.difference(culvert_zone), 5):
        ways.append(_Way(part, {"waterway": "stream", "name": "Mill Branch"}))
    for part in _parts(stream.intersection(culvert_zone), 1):
        ways.append(_Way(part, {"waterway": "stream", "tunnel": "culvert", "layer": "-1"}))
    # A second stream joins the river from the south.
    mouth = river.interpolate(river.project(Point(P(0.63, 0)[0], P(0, 0.8)[1])))
    south_stream = _wiggly_line(rng, (P(0.66, 0)[0], south), (mouth.x, mouth.y), 4.0, step=5.0)
    south_parts = _parts(south_stream.difference(river_poly), 10)
    for part in south_parts:
        ways.append(_Way(part, {"waterway": "stream", "intermittent": "yes"}))
    ways.append(_Way(river, {"waterway": "river", "name": "Eno River"}))

    # Arterials in OSM, the secondary road split at its bridge.
    road(primary, "primary", name="Hillsborough Road", ref="NC 70", lanes="4")
    bridge_zone = river_poly.buffer(3)
    for part in _parts(secondary.difference(bridge_zone), 5):
        road(part, "secondary", name="Cole Mill Road", lanes="2")
    for part in _parts(secondary.intersection(bridge_zone), 1):
        road(part, "secondary", name="Cole Mill Road", lanes="2", bridge="yes", layer="1")

    # Residential neighbourhood: north of the primary, east of the secondary.
    south_of_primary = _south_of(primary, south - 100)
    neighbourhood = (
        box(west, south, east, north)
        .difference(_west_of(secondary, west - 100))
        .difference(south_of_primary)
        .difference(primary.buffer(ROADS["primary"][0] / 2))
        .difference(secondary.buffer(ROADS["secondary"][0] / 2))
    )
    theta = float(rng.uniform(-15, 15))
    spacing_x, spacing_y = float(rng.uniform(85, 105)), float(rng.uniform(62, 76))
    cx, cy = neighbourhood.centroid.x, neighbourhood.centroid.y
    reach = math.hypot(W, H) + 2 * MARGIN
    grid: list[LineString] = []
    for k in range(-int(reach / spacing_y), int(reach / spacing_y) + 1):
        grid.append(
            LineString([(cx - reach, cy + k * spacing_y), (cx + reach, cy + k * spacing_y)])
        )
    for k in range(-int(reach / spacing_x), int(reach / spacing_x) + 1):
        grid.append(
            LineString([(cx + k * spacing_x, cy - reach), (cx + k * spacing_x, cy + reach)])
        )
    streets: list[LineString] = []
    for line in grid:
        line = affinity.rotate(line, theta, origin=(cx, cy))
        streets += _parts(line.intersection(neighbourhood), 30)
    names = list(rng.permutation(len(STREET_NAMES)))
    for i, street in enumerate(streets):
        suffix = ("Street", "Avenue", "Drive", "Lane")[i % 4]
        road(street, "residential", name=f"{STREET_NAMES[names[i % len(names)]]} {suffix}")
    # Alleys: service lanes half-way between some streets.
    for k in range(-int(reach / spacing_y), int(reach / spacing_y) + 1):
        if rng.random() < 0.5:
            continue
        y = cy + (k + 0.5) * spacing_y
        line = affinity.rotate(
            LineString([(cx - reach, y), (cx + reach, y)]), theta, origin=(cx, cy)
        )
        for part in _parts(line.intersection(neighbourhood.buffer(-6)), 40):
            length = part.length * float(rng.uniform(0.3, 0.7))
            road(substring(part, 0, length), "service", service="alley")

    # Commercial strip south of the primary road: stores with parking lots.
    buildings: list[Polygon] = []
    heights: list[float] = []
    roofs: list[int] = []
    parking: list[Polygon] = []
    hw = ROADS["primary"][0] / 2
    for fx in rng.uniform(0.62, 0.92, size=2 if W >= 600 else 1):
        along = primary.project(Point(P(float(fx), 0.43)))
        a, b = primary.interpolate(along - 1), primary.interpolate(along + 1)
        angle = math.degrees(math.atan2(b.y - a.y, b.x - a.x))
        nx, ny = (b.y - a.y) / 2, -(b.x - a.x) / 2  # unit normal pointing south
        centre = primary.interpolate(along)
        w, d = float(rng.uniform(36, 56)), float(rng.uniform(22, 30))
        lot_d = 24.0
        lot = _rectangle(
            centre.x + nx * (hw + 3 + lot_d / 2),
            centre.y + ny * (hw + 3 + lot_d / 2),
            w + 12,
            lot_d,
            angle,
        )
        store = _rectangle(
            centre.x + nx * (hw + 4 + lot_d + d / 2),
            centre.y + ny * (hw + 4 + lot_d + d / 2),
            w,
            d,
            angle,
        )
        if store.intersects(river_poly.buffer(10)) or lot.intersects(secondary.buffer(12)):
            continue
        parking.append(lot)
        buildings.append(store)
        heights.append(float(rng.uniform(7, 11)))
        roofs.append(int(rng.choice([_M["white roof"], _M["grey roof"]])))
        entry = LineString(
            [
                (centre.x + nx * hw, centre.y + ny * hw),
                (centre.x + nx * (hw + 5), centre.y + ny * (hw + 5)),
            ]
        )
        road(entry, "service", service="parking_aisle")
        ways.append(_Way(lot.exterior, {"amenity": "parking", "parking": "surface"}))

    # Construction site between the primary road and the river (forest in NLCD's year).
    site_c = P(0.47, 0.6)
    construction = _rectangle(
        site_c[0],
        site_c[1],
        min(90.0, 0.12 * W + 24),
        min(60.0, 0.1 * H + 18),
        float(rng.uniform(-10, 10)),
    )

    # Footways: a path round most of the lake and one across the meadow.
    arc = np.radians(np.linspace(300, 600, 40))
    ring = 1.3 * lake_r + 9, lake_r + 9
    path = LineString(
        np.column_stack([lake_c[0] + ring[0] * np.cos(arc), lake_c[1] + ring[1] * np.sin(arc)])
    )
    road(path, "footway", surface="asphalt")
    meadow_path = LineString(
        [path.coords[0], secondary.interpolate(secondary.project(Point(path.coords[0])))]
    )
    road(meadow_path, "footway", surface="asphalt")

    # Houses along both sides of each residential street, with driveways.
    road_lines = [(w.geometry, ROADS[w.tags["highway"]][0]) for w in ways if "highway" in w.tags]
    road_area = shapely.unary_union([g.buffer(width / 2) for g, width in road_lines])
    blocked = shapely.unary_union([road_area.buffer(1.5), river_poly, lake_poly, stream.buffer(4)])
    candidates: list[tuple[Polygon, LineString, float, int]] = []
    for street in streets:
        for side in (-1.0, 1.0):
            t = float(rng.uniform(8, 18))
            while t < street.length - 8:
                a, b = street.interpolate(t - 1), street.interpolate(t + 1)
                tx, ty = (b.x - a.x) / 2, (b.y - a.y) / 2
                nx, ny = -ty * side, tx * side
                w, d = float(rng.uniform(10, 17)), float(rng.uniform(9, 14))
                setback = ROADS["residential"][0] / 2 + float(rng.uniform(7, 13))
                px, py = street.interpolate(t).x, street.interpolate(t).y
                hx, hy = px + nx * (setback + d / 2), py + ny * (setback + d / 2)
                angle = math.degrees(math.atan2(ty, tx)) + float(rng.normal(0, 2))
                if rng.random() < 0.15:
                    angle += float(rng.uniform(-35, 35))
                house = _rectangle(hx, hy, w, d, angle)
                if rng.random() < 0.25:  # L-shaped: a wing at the back
                    wing = _rectangle(
                        hx + nx * (d / 2) + tx * w / 4,
                        hy + ny * (d / 2) + ty * w / 4,
                        w / 2,
                        d / 2,
                        angle,
                    )
                    house = shapely.union(house, wing).buffer(0)
                garage = float(rng.uniform(-0.3, 0.3)) * w
                drive = LineString(
                    [
                        (
                            px + nx * ROADS["residential"][0] / 2 + tx * garage,
                            py + ny * ROADS["residential"][0] / 2 + ty * garage,
                        ),
                        (hx - nx * d / 2 + tx * garage, hy - ny * d / 2 + ty * garage),
                    ]
                )
                candidates.append((house, drive, float(rng.uniform(5, 9)), int(rng.choice(ROOFS))))
                t += w + float(rng.uniform(8, 16))
    kept: list[Polygon] = []
    for house, drive, h, roof in candidates:
        if not neighbourhood.contains(house) or house.intersects(blocked):
            continue
        halo = house.buffer(2)
        if any(halo.intersects(other) for other in kept[-60:]):
            continue
        kept.append(house)
        buildings.append(house)
        heights.append(h)
        roofs.append(roof)
        road(drive, "service", service="driveway")
    # Drawing widths of the ways that are paved (driveways are narrower than streets).
    paved = [
        (
            w.geometry,
            DRIVEWAY_WIDTH if w.tags.get("service") == "driveway" else ROADS[w.tags["highway"]][0],
        )
        for w in ways
        if "highway" in w.tags
    ]

    # --- raster layers ---
    shape = layout.canvas_shape
    neighbourhood_mask = _burn(layout, [(neighbourhood, 1)]).astype(bool)
    commercial = shapely.unary_union(parking + buildings[: len(parking)]).buffer(15)
    commercial_mask = (
        _burn(layout, [(commercial, 1)]).astype(bool) if parking else np.zeros(shape, bool)
    )
    river_mask = _burn(layout, [(river_poly, 1)]).astype(bool)
    river_distance = ndimage.distance_transform_edt(~river_mask)

    material = np.full(shape, _M["meadow"], dtype=np.uint8)
    material[_field(rng, shape, 40) > 0.5] = _M["dry meadow"]
    material[neighbourhood_mask | commercial_mask] = _M["lawn"]
    field_poly = (
        box(P(0.02, 0)[0], south, P(0.3, 0)[0] - 10, P(0, 0.84)[1])
        .difference(river_poly.buffer(20))
        .difference(secondary.buffer(12))
    )
    material[_burn(layout, [(field_poly, 1)]).astype(bool)] = _M["crop field"]

    forest_field = _field(rng, shape, 30)
    natural = ~(neighbourhood_mask | commercial_mask) & (material != _M["crop field"])
    forest = natural & (forest_field > 0.25)
    forest |= neighbourhood_mask & (forest_field > 1.6)  # groves at the back of lots
    riparian = river_distance < 22 + 10 * _field(rng, shape, 12)
    forest |= riparian & (material != _M["crop field"])
    forest = ndimage.binary_opening(forest, iterations=2)
    material[forest] = _M["forest"]
    edge = ndimage.binary_dilation(forest, iterations=3) & ~forest & natural
    material[edge & (_field(rng, shape, 4) > 0.6)] = _M["shrub"]
    # Worn ground, dirt tracks and gravel in the open land.
    open_land = np.isin(material, [_M["meadow"], _M["dry meadow"]])
    material[open_land & (_field(rng, shape, 5) > 2.0)] = _M["bare soil"]

    # Water, sand bar, construction site.
    stream_poly = stream.difference(culvert_zone).buffer(1.6)
    water_shapes: list[tuple[BaseGeometry, float]] = [
        (river_poly, _M["river"]),
        (lake_poly, _M["lake"]),
        (stream_poly, _M["stream"]),
    ]
    water_shapes += [(p.buffer(1.2), _M["stream"]) for p in south_parts]
    burnt = _burn(layout, water_shapes, fill=255)
    material[burnt != 255] = burnt[burnt != 255]
    xs = np.linspace(layout.west, layout.west + W, 64)
    crest = int(
        np.argmax(
            [
                abs(river.interpolate(river.project(Point(x, P(0, 0.78)[1]))).y - P(0, 0.79)[1])
                for x in xs
            ]
        )
    )
    bar_at = river.interpolate(river.project(Point(xs[crest], P(0, 0.78)[1])))
    towards_centre = 1.0 if bar_at.y < P(0, 0.79)[1] else -1.0  # inner bank of the bend
    bar = affinity.scale(
        Point(bar_at.x, bar_at.y + towards_centre * river_width * 0.45).buffer(1.0), 24, 6
    )
    material[_burn(layout, [(bar, 1)]).astype(bool)] = _M["sand bar"]
    past_material = material.copy()
    site_mask = _burn(layout, [(construction, 1)]).astype(bool)
    material[site_mask] = _M["bare soil"]

    # Roads, parking lots and buildings (impervious), drawn on both states.
    paving = [(g.buffer(width / 2), _M["asphalt"]) for g, width in paved]
    for way in ways:
        if way.tags.get("highway") == "footway":
            paving.append((way.geometry.buffer(ROADS["footway"][0] / 2), _M["concrete path"]))
    paving += [(lot, _M["parking lot"]) for lot in parking]
    paving += [(b, roof) for b, roof in zip(buildings, roofs, strict=True)]
    burnt = _burn(layout, paving, fill=255)
    material[burnt != 255] = burnt[burnt != 255]
    past_material[burnt != 255] = burnt[burnt != 255]
    height = _burn(layout, list(zip(buildings, heights, strict=True)), dtype="float32")

    # Yard and street trees: blobby crowns, some overhanging streets.
    zone_bounds = neighbourhood.bounds
    n_yard = int(neighbourhood.area / 160)
    px = rng.uniform(zone_bounds[0], zone_bounds[2], n_yard)
    py = rng.uniform(zone_bounds[1], zone_bounds[3], n_yard)
    ok = shapely.contains_xy(neighbourhood, px, py) & ~shapely.contains_xy(
        shapely.unary_union([*buildings, road_area]).buffer(2), px, py
    )
    centres = [
        (float(x), float(y), float(rng.uniform(2.5, 6)))
        for x, y in zip(px[ok], py[ok], strict=True)
    ]
    for street in streets:
        for side in (-1.0, 1.0):
            t = float(rng.uniform(0, 10))
            while t < street.length:
                a, b = (
                    street.interpolate(max(t - 1, 0)),
                    street.interpolate(min(t + 1, street.length)),
                )
                seg = max(math.hypot(b.x - a.x, b.y - a.y), 1e-6)
                off = ROADS["residential"][0] / 2 + float(rng.uniform(1, 3))
                if rng.random() < 0.55:
                    p = street.interpolate(t)
                    centres.append(
                        (
                            p.x - side * (b.y - a.y) / seg * off,
                            p.y + side * (b.x - a.x) / seg * off,
                            float(rng.uniform(3, 6)),
                        )
                    )
                t += float(rng.uniform(10, 20))
    discs = _burn(layout, [(Point(x, y).buffer(r), 1) for x, y, r in centres])
    soft = ndimage.gaussian_filter(discs.astype(np.float32), 1.2)
    crowns = (soft > 0.05) & (soft + 0.25 * _field(rng, shape, 2) > 0.5)  # ragged edges
    crowns &= ~np.isin(material, [_M["river"], _M["lake"], _M["stream"]])
    material[crowns] = _M["yard tree"]
    past_material[crowns & ~site_mask] = _M["yard tree"]
    past_material[site_mask & (burnt == 255)] = _M["forest"]

    trees = np.isin(material, [_M["forest"], _M["yard tree"]])
    tree_height = 13 + 3 * _field(rng, shape, 6) + 2 * _field(rng, shape, 1.5)
    height = np.where(trees, np.maximum(tree_height, 4), height).astype(np.float32)
    height[material == _M["shrub"]] = 1.5

    # Zones for NLCD's rules: wet ground near the river, developed settings.
    wet_ground = (river_distance < 45) & (_field(rng, shape, 25) > 0.0)
    developed = neighbourhood_mask | commercial_mask
    return _Scene(
        material=material,
        past_material=past_material,
        height=height,
        wet=wet_ground,
        developed=developed,
        ways=ways,
        buildings=buildings,
        parking=parking,
        construction=construction,
    )


# --- imagery ---------------------------------------------------------------------------


def _imagery(rng: np.random.Generator, scene: _Scene) -> np.ndarray:
    """NAIP-like reflectance (4, H, W) float32 of the canvas, before per-tile gains.

    Class spectra with object-level variation, spatially correlated texture, illumination
    drift, cast shadows of trees and buildings (sun in the south-east at 60 degrees), a
    slight blur (mixed pixels at boundaries) and sensor noise.
    """
    material = scene.material
    shape = material.shape
    spectrum = MATERIAL_SPECTRUM[material].transpose(2, 0, 1)  # (4, H, W)
    texture = np.stack([_field(rng, shape, 1.5) for _ in range(2)])
    strength = MATERIAL_TEXTURE[material]
    # Brightness texture shared by the bands plus a weaker per-band colour texture.
    image = spectrum + strength * texture[0] * (spectrum / 120.0)
    image[:3] += 0.35 * strength * texture[1]
    image *= 1 + 0.05 * _field(rng, shape, 60)  # illumination / phenology drift
    # Cast shadows: pixel p is shaded if some object south-east of it is tall enough.
    height = scene.height
    shade = np.zeros(shape, dtype=bool)
    rise = math.tan(math.radians(60))
    for step in range(1, 10):
        caster = _shift(height, -step, -step)  # the object `step` px south-east
        shade |= caster - step * math.sqrt(2) * rise > height + 0.5
    shade_f = ndimage.gaussian_filter(shade.astype(np.float32), 0.8)
    image *= 1 - shade_f * np.array([0.45, 0.45, 0.4, 0.35], dtype=np.float32)[:, None, None]
    blurred: np.ndarray = ndimage.gaussian_filter(image, sigma=(0, 0.7, 0.7))  # mixed pixels
    blurred += rng.normal(0, 1.5, size=blurred.shape).astype(np.float32)
    return blurred


# --- NLCD ------------------------------------------------------------------------------


def _nlcd_grid(layout: _Layout) -> tuple[Affine, int, int]:
    """NLCD-aligned 30 m EPSG:5070 grid covering the tiles with a two-cell margin."""
    left, bottom, right, top = transform_bounds(
        NAIP_CRS,
        NLCD_CRS,
        layout.west,
        layout.north - layout.height,
        layout.west + layout.width,
        layout.north,
        densify_pts=21,
    )
    off = NLCD_GRID_OFFSET
    left = math.floor((left - off) / NLCD_RES) * NLCD_RES + off - 2 * NLCD_RES
    top = math.ceil((top - off) / NLCD_RES) * NLCD_RES + off + 2 * NLCD_RES
    right = math.ceil((right - off) / NLCD_RES) * NLCD_RES + off + 2 * NLCD_RES
    bottom = math.floor((bottom - off) / NLCD_RES) * NLCD_RES + off - 2 * NLCD_RES
    width, height = round((right - left) / NLCD_RES), round((top - bottom) / NLCD_RES)
    return from_origin(left, top, NLCD_RES, NLCD_RES), height, width


def _nlcd(
    rng: np.random.Generator, layout: _Layout, scene: _Scene, shift: tuple[float, float]
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
        _field(rng, shape, 60),  # forest type (deciduous / mixed / evergreen)
        _field(rng, shape, 60),  # grassland vs pasture
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


# --- vector sources --------------------------------------------------------------------


def _misregister(
    rng: np.random.Generator, coords: np.ndarray, shift: tuple[float, float], jitter: float
) -> np.ndarray:
    out: np.ndarray = coords + np.asarray(shift) + rng.normal(0, jitter, size=coords.shape)
    return out


def _osm_xml(
    rng: np.random.Generator, scene: _Scene, layout: _Layout, shift: tuple[float, float]
) -> tuple[str, dict[str, int]]:
    """OSM XML of the ways: shifted, jittered, simplified and with minor ways missing."""
    to_wgs = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True)
    nodes: list[str] = []
    ways: list[str] = []
    counts: dict[str, int] = {}
    node_id = way_id = 1_000_000
    for way in scene.ways:
        kind = way.tags.get("highway")
        if kind is not None and rng.random() >= ROADS[kind][1]:
            continue  # missing from OSM
        geom = way.geometry.simplify(0.8)
        xy = _misregister(rng, np.asarray(geom.coords), shift, 0.7)
        closed = way.geometry.is_closed
        if closed:
            xy = xy[:-1]
        lon, lat = to_wgs.transform(xy[:, 0], xy[:, 1])
        refs = []
        for x, y in zip(lon, lat, strict=True):
            node_id += 1
            nodes.append(f'  <node id="{node_id}" version="1" lat="{y:.7f}" lon="{x:.7f}"/>')
            refs.append(node_id)
        if closed:
            refs.append(refs[0])
        way_id += 1
        body = [f'    <nd ref="{r}"/>' for r in refs]
        body += [
            f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(way.tags.items())
        ]
        ways.append(f'  <way id="{way_id}" version="1">\n' + "\n".join(body) + "\n  </way>")
        key = (
            kind
            or way.tags.get("waterway")
            or way.tags.get("natural")
            or way.tags.get("amenity", "other")
        )
        counts[key] = counts.get(key, 0) + 1
    west, south, east, north = transform_bounds(
        NAIP_CRS,
        WGS84,
        layout.west - MARGIN,
        layout.north - layout.height - MARGIN,
        layout.west + layout.width + MARGIN,
        layout.north + MARGIN,
    )
    header = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<osm version="0.6" generator="torchgeo-lsr sample-city">',
        f'  <bounds minlat="{south:.7f}" minlon="{west:.7f}" '
        f'maxlat="{north:.7f}" maxlon="{east:.7f}"/>',
    ]
    return "\n".join([*header, *nodes, *ways, "</osm>"]) + "\n", counts


def _footprints(
    rng: np.random.Generator, scene: _Scene, shift: tuple[float, float]
) -> tuple[dict[str, Any], list[Polygon]]:
    """Microsoft-style footprints: regularised, jittered, shifted, some missing, a few false."""
    to_wgs = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True)
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
        shapes.append(
            _rectangle(p.x, p.y, float(rng.uniform(6, 10)), float(rng.uniform(4, 7)), 0.0)
        )
    features = []
    out_shapes = []
    for shape in shapes:
        xy = _misregister(rng, np.asarray(shape.exterior.coords)[:-1], shift, 0.5)
        out_shapes.append(Polygon(xy))
        lon, lat = to_wgs.transform(xy[:, 0], xy[:, 1])
        ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "height": -1.0,
                    "confidence": round(float(rng.uniform(0.8, 0.99)), 2),
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}, out_shapes


# --- names and files -------------------------------------------------------------------


def _naip_names(layout: _Layout, tiles: int) -> list[str]:
    """NAIP quarter-quad names: the real one of the area's centre, then the next ones."""
    lon, lat = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True).transform(
        layout.west + layout.width / 2, layout.north - layout.height / 2
    )
    lat_deg, lon_deg = math.floor(lat), math.floor(-lon)
    row = int((lat_deg + 1 - lat) / 0.125)
    col = int((lon_deg + 1 + lon) / 0.125)
    q_row = int((lat_deg + 1 - lat - row * 0.125) / 0.0625)
    q_col = int((lon_deg + 1 + lon - col * 0.125) / 0.0625)
    start = (row * 8 + col) * 4 + q_row * 2 + q_col
    names = []
    for i in range(tiles):
        q = (start + i) % 256
        quad, quarter = q // 4 + 1, ("nw", "ne", "sw", "se")[q % 4]
        names.append(f"m_{lat_deg:02d}{lon_deg:03d}{quad:02d}_{quarter}_17_060_{NAIP_DATE}")
    return names


def _colormap(
    scheme_codes: Sequence[int], colors: Sequence[tuple[int, int, int]]
) -> dict[int, tuple[int, int, int, int]]:
    cmap = {v: (0, 0, 0, 0) for v in range(256)}
    for code, rgb in zip(scheme_codes, colors, strict=True):
        cmap[code] = (*rgb, 255)
    return cmap


def _write_tiff(
    path: Path,
    data: np.ndarray,
    transform: Affine,
    crs: CRS,
    *,
    nodata: float | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    descriptions: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    count, height, width = data.shape
    with (
        atomic_output(path, raster_check(data, name=path)) as tmp,
        rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=count,
            dtype=data.dtype.name,
            crs=crs,
            transform=transform,
            nodata=nodata,
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
            predictor=2,
            interleave="pixel",
        ) as dst,
    ):
        dst.write(data)
        if colormap is not None:
            dst.write_colormap(1, colormap)
        if descriptions is not None:
            for i, name in enumerate(descriptions, start=1):
                dst.set_band_description(i, name)
            dst.colorinterp = [
                ColorInterp.red,
                ColorInterp.green,
                ColorInterp.blue,
                ColorInterp.undefined,
            ]
        if tags:
            dst.update_tags(**tags)


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


# --- entry points ----------------------------------------------------------------------


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
    layout = _Layout(
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
    scene = _draw_scene(rng, layout)
    step("scene")
    image = _imagery(rng, scene)
    step("imagery")
    for sub in ("naip", "labels", "nlcd", "osm", "buildings"):
        (staging / sub).mkdir()
    names = _naip_names(layout, tiles)
    codes = MATERIAL_CODE[scene.material]
    label_cmap = _colormap(ENVIROATLAS.codes or (), ENVIROATLAS.colors)
    gains = []
    for i, name in enumerate(names):
        rows, cols_ = layout.tile_window(i)
        gain = rng.uniform(0.92, 1.08) * rng.uniform(0.97, 1.03, size=4)
        gains.append([round(float(g), 3) for g in gain])
        tile = image[:, rows, cols_] * gain[:, None, None].astype(np.float32) + rng.uniform(-4, 4)
        pixels = np.clip(np.rint(tile), 0, 255).astype(np.uint8)
        transform = layout.tile_transform(i)
        _write_tiff(
            staging / "naip" / f"{name}.tif",
            pixels,
            transform,
            NAIP_CRS,
            descriptions=BAND_NAMES,
            tags={"SOURCE": f"torchgeo-lsr sample city, seed {seed} (synthetic NAIP)"},
        )
        _write_tiff(
            staging / "labels" / f"{name}.tif",
            codes[None, rows, cols_],
            transform,
            NAIP_CRS,
            nodata=0,
            colormap=label_cmap,
        )
        step(name)

    nlcd, nlcd_transform, nlcd_stats = _nlcd(rng, layout, scene, nlcd_shift)
    nlcd_cmap = _colormap(NLCD.codes or (), NLCD.colors)
    nlcd_cmap[NLCD_FILL] = (0, 0, 0, 0)
    _write_tiff(
        staging / "nlcd" / NLCD_NAME,
        nlcd[None],
        nlcd_transform,
        NLCD_CRS,
        nodata=NLCD_FILL,
        colormap=nlcd_cmap,
    )
    step("nlcd")

    osm_text, osm_counts = _osm_xml(rng, scene, layout, osm_shift)
    write_text(staging / "osm" / "sample_city.osm", osm_text)
    collection, footprints = _footprints(rng, scene, footprint_shift)
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
    write_text(staging / "README.md", _readme(meta))
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


def _readme(meta: dict[str, Any]) -> str:
    fractions = "\n".join(f"| {k} | {100 * v:.1f} % |" for k, v in meta["class_fractions"].items())
    shifts = meta["misregistration_m"]
    return f"""# Sample city (synthetic)

Generated by `torchgeo-lsr sample-city` (`torchgeo_lsr.sample_city.make_sample_city`) with
seed {meta["seed"]}: {meta["tiles"]} NAIP tiles of {meta["tile_size_px"]} x {meta["tile_size_px"]}
px at 1 m on a {meta["grid"]["rows"]} x {meta["grid"]["cols"]} grid, in Durham, NC. Nothing here is
real data; every file is in the format and CRS of the real source, so the same code reads
this region and a real one. The same seed gives byte-identical files.

- `naip/`: NAIP 2022 imagery (R, G, B, NIR) with quarter-quad file names; 4-band uint8
  GeoTIFF, tiled, deflate; EPSG:26917 (NAD83 / UTM 17N), 1 m.
- `labels/`: EnviroAtlas meter-scale land cover in raw codes (10 water, 20 impervious,
  30 barren, 40 trees, 52 shrub, 70 grass, 80 agriculture; 0 nodata); one uint8 GeoTIFF
  per NAIP tile with the same name and grid; EPSG:26917, 1 m. Used only to score.
- `nlcd/`: Annual NLCD land cover 2021 (Collection 1); uint8 GeoTIFF with the NLCD colour
  table, 250 = fill; EPSG:5070 (CONUS Albers) on NLCD's 30 m grid.
- `osm/`: OpenStreetMap extract (roads, waterways, a lake, parking); OSM XML; EPSG:4326.
- `buildings/`: Microsoft-style building footprints; GeoJSON FeatureCollection; EPSG:4326.

## Scene

A primary road (20 m) and a secondary road (14 m, with a bridge) cross the area; north of
the primary road and east of the secondary a residential grid (8 m streets, alleys,
driveways) holds houses (some L-shaped or rotated) on lawns with yard and street trees,
some overhanging the streets. A commercial strip with parking lots lies south of the
primary road. A meandering river with a sand bar, riparian forest, a lake with a paved
path, a stream leaving the lake through a culvert under the primary road, forest patches
with shrub edges, meadows, a crop field and a construction site complete the scene.

Class fractions over the tiles (EnviroAtlas 5-class scheme):

| class | fraction |
|---|---|
{fractions}

Imagery: per-surface NAIP-like spectra (roofs vary), spatially correlated texture,
illumination drift, shadows cast to the north-west by trees and buildings, a slight blur
(mixed pixels at boundaries), sensor noise and a per-tile gain.

## How the weak sources are wrong (on purpose)

- **NLCD**: aggregated to 30 m with NLCD's rules (developed open space / low / medium /
  high by impervious fraction < 20 / 20-49 / 50-79 / >= 80 %, forest 41/42/43, grassland
  71 vs pasture 81, crops 82, barren 31, woody and herbaceous wetlands 90/95 near the
  river) from the scene as it was in 2021: the construction site is still forest. The
  scene is misregistered by {shifts["nlcd"]} m (east, north) before aggregation and
  {100 * meta["nlcd"]["confusion_rate"]:.0f} % of the cells are relabelled to a plausible
  neighbour class.
- **OSM**: shifted by {shifts["osm"]} m plus 0.7 m jitter per node, simplified, and
  incomplete (about 40 % of service roads and footways missing). Ways present:
  {", ".join(f"{k} {v}" for k, v in sorted(meta["osm_ways"].items()))}.
- **Buildings**: shifted by {shifts["buildings"]} m plus 0.5 m jitter per vertex, L shapes
  often regularised to rectangles, slightly rotated and scaled, about
  {100 * meta["buildings"]["dropped_fraction"]:.0f} % of buildings missing and a few false
  detections ({meta["buildings"]["footprints"]} footprints for {meta["buildings"]["true"]}
  buildings inside the tiles).

`city.json` lists the seed, sizes, class fractions and every applied error.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr sample-city OUT_DIR [--seed S] [--tiles N] [--size PX] [--overwrite]``.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 on success, 1 when the output directory exists (without ``--overwrite``).
    """
    parser = argparse.ArgumentParser(
        prog="torchgeo-lsr sample-city",
        description="Generate a synthetic sample city: NAIP tiles, NLCD, OSM, building "
        "footprints and 1 m labels, in the real formats and CRSs of each source.",
    )
    parser.add_argument("out_dir", type=Path, help="region directory to create")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tiles", type=int, default=4, help="number of NAIP tiles (default 4)")
    parser.add_argument(
        "--size", type=int, default=512, help="tile side in pixels at 1 m (default 512)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        city = make_sample_city(
            args.out_dir,
            seed=args.seed,
            tiles=args.tiles,
            size=args.size,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
        )
    except FileExistsError as err:
        print(f"torchgeo-lsr sample-city: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        parser.error(str(err))
    fractions = ", ".join(f"{k} {100 * v:.1f} %" for k, v in city.class_fractions.items())
    print(
        f"wrote {city.root} ({city.tiles} tiles of {city.size} px, seed {city.seed}) in "
        f"{time.perf_counter() - start:.1f} s: {fractions}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
