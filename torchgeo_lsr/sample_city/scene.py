"""The scene: vectors (roads, water, buildings) and the 1 m material map of the canvas.

:func:`draw_scene` draws, from one seeded generator, the ways that OSM will describe, the
buildings the footprints will describe, and the material map of the scene now and in
NLCD's year (a construction site is forest then), with object heights for the shadows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from .geometry import burn, field, parts, rectangle, south_of, west_of, wiggly_line
from .layout import MARGIN, Layout
from .materials import DRIVEWAY_WIDTH, MATERIAL_INDEX, ROADS, ROOFS

STREET_NAMES = (
    "Oak", "Maple", "Dogwood", "Willow", "Hickory", "Magnolia", "Cedar", "Sycamore", "Poplar",
    "Chestnut", "Laurel", "Holly", "Birch", "Pine", "Elm", "Ash",
)  # fmt: skip


@dataclass
class Way:
    """A linear or closed OSM feature in UTM coordinates."""

    geometry: LineString
    tags: dict[str, str]


@dataclass
class Scene:
    """What was drawn: the material map now and in NLCD's year, heights and the vectors.

    Attributes:
        material: ``(H, W)`` canvas of indices into :data:`.materials.MATERIALS`.
        past_material: the same in NLCD's year (the construction site still forest).
        height: ``(H, W)`` object heights (m): buildings, trees, shrubs.
        wet: ``(H, W)`` wet ground near the river (NLCD's wetland rules).
        developed: ``(H, W)`` residential and commercial settings (NLCD's open space).
        ways: the linear and closed features, as OSM would tag them.
        buildings: building footprints, stores first.
        parking: the stores' parking lots.
        construction: the construction site.
    """

    material: np.ndarray
    past_material: np.ndarray
    height: np.ndarray
    wet: np.ndarray
    developed: np.ndarray
    ways: list[Way]
    buildings: list[Polygon]
    parking: list[Polygon]
    construction: Polygon


@dataclass
class _Water:
    """The river, the lake and the streams (EPSG:26917).

    Attributes:
        river: the river's centre line.
        river_width: its width (m).
        river_area: the river.
        lake: the lake.
        lake_centre: the centre of the lake.
        lake_radius: its north-south semi-axis (m); west-east it is 1.3 times longer.
        stream: from the lake's outlet to the river, under the primary road in
            ``culvert_zone``.
        culvert_zone: where the stream passes under the primary road.
        south_streams: the parts of a second stream, from the south, outside the river.
    """

    river: LineString
    river_width: float
    river_area: Polygon
    lake: Polygon
    lake_centre: tuple[float, float]
    lake_radius: float
    stream: LineString
    culvert_zone: Polygon
    south_streams: list[LineString]


@dataclass
class _Buildings:
    """Buildings with their heights and roof materials, and the parking lots.

    The stores come first, one per parking lot, then the houses.
    """

    footprints: list[Polygon]
    heights: list[float]
    roofs: list[int]
    parking: list[Polygon]

    def add(self, footprint: Polygon, height: float, roof: int) -> None:
        """Add a building with its height (m) and roof material."""
        self.footprints.append(footprint)
        self.heights.append(height)
        self.roofs.append(roof)


@dataclass
class _Zones:
    """Canvas masks of the settings: residential and commercial land, distance to the river."""

    neighbourhood: np.ndarray
    commercial: np.ndarray
    river_distance: np.ndarray


def draw_scene(rng: np.random.Generator, layout: Layout) -> Scene:
    """Draw the vectors and the 1 m material map of the whole canvas.

    Each step draws from ``rng`` in turn, so the order of the steps is part of what a
    seed means: reordering them changes every city.

    Args:
        rng: the city's generator.
        layout: the tiles and the canvas.

    Returns:
        The material map now and in NLCD's year, heights, settings and vectors.
    """
    # Vectors: roads, water, streets, stores, the construction site, paths, houses.
    primary, secondary = _arterials(rng, layout)
    water = _draw_water(rng, layout, primary)
    ways = [*_water_ways(water), *_arterial_ways(primary, secondary, water)]
    neighbourhood = _neighbourhood(layout, primary, secondary)
    streets, street_ways = _streets(rng, layout, neighbourhood)
    ways += street_ways
    built, store_ways = _commercial_strip(rng, layout, primary, secondary, water)
    ways += store_ways
    construction = _construction_site(rng, layout)
    ways += _footways(water, secondary)
    road_area = _road_area(ways)
    blocked = shapely.unary_union(
        [road_area.buffer(1.5), water.river_area, water.lake, water.stream.buffer(4)]
    )
    ways += _place_houses(_house_candidates(rng, streets), neighbourhood, blocked, built)

    # The material map: land cover, water, then (in both states) paving and trees.
    zones = _zones(layout, neighbourhood, built, water)
    material = _land_cover(rng, layout, zones, water, secondary)
    _draw_water_bodies(layout, material, water)
    past_material = material.copy()  # NLCD's year: the construction site not yet cleared
    site = burn(layout, [(construction, 1)]).astype(bool)
    material[site] = MATERIAL_INDEX["bare soil"]
    paved = _pave(layout, ways, built, material, past_material)
    building_height = burn(
        layout, list(zip(built.footprints, built.heights, strict=True)), dtype="float32"
    )
    trees = [*_yard_trees(rng, neighbourhood, built, road_area), *_street_trees(rng, streets)]
    crowns = _crowns(rng, layout, trees, material)
    material[crowns] = MATERIAL_INDEX["yard tree"]
    past_material[crowns & ~site] = MATERIAL_INDEX["yard tree"]
    past_material[site & ~paved] = MATERIAL_INDEX["forest"]
    height = _heights(rng, layout, material, building_height)

    # Zones for NLCD's rules: wet ground near the river, developed settings.
    wet_ground = (zones.river_distance < 45) & (field(rng, layout.canvas_shape, 25) > 0.0)
    return Scene(
        material=material,
        past_material=past_material,
        height=height,
        wet=wet_ground,
        developed=zones.neighbourhood | zones.commercial,
        ways=ways,
        buildings=built.footprints,
        parking=built.parking,
        construction=construction,
    )


# --- vectors ---------------------------------------------------------------------------


def _highway(line: LineString, highway: str, **tags: str) -> Way:
    """A road of OSM class ``highway`` with more OSM tags."""
    return Way(line, {"highway": highway, **tags})


def _arterials(rng: np.random.Generator, layout: Layout) -> tuple[LineString, LineString]:
    """Centre lines of a primary road west-east and a secondary road north-south."""
    west, south, east, north = layout.canvas_bounds
    P = layout.point
    wiggle = min(12.0, 0.03 * min(layout.width, layout.height))
    primary = wiggly_line(rng, (west, P(0, 0.42)[1]), (east, P(0, 0.44)[1]), wiggle)
    secondary = wiggly_line(rng, (P(0.3, 0)[0], north), (P(0.31, 0)[0], south), wiggle)
    return primary, secondary


def _draw_water(rng: np.random.Generator, layout: Layout, primary: LineString) -> _Water:
    """A river meandering west-east through the south, a lake in the north-west, streams."""
    W, H = layout.width, layout.height
    west, south, east, _ = layout.canvas_bounds
    P = layout.point
    river_width = float(rng.uniform(14, 22))
    river = wiggly_line(
        rng,
        (west, P(0, 0.78)[1]),
        (east, P(0, 0.8)[1]),
        min(8.0, 0.02 * H),
        step=4.0,
        wavelength=float(rng.uniform(260, 420)),
        sine=min(28.0, 0.08 * H),
    )
    river_area = river.buffer(river_width / 2, cap_style="flat")
    lake_c = P(0.15, 0.2)
    lake_r = float(np.clip(0.06 * min(W, H), 12, 42))
    lake = _lake(rng, lake_c, lake_r)

    # Stream: lake outlet -> river, under the primary road through a culvert.
    outlet = (lake_c[0] + 0.1 * lake_r, lake_c[1] - 0.8 * lake_r)
    stream_end = river.interpolate(river.project(Point(outlet[0] + 25, outlet[1])))
    stream = wiggly_line(rng, outlet, (stream_end.x, stream_end.y), 5.0, step=5.0)
    # A second stream joins the river from the south.
    mouth = river.interpolate(river.project(Point(P(0.63, 0)[0], P(0, 0.8)[1])))
    south_stream = wiggly_line(rng, (P(0.66, 0)[0], south), (mouth.x, mouth.y), 4.0, step=5.0)
    return _Water(
        river=river,
        river_width=river_width,
        river_area=river_area,
        lake=lake,
        lake_centre=lake_c,
        lake_radius=lake_r,
        stream=stream,
        culvert_zone=primary.buffer(ROADS["primary"][0] / 2 + 4),
        south_streams=parts(south_stream.difference(river_area), 10),
    )


def _lake(rng: np.random.Generator, centre: tuple[float, float], radius: float) -> Polygon:
    """An irregular oval lake, 1.3 times wider west-east than north-south."""
    angles = np.linspace(0, 2 * np.pi, 73)[:-1]
    radial = (
        1
        + 0.12 * np.cos(2 * angles + rng.uniform(0, 6))
        + 0.08 * np.cos(3 * angles + rng.uniform(0, 6))
    )
    return Polygon(
        np.column_stack(
            [
                centre[0] + 1.3 * radius * radial * np.cos(angles),
                centre[1] + radius * radial * np.sin(angles),
            ]
        )
    )


def _water_ways(water: _Water) -> list[Way]:
    """The lake, the streams (the lake's split at its culvert) and the river, as OSM tags them."""
    lake = {"natural": "water", "water": "lake", "name": "Mill Pond"}
    ways = [Way(water.lake.exterior, lake)]
    for part in parts(water.stream.difference(water.culvert_zone), 5):
        ways.append(Way(part, {"waterway": "stream", "name": "Mill Branch"}))
    for part in parts(water.stream.intersection(water.culvert_zone), 1):
        ways.append(Way(part, {"waterway": "stream", "tunnel": "culvert", "layer": "-1"}))
    for part in water.south_streams:
        ways.append(Way(part, {"waterway": "stream", "intermittent": "yes"}))
    ways.append(Way(water.river, {"waterway": "river", "name": "Eno River"}))
    return ways


def _arterial_ways(primary: LineString, secondary: LineString, water: _Water) -> list[Way]:
    """The arterials in OSM, the secondary road split at its bridge."""
    ways = [_highway(primary, "primary", name="Hillsborough Road", ref="NC 70", lanes="4")]
    bridge_zone = water.river_area.buffer(3)
    for part in parts(secondary.difference(bridge_zone), 5):
        ways.append(_highway(part, "secondary", name="Cole Mill Road", lanes="2"))
    for part in parts(secondary.intersection(bridge_zone), 1):
        ways.append(
            _highway(part, "secondary", name="Cole Mill Road", lanes="2", bridge="yes", layer="1")
        )
    return ways


def _neighbourhood(layout: Layout, primary: LineString, secondary: LineString) -> Polygon:
    """The residential area: north of the primary road, east of the secondary."""
    west, south, east, north = layout.canvas_bounds
    return (
        box(west, south, east, north)
        .difference(west_of(secondary, west - 100))
        .difference(south_of(primary, south - 100))
        .difference(primary.buffer(ROADS["primary"][0] / 2))
        .difference(secondary.buffer(ROADS["secondary"][0] / 2))
    )


def _streets(
    rng: np.random.Generator, layout: Layout, neighbourhood: Polygon
) -> tuple[list[LineString], list[Way]]:
    """A rotated street grid clipped to the neighbourhood, and alleys between some streets.

    Returns:
        The residential streets, and the ways of the streets and the alleys.
    """
    theta = float(rng.uniform(-15, 15))
    spacing_x, spacing_y = float(rng.uniform(85, 105)), float(rng.uniform(62, 76))
    cx, cy = neighbourhood.centroid.x, neighbourhood.centroid.y
    reach = math.hypot(layout.width, layout.height) + 2 * MARGIN
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
        streets += parts(line.intersection(neighbourhood), 30)
    names = list(rng.permutation(len(STREET_NAMES)))
    ways = []
    for i, street in enumerate(streets):
        suffix = ("Street", "Avenue", "Drive", "Lane")[i % 4]
        name = f"{STREET_NAMES[names[i % len(names)]]} {suffix}"
        ways.append(_highway(street, "residential", name=name))
    # Alleys: service lanes half-way between some streets.
    for k in range(-int(reach / spacing_y), int(reach / spacing_y) + 1):
        if rng.random() < 0.5:
            continue
        y = cy + (k + 0.5) * spacing_y
        line = affinity.rotate(
            LineString([(cx - reach, y), (cx + reach, y)]), theta, origin=(cx, cy)
        )
        for part in parts(line.intersection(neighbourhood.buffer(-6)), 40):
            length = part.length * float(rng.uniform(0.3, 0.7))
            ways.append(_highway(substring(part, 0, length), "service", service="alley"))
    return streets, ways


def _commercial_strip(
    rng: np.random.Generator,
    layout: Layout,
    primary: LineString,
    secondary: LineString,
    water: _Water,
) -> tuple[_Buildings, list[Way]]:
    """Stores with parking lots south of the primary road (two if the area is wide).

    Returns:
        The stores and their lots, and the ways of the lots and their entries.
    """
    built = _Buildings([], [], [], [])
    ways = []
    hw = ROADS["primary"][0] / 2
    roofs = [MATERIAL_INDEX["white roof"], MATERIAL_INDEX["grey roof"]]
    for fx in rng.uniform(0.62, 0.92, size=2 if layout.width >= 600 else 1):
        along = primary.project(Point(layout.point(float(fx), 0.43)))
        a, b = primary.interpolate(along - 1), primary.interpolate(along + 1)
        angle = math.degrees(math.atan2(b.y - a.y, b.x - a.x))
        nx, ny = (b.y - a.y) / 2, -(b.x - a.x) / 2  # unit normal pointing south
        centre = primary.interpolate(along)
        w, d = float(rng.uniform(36, 56)), float(rng.uniform(22, 30))
        lot_d = 24.0
        lot = rectangle(
            centre.x + nx * (hw + 3 + lot_d / 2),
            centre.y + ny * (hw + 3 + lot_d / 2),
            w + 12,
            lot_d,
            angle,
        )
        store = rectangle(
            centre.x + nx * (hw + 4 + lot_d + d / 2),
            centre.y + ny * (hw + 4 + lot_d + d / 2),
            w,
            d,
            angle,
        )
        if store.intersects(water.river_area.buffer(10)) or lot.intersects(secondary.buffer(12)):
            continue
        built.parking.append(lot)
        built.add(store, float(rng.uniform(7, 11)), int(rng.choice(roofs)))
        entry = LineString(
            [
                (centre.x + nx * hw, centre.y + ny * hw),
                (centre.x + nx * (hw + 5), centre.y + ny * (hw + 5)),
            ]
        )
        ways.append(_highway(entry, "service", service="parking_aisle"))
        ways.append(Way(lot.exterior, {"amenity": "parking", "parking": "surface"}))
    return built, ways


def _construction_site(rng: np.random.Generator, layout: Layout) -> Polygon:
    """A site between the primary road and the river (forest in NLCD's year)."""
    site_c = layout.point(0.47, 0.6)
    return rectangle(
        site_c[0],
        site_c[1],
        min(90.0, 0.12 * layout.width + 24),
        min(60.0, 0.1 * layout.height + 18),
        float(rng.uniform(-10, 10)),
    )


def _footways(water: _Water, secondary: LineString) -> list[Way]:
    """A path round most of the lake and one across the meadow to the secondary road."""
    (cx, cy), r = water.lake_centre, water.lake_radius
    arc = np.radians(np.linspace(300, 600, 40))
    ring = 1.3 * r + 9, r + 9
    path = LineString(np.column_stack([cx + ring[0] * np.cos(arc), cy + ring[1] * np.sin(arc)]))
    meadow_path = LineString(
        [path.coords[0], secondary.interpolate(secondary.project(Point(path.coords[0])))]
    )
    return [
        _highway(path, "footway", surface="asphalt"),
        _highway(meadow_path, "footway", surface="asphalt"),
    ]


def _road_area(ways: list[Way]) -> BaseGeometry:
    """The area of the highways drawn so far, each at its class's width."""
    road_lines = [(w.geometry, ROADS[w.tags["highway"]][0]) for w in ways if "highway" in w.tags]
    return shapely.unary_union([g.buffer(width / 2) for g, width in road_lines])


def _house_candidates(
    rng: np.random.Generator, streets: list[LineString]
) -> list[tuple[Polygon, LineString, float, int]]:
    """Houses along both sides of each street: ``(footprint, driveway, height, roof)``.

    Some are rotated, a quarter are L-shaped; :func:`_place_houses` keeps those that fit.
    """
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
                house = rectangle(hx, hy, w, d, angle)
                if rng.random() < 0.25:  # L-shaped: a wing at the back
                    wing = rectangle(
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
    return candidates


def _place_houses(
    candidates: list[tuple[Polygon, LineString, float, int]],
    neighbourhood: Polygon,
    blocked: BaseGeometry,
    built: _Buildings,
) -> list[Way]:
    """Add to ``built`` the houses inside the neighbourhood, off ``blocked``, not touching.

    Returns:
        The driveways of the houses kept.
    """
    kept: list[Polygon] = []
    driveways = []
    for house, drive, h, roof in candidates:
        if not neighbourhood.contains(house) or house.intersects(blocked):
            continue
        halo = house.buffer(2)
        if any(halo.intersects(other) for other in kept[-60:]):
            continue
        kept.append(house)
        built.add(house, h, roof)
        driveways.append(_highway(drive, "service", service="driveway"))
    return driveways


# --- the material map ------------------------------------------------------------------


def _zones(layout: Layout, neighbourhood: Polygon, built: _Buildings, water: _Water) -> _Zones:
    """Rasterize the settings: the neighbourhood, the stores and lots (15 m round), the river."""
    shape = layout.canvas_shape
    neighbourhood_mask = burn(layout, [(neighbourhood, 1)]).astype(bool)
    stores = built.footprints[: len(built.parking)]
    commercial = shapely.unary_union(built.parking + stores).buffer(15)
    commercial_mask = (
        burn(layout, [(commercial, 1)]).astype(bool) if built.parking else np.zeros(shape, bool)
    )
    river_mask = burn(layout, [(water.river_area, 1)]).astype(bool)
    return _Zones(
        neighbourhood=neighbourhood_mask,
        commercial=commercial_mask,
        river_distance=ndimage.distance_transform_edt(~river_mask),
    )


def _land_cover(
    rng: np.random.Generator, layout: Layout, zones: _Zones, water: _Water, secondary: LineString
) -> np.ndarray:
    """Meadows, lawns, a crop field, forest with shrub edges, worn ground: the material map."""
    shape = layout.canvas_shape
    P = layout.point
    settled = zones.neighbourhood | zones.commercial
    material = np.full(shape, MATERIAL_INDEX["meadow"], dtype=np.uint8)
    material[field(rng, shape, 40) > 0.5] = MATERIAL_INDEX["dry meadow"]
    material[settled] = MATERIAL_INDEX["lawn"]
    crop_field = (
        box(P(0.02, 0)[0], layout.canvas_bounds[1], P(0.3, 0)[0] - 10, P(0, 0.84)[1])
        .difference(water.river_area.buffer(20))
        .difference(secondary.buffer(12))
    )
    material[burn(layout, [(crop_field, 1)]).astype(bool)] = MATERIAL_INDEX["crop field"]

    forest_field = field(rng, shape, 30)
    natural = ~settled & (material != MATERIAL_INDEX["crop field"])
    forest = natural & (forest_field > 0.25)
    forest |= zones.neighbourhood & (forest_field > 1.6)  # groves at the back of lots
    riparian = zones.river_distance < 22 + 10 * field(rng, shape, 12)
    forest |= riparian & (material != MATERIAL_INDEX["crop field"])
    forest = ndimage.binary_opening(forest, iterations=2)
    material[forest] = MATERIAL_INDEX["forest"]
    edge = ndimage.binary_dilation(forest, iterations=3) & ~forest & natural
    material[edge & (field(rng, shape, 4) > 0.6)] = MATERIAL_INDEX["shrub"]
    # Worn ground, dirt tracks and gravel in the open land.
    open_land = np.isin(material, [MATERIAL_INDEX["meadow"], MATERIAL_INDEX["dry meadow"]])
    material[open_land & (field(rng, shape, 5) > 2.0)] = MATERIAL_INDEX["bare soil"]
    return material


def _draw_water_bodies(layout: Layout, material: np.ndarray, water: _Water) -> None:
    """Draw the river, the lake, the streams (not in the culvert) and a sand bar."""
    stream_area = water.stream.difference(water.culvert_zone).buffer(1.6)
    water_shapes: list[tuple[BaseGeometry, float]] = [
        (water.river_area, MATERIAL_INDEX["river"]),
        (water.lake, MATERIAL_INDEX["lake"]),
        (stream_area, MATERIAL_INDEX["stream"]),
    ]
    water_shapes += [(p.buffer(1.2), MATERIAL_INDEX["stream"]) for p in water.south_streams]
    burnt = burn(layout, water_shapes, fill=255)
    material[burnt != 255] = burnt[burnt != 255]
    bar = burn(layout, [(_sand_bar(layout, water), 1)]).astype(bool)
    material[bar] = MATERIAL_INDEX["sand bar"]


def _sand_bar(layout: Layout, water: _Water) -> BaseGeometry:
    """A sand bar on the inner bank of the river's widest bend."""
    P = layout.point
    river = water.river
    xs = np.linspace(layout.west, layout.west + layout.width, 64)
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
    return affinity.scale(
        Point(bar_at.x, bar_at.y + towards_centre * water.river_width * 0.45).buffer(1.0), 24, 6
    )


def _pave(
    layout: Layout,
    ways: list[Way],
    built: _Buildings,
    material: np.ndarray,
    past_material: np.ndarray,
) -> np.ndarray:
    """Draw roads, paths, parking lots and roofs on both states; returns the paved mask."""
    # Drawing widths of the ways that are paved (driveways are narrower than streets).
    paved = [
        (
            w.geometry,
            DRIVEWAY_WIDTH if w.tags.get("service") == "driveway" else ROADS[w.tags["highway"]][0],
        )
        for w in ways
        if "highway" in w.tags
    ]
    paving = [(g.buffer(width / 2), MATERIAL_INDEX["asphalt"]) for g, width in paved]
    for way in ways:
        if way.tags.get("highway") == "footway":
            paving.append(
                (way.geometry.buffer(ROADS["footway"][0] / 2), MATERIAL_INDEX["concrete path"])
            )
    paving += [(lot, MATERIAL_INDEX["parking lot"]) for lot in built.parking]
    paving += [(b, roof) for b, roof in zip(built.footprints, built.roofs, strict=True)]
    burnt = burn(layout, paving, fill=255)
    mask: np.ndarray = burnt != 255
    material[mask] = burnt[mask]
    past_material[mask] = burnt[mask]
    return mask


def _yard_trees(
    rng: np.random.Generator, neighbourhood: Polygon, built: _Buildings, road_area: BaseGeometry
) -> list[tuple[float, float, float]]:
    """Tree crowns ``(x, y, radius)`` scattered over the lots, off roofs and roads."""
    zone_bounds = neighbourhood.bounds
    n_yard = int(neighbourhood.area / 160)
    px = rng.uniform(zone_bounds[0], zone_bounds[2], n_yard)
    py = rng.uniform(zone_bounds[1], zone_bounds[3], n_yard)
    ok = shapely.contains_xy(neighbourhood, px, py) & ~shapely.contains_xy(
        shapely.unary_union([*built.footprints, road_area]).buffer(2), px, py
    )
    return [
        (float(x), float(y), float(rng.uniform(2.5, 6)))
        for x, y in zip(px[ok], py[ok], strict=True)
    ]


def _street_trees(
    rng: np.random.Generator, streets: list[LineString]
) -> list[tuple[float, float, float]]:
    """Tree crowns ``(x, y, radius)`` along both sides of each street, some overhanging it."""
    centres = []
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
    return centres


def _crowns(
    rng: np.random.Generator,
    layout: Layout,
    centres: list[tuple[float, float, float]],
    material: np.ndarray,
) -> np.ndarray:
    """Mask of blobby, ragged-edged tree crowns at ``centres``, not over water."""
    discs = burn(layout, [(Point(x, y).buffer(r), 1) for x, y, r in centres])
    soft = ndimage.gaussian_filter(discs.astype(np.float32), 1.2)
    crowns = (soft > 0.05) & (soft + 0.25 * field(rng, layout.canvas_shape, 2) > 0.5)
    crowns &= ~np.isin(
        material, [MATERIAL_INDEX["river"], MATERIAL_INDEX["lake"], MATERIAL_INDEX["stream"]]
    )
    out: np.ndarray = crowns
    return out


def _heights(
    rng: np.random.Generator, layout: Layout, material: np.ndarray, building_height: np.ndarray
) -> np.ndarray:
    """Object heights (m): buildings, trees of 13 m give or take, shrubs of 1.5 m."""
    shape = layout.canvas_shape
    trees = np.isin(material, [MATERIAL_INDEX["forest"], MATERIAL_INDEX["yard tree"]])
    tree_height = 13 + 3 * field(rng, shape, 6) + 2 * field(rng, shape, 1.5)
    height = np.where(trees, np.maximum(tree_height, 4), building_height).astype(np.float32)
    height[material == MATERIAL_INDEX["shrub"]] = 1.5
    return height
