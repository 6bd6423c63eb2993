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
    """What was drawn: the material map now and in NLCD's year, heights and the vectors."""

    material: np.ndarray
    past_material: np.ndarray
    height: np.ndarray
    wet: np.ndarray
    developed: np.ndarray
    ways: list[Way]
    buildings: list[Polygon]
    parking: list[Polygon]
    construction: Polygon


def draw_scene(rng: np.random.Generator, layout: Layout) -> Scene:
    """Draw the vectors and the 1 m material map of the whole canvas."""
    W, H = layout.width, layout.height
    west, north = layout.west - MARGIN, layout.north + MARGIN
    east, south = layout.west + W + MARGIN, layout.north - H - MARGIN
    P = layout.point
    ways: list[Way] = []

    def road(line: LineString, highway: str, **tags: str) -> None:
        ways.append(Way(line, {"highway": highway, **tags}))

    # Arterials: a primary road west-east, a secondary road north-south.
    wiggle = min(12.0, 0.03 * min(W, H))
    primary = wiggly_line(rng, (west, P(0, 0.42)[1]), (east, P(0, 0.44)[1]), wiggle)
    secondary = wiggly_line(rng, (P(0.3, 0)[0], north), (P(0.31, 0)[0], south), wiggle)

    # River: meandering west-east through the south; lake in the north-west.
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
    ways.append(Way(lake_poly.exterior, {"natural": "water", "water": "lake", "name": "Mill Pond"}))

    # Stream: lake outlet -> river, under the primary road through a culvert.
    outlet = (lake_c[0] + 0.1 * lake_r, lake_c[1] - 0.8 * lake_r)
    stream_end = river.interpolate(river.project(Point(outlet[0] + 25, outlet[1])))
    stream = wiggly_line(rng, outlet, (stream_end.x, stream_end.y), 5.0, step=5.0)
    culvert_zone = primary.buffer(ROADS["primary"][0] / 2 + 4)
    for part in parts(stream.difference(culvert_zone), 5):
        ways.append(Way(part, {"waterway": "stream", "name": "Mill Branch"}))
    for part in parts(stream.intersection(culvert_zone), 1):
        ways.append(Way(part, {"waterway": "stream", "tunnel": "culvert", "layer": "-1"}))
    # A second stream joins the river from the south.
    mouth = river.interpolate(river.project(Point(P(0.63, 0)[0], P(0, 0.8)[1])))
    south_stream = wiggly_line(rng, (P(0.66, 0)[0], south), (mouth.x, mouth.y), 4.0, step=5.0)
    south_parts = parts(south_stream.difference(river_poly), 10)
    for part in south_parts:
        ways.append(Way(part, {"waterway": "stream", "intermittent": "yes"}))
    ways.append(Way(river, {"waterway": "river", "name": "Eno River"}))

    # Arterials in OSM, the secondary road split at its bridge.
    road(primary, "primary", name="Hillsborough Road", ref="NC 70", lanes="4")
    bridge_zone = river_poly.buffer(3)
    for part in parts(secondary.difference(bridge_zone), 5):
        road(part, "secondary", name="Cole Mill Road", lanes="2")
    for part in parts(secondary.intersection(bridge_zone), 1):
        road(part, "secondary", name="Cole Mill Road", lanes="2", bridge="yes", layer="1")

    # Residential neighbourhood: north of the primary, east of the secondary.
    south_of_primary = south_of(primary, south - 100)
    neighbourhood = (
        box(west, south, east, north)
        .difference(west_of(secondary, west - 100))
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
        streets += parts(line.intersection(neighbourhood), 30)
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
        for part in parts(line.intersection(neighbourhood.buffer(-6)), 40):
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
        if store.intersects(river_poly.buffer(10)) or lot.intersects(secondary.buffer(12)):
            continue
        parking.append(lot)
        buildings.append(store)
        heights.append(float(rng.uniform(7, 11)))
        roofs.append(int(rng.choice([MATERIAL_INDEX["white roof"], MATERIAL_INDEX["grey roof"]])))
        entry = LineString(
            [
                (centre.x + nx * hw, centre.y + ny * hw),
                (centre.x + nx * (hw + 5), centre.y + ny * (hw + 5)),
            ]
        )
        road(entry, "service", service="parking_aisle")
        ways.append(Way(lot.exterior, {"amenity": "parking", "parking": "surface"}))

    # Construction site between the primary road and the river (forest in NLCD's year).
    site_c = P(0.47, 0.6)
    construction = rectangle(
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
    neighbourhood_mask = burn(layout, [(neighbourhood, 1)]).astype(bool)
    commercial = shapely.unary_union(parking + buildings[: len(parking)]).buffer(15)
    commercial_mask = (
        burn(layout, [(commercial, 1)]).astype(bool) if parking else np.zeros(shape, bool)
    )
    river_mask = burn(layout, [(river_poly, 1)]).astype(bool)
    river_distance = ndimage.distance_transform_edt(~river_mask)

    material = np.full(shape, MATERIAL_INDEX["meadow"], dtype=np.uint8)
    material[field(rng, shape, 40) > 0.5] = MATERIAL_INDEX["dry meadow"]
    material[neighbourhood_mask | commercial_mask] = MATERIAL_INDEX["lawn"]
    field_poly = (
        box(P(0.02, 0)[0], south, P(0.3, 0)[0] - 10, P(0, 0.84)[1])
        .difference(river_poly.buffer(20))
        .difference(secondary.buffer(12))
    )
    material[burn(layout, [(field_poly, 1)]).astype(bool)] = MATERIAL_INDEX["crop field"]

    forest_field = field(rng, shape, 30)
    natural = ~(neighbourhood_mask | commercial_mask) & (material != MATERIAL_INDEX["crop field"])
    forest = natural & (forest_field > 0.25)
    forest |= neighbourhood_mask & (forest_field > 1.6)  # groves at the back of lots
    riparian = river_distance < 22 + 10 * field(rng, shape, 12)
    forest |= riparian & (material != MATERIAL_INDEX["crop field"])
    forest = ndimage.binary_opening(forest, iterations=2)
    material[forest] = MATERIAL_INDEX["forest"]
    edge = ndimage.binary_dilation(forest, iterations=3) & ~forest & natural
    material[edge & (field(rng, shape, 4) > 0.6)] = MATERIAL_INDEX["shrub"]
    # Worn ground, dirt tracks and gravel in the open land.
    open_land = np.isin(material, [MATERIAL_INDEX["meadow"], MATERIAL_INDEX["dry meadow"]])
    material[open_land & (field(rng, shape, 5) > 2.0)] = MATERIAL_INDEX["bare soil"]

    # Water, sand bar, construction site.
    stream_poly = stream.difference(culvert_zone).buffer(1.6)
    water_shapes: list[tuple[BaseGeometry, float]] = [
        (river_poly, MATERIAL_INDEX["river"]),
        (lake_poly, MATERIAL_INDEX["lake"]),
        (stream_poly, MATERIAL_INDEX["stream"]),
    ]
    water_shapes += [(p.buffer(1.2), MATERIAL_INDEX["stream"]) for p in south_parts]
    burnt = burn(layout, water_shapes, fill=255)
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
    material[burn(layout, [(bar, 1)]).astype(bool)] = MATERIAL_INDEX["sand bar"]
    past_material = material.copy()
    site_mask = burn(layout, [(construction, 1)]).astype(bool)
    material[site_mask] = MATERIAL_INDEX["bare soil"]

    # Roads, parking lots and buildings (impervious), drawn on both states.
    paving = [(g.buffer(width / 2), MATERIAL_INDEX["asphalt"]) for g, width in paved]
    for way in ways:
        if way.tags.get("highway") == "footway":
            paving.append(
                (way.geometry.buffer(ROADS["footway"][0] / 2), MATERIAL_INDEX["concrete path"])
            )
    paving += [(lot, MATERIAL_INDEX["parking lot"]) for lot in parking]
    paving += [(b, roof) for b, roof in zip(buildings, roofs, strict=True)]
    burnt = burn(layout, paving, fill=255)
    material[burnt != 255] = burnt[burnt != 255]
    past_material[burnt != 255] = burnt[burnt != 255]
    height = burn(layout, list(zip(buildings, heights, strict=True)), dtype="float32")

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
    discs = burn(layout, [(Point(x, y).buffer(r), 1) for x, y, r in centres])
    soft = ndimage.gaussian_filter(discs.astype(np.float32), 1.2)
    crowns = (soft > 0.05) & (soft + 0.25 * field(rng, shape, 2) > 0.5)  # ragged edges
    crowns &= ~np.isin(
        material, [MATERIAL_INDEX["river"], MATERIAL_INDEX["lake"], MATERIAL_INDEX["stream"]]
    )
    material[crowns] = MATERIAL_INDEX["yard tree"]
    past_material[crowns & ~site_mask] = MATERIAL_INDEX["yard tree"]
    past_material[site_mask & (burnt == 255)] = MATERIAL_INDEX["forest"]

    trees = np.isin(material, [MATERIAL_INDEX["forest"], MATERIAL_INDEX["yard tree"]])
    tree_height = 13 + 3 * field(rng, shape, 6) + 2 * field(rng, shape, 1.5)
    height = np.where(trees, np.maximum(tree_height, 4), height).astype(np.float32)
    height[material == MATERIAL_INDEX["shrub"]] = 1.5

    # Zones for NLCD's rules: wet ground near the river, developed settings.
    wet_ground = (river_distance < 45) & (field(rng, shape, 25) > 0.0)
    developed = neighbourhood_mask | commercial_mask
    return Scene(
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
