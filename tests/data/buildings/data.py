#!/usr/bin/env python3
"""Generate the building-footprint fixtures used by the unit tests (run from this folder).

Thirty seeded rectangular footprints (6 to 25 m a side, some rotated) in a 200 m x 200 m
block near Charlotte, NC (35.2 N, 80.8 W), designed in UTM 17N metres (EPSG:32617) and
written in lon/lat (EPSG:4326) like Microsoft's US Building Footprints, in three formats:

* ``buildings.geojson``: a FeatureCollection (Microsoft's release-2 layout, with its
  ``release`` and ``capture_dates_range`` properties);
* ``buildings.geojsonl``: the same features, one per line (Microsoft's newer releases);
* ``buildings.gpkg``: the same features in a GeoPackage (written by pyogrio without
  spatial index, then repacked into 512-byte SQLite pages to keep the file small).

The JSON files are written with plain ``json`` so they do not depend on the code under
test. Footprints do not overlap (a candidate closer than 3 m to a kept one is redrawn).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity

#: South-west corner of the block in EPSG:32617.
X0, Y0 = 518_000.0, 3_895_500.0
SIZE = 200.0
COUNT = 30


def footprints(rng: np.random.Generator) -> list[shapely.Polygon]:
    """Non-overlapping, partly rotated rectangles in EPSG:32617."""
    kept: list[shapely.Polygon] = []
    while len(kept) < COUNT:
        w, h = rng.uniform(6, 25, size=2)
        cx, cy = rng.uniform(20, SIZE - 20, size=2)
        box = shapely.box(X0 + cx - w / 2, Y0 + cy - h / 2, X0 + cx + w / 2, Y0 + cy + h / 2)
        if rng.random() < 0.5:
            box = affinity.rotate(box, rng.uniform(5, 40))
        if all(box.distance(k) > 3 for k in kept):
            kept.append(box)
    return kept


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(0)
    to_lonlat = Transformer.from_crs("EPSG:32617", "EPSG:4326", always_xy=True)
    features = []
    for polygon in footprints(rng):
        xs, ys = np.asarray(polygon.exterior.coords).T
        lon, lat = to_lonlat.transform(xs, ys)
        ring = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]
        features.append(
            {
                "type": "Feature",
                "properties": {"release": 2, "capture_dates_range": "2019-2020"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    (out / "buildings.geojson").write_text(json.dumps(collection) + "\n")
    (out / "buildings.geojsonl").write_text("".join(json.dumps(f) + "\n" for f in features))

    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"release": [2] * len(features)},
        geometry=[shapely.geometry.shape(f["geometry"]) for f in features],
        crs="EPSG:4326",
    )
    gpkg = out / "buildings.gpkg"
    gpkg.unlink(missing_ok=True)
    frame.to_file(gpkg, driver="GPKG", engine="pyogrio", SPATIAL_INDEX="NO")
    # SQLite's default 4 KiB pages leave most of the file empty; repack into 512 B pages.
    with closing(sqlite3.connect(gpkg)) as db:
        db.execute("PRAGMA page_size = 512")
        db.execute("VACUUM")


if __name__ == "__main__":
    main()
