#!/usr/bin/env python3
"""Generate the small OpenStreetMap extract used by the unit tests (run from this folder).

A 400 m x 400 m block near Charlotte, NC (35.2 N, 80.8 W), designed in UTM 17N metres
(EPSG:32617) and written in lon/lat with 7 decimals (OSM's precision, about 1 cm):

* ``region.osm``: OSM XML with roads of several classes (motorway, primary, residential,
  service, footway), a secondary road in a tunnel and a ``highway=proposed`` way (both
  must not be rasterised as roads), a bus-stop node, a river and an open stream, a
  stream in a culvert (``tunnel=culvert``) and a drain tagged ``culvert=yes`` (both must
  be excluded), a lake (closed way, ``natural=water``), a pond as a multipolygon relation
  with an island (inner ring), a reservoir tagged only ``landuse=reservoir``, a dry
  detention ``landuse=basin`` (excluded), and a building.
* ``region.geojson``: the same ways and relation as already-extracted features (one
  property per tag), written with plain ``json`` so it does not depend on the code under
  test.

Coordinates are jittered by a seeded generator by up to 1 m so that nothing sits exactly
on the pixel lattice of a 1 m grid.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from pyproj import Transformer

#: South-west corner of the block in EPSG:32617.
X0, Y0 = 518_000.0, 3_895_500.0

#: Ways: (id, tags, vertices in metres relative to (X0, Y0)); closed ways repeat vertex 0.
WAYS: list[tuple[int, dict[str, str], list[tuple[float, float]]]] = [
    (101, {"highway": "primary", "name": "Primary Street"}, [(20, 100), (380, 100)]),
    (102, {"highway": "residential"}, [(40, 180), (200, 260), (380, 300)]),
    (103, {"highway": "motorway", "ref": "I-77"}, [(300, 20), (320, 390)]),
    (104, {"highway": "footway"}, [(60, 20), (60, 90)]),
    (105, {"highway": "service"}, [(120, 120), (120, 170)]),
    (106, {"highway": "secondary", "tunnel": "yes", "layer": "-1"}, [(340, 150), (390, 150)]),
    (107, {"highway": "proposed"}, [(200, 120), (280, 120)]),
    (201, {"waterway": "river", "name": "Sugar Creek"}, [(10, 370), (150, 350), (290, 375)]),
    (202, {"waterway": "stream"}, [(170, 280), (170, 345)]),
    (203, {"waterway": "stream", "tunnel": "culvert"}, [(20, 190), (20, 340)]),
    (204, {"waterway": "drain", "culvert": "yes"}, [(240, 200), (240, 240)]),
    (
        301,
        {"natural": "water", "water": "lake", "name": "Lake Test"},
        [(130, 20), (250, 25), (260, 70), (200, 85), (140, 75), (130, 20)],
    ),
    (302, {}, [(40, 230), (130, 230), (130, 320), (40, 320), (40, 230)]),  # pond outer
    (303, {}, [(70, 260), (100, 260), (100, 290), (70, 290), (70, 260)]),  # island
    (
        304,
        {"landuse": "reservoir"},
        [(335, 335), (390, 335), (390, 390), (335, 390), (335, 335)],
    ),
    (305, {"landuse": "basin"}, [(260, 120), (290, 120), (290, 150), (260, 150), (260, 120)]),
    (
        306,
        {"building": "yes"},
        [(150, 130), (170, 130), (170, 150), (150, 150), (150, 130)],
    ),
]
#: Relations: (id, tags, [(way id, role)]).
RELATIONS = [
    (
        401,
        {"type": "multipolygon", "natural": "water", "water": "pond"},
        [(302, "outer"), (303, "inner")],
    ),
]
#: Tagged nodes: (id, tags, position).
NODES = [(9001, {"highway": "bus_stop"}, (30, 110))]


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(0)
    to_lonlat = Transformer.from_crs("EPSG:32617", "EPSG:4326", always_xy=True)
    shift = rng.uniform(0.1, 0.9, size=2)  # whole block off the metre lattice
    coords: dict[int, tuple[float, float]] = {}
    node_ids: dict[tuple[float, float], int] = {}
    way_nodes: dict[int, list[int]] = {}
    next_id = 1
    for way_id, _, vertices in WAYS:
        ids = []
        for vx, vy in vertices:
            key = (vx, vy)
            if key not in node_ids:  # shared vertices are shared nodes, as in OSM
                x = X0 + vx + shift[0] + rng.uniform(-0.3, 0.3)
                y = Y0 + vy + shift[1] + rng.uniform(-0.3, 0.3)
                lon, lat = to_lonlat.transform(x, y)
                node_ids[key] = next_id
                coords[next_id] = (round(lon, 7), round(lat, 7))
                next_id += 1
            ids.append(node_ids[key])
        way_nodes[way_id] = ids
    for node_id, _, (vx, vy) in NODES:
        lon, lat = to_lonlat.transform(X0 + vx + shift[0], Y0 + vy + shift[1])
        coords[node_id] = (round(lon, 7), round(lat, 7))

    def tags_xml(tags: dict[str, str]) -> list[str]:
        return [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()]

    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="data.py">']
    lons = [c[0] for c in coords.values()]
    lats = [c[1] for c in coords.values()]
    lines.append(
        f'  <bounds minlat="{min(lats)}" minlon="{min(lons)}" maxlat="{max(lats)}" '
        f'maxlon="{max(lons)}"/>'
    )
    node_tags = {node_id: tags for node_id, tags, _ in NODES}
    for node_id, (lon, lat) in sorted(coords.items()):
        attrs = f'id="{node_id}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"'
        if node_id in node_tags:
            lines += [f"  <node {attrs}>", *tags_xml(node_tags[node_id]), "  </node>"]
        else:
            lines.append(f"  <node {attrs}/>")
    for way_id, tags, _ in WAYS:
        lines.append(f'  <way id="{way_id}" version="1">')
        lines += [f'    <nd ref="{n}"/>' for n in way_nodes[way_id]]
        lines += [*tags_xml(tags), "  </way>"]
    for rel_id, tags, members in RELATIONS:
        lines.append(f'  <relation id="{rel_id}" version="1">')
        lines += [f'    <member type="way" ref="{w}" role="{r}"/>' for w, r in members]
        lines += [*tags_xml(tags), "  </relation>"]
    lines.append("</osm>")
    (out / "region.osm").write_text("\n".join(lines) + "\n")

    features = []
    for way_id, tags, _ in WAYS:
        if not tags:
            continue
        ring = [list(coords[n]) for n in way_nodes[way_id]]
        closed = way_nodes[way_id][0] == way_nodes[way_id][-1]
        area = closed and not ({"highway", "waterway"} & tags.keys())
        geometry = (
            {"type": "Polygon", "coordinates": [ring]}
            if area
            else {
                "type": "LineString",
                "coordinates": ring,
            }
        )
        props = {"element": "way", "id": way_id, **tags}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    for rel_id, tags, members in RELATIONS:
        rings = [[list(coords[n]) for n in way_nodes[w]] for w, _ in members]
        props = {"element": "relation", "id": rel_id, **tags}
        geometry = {"type": "Polygon", "coordinates": rings}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    collection = {"type": "FeatureCollection", "features": features}
    (out / "region.geojson").write_text(json.dumps(collection, indent=None) + "\n")


if __name__ == "__main__":
    main()
