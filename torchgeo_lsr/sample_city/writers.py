"""The files' formats: GeoTIFF, OpenStreetMap XML, GeoJSON footprints, the README.

Nothing here draws from the generator: :mod:`.sources` decides what each source holds,
these functions only write it down. GeoTIFFs are written through
:func:`torchgeo_lsr.outputs.atomic_output` and read back before they take their name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from ..outputs import atomic_output, raster_check
from .layout import NAIP_CRS, WGS84, Layout
from .sources import Footprint, OsmWay


def scheme_colormap(
    scheme_codes: Sequence[int], colors: Sequence[tuple[int, int, int]]
) -> dict[int, tuple[int, int, int, int]]:
    """A 256-entry colour table: each code of a scheme in its colour, the rest transparent."""
    cmap = {v: (0, 0, 0, 0) for v in range(256)}
    for code, rgb in zip(scheme_codes, colors, strict=True):
        cmap[code] = (*rgb, 255)
    return cmap


def write_tiff(
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
    """Write ``data`` as a tiled, deflate-compressed GeoTIFF, atomically and read back.

    Args:
        path: the GeoTIFF.
        data: ``(C, H, W)`` pixels.
        transform: pixel-to-CRS transform.
        crs: the CRS.
        nodata: the nodata value, if any.
        colormap: a colour table for band 1 (see :func:`scheme_colormap`).
        descriptions: band names of a 4-band R, G, B, NIR image (sets its colour
            interpretation too).
        tags: dataset tags.
    """
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


def osm_xml(ways: list[OsmWay], layout: Layout) -> str:
    """OpenStreetMap XML (version 0.6) of the ways, nodes in EPSG:4326, bounds the canvas."""
    to_wgs = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True)
    nodes: list[str] = []
    elements: list[str] = []
    node_id = way_id = 1_000_000
    for way in ways:
        lon, lat = to_wgs.transform(way.xy[:, 0], way.xy[:, 1])
        refs = []
        for x, y in zip(lon, lat, strict=True):
            node_id += 1
            nodes.append(f'  <node id="{node_id}" version="1" lat="{y:.7f}" lon="{x:.7f}"/>')
            refs.append(node_id)
        if way.closed:
            refs.append(refs[0])
        way_id += 1
        body = [f'    <nd ref="{r}"/>' for r in refs]
        body += [
            f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(way.tags.items())
        ]
        elements.append(f'  <way id="{way_id}" version="1">\n' + "\n".join(body) + "\n  </way>")
    west, south, east, north = transform_bounds(NAIP_CRS, WGS84, *layout.canvas_bounds)
    header = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<osm version="0.6" generator="torchgeo-lsr sample-city">',
        f'  <bounds minlat="{south:.7f}" minlon="{west:.7f}" '
        f'maxlat="{north:.7f}" maxlon="{east:.7f}"/>',
    ]
    return "\n".join([*header, *nodes, *elements, "</osm>"]) + "\n"


def footprints_geojson(footprints: list[Footprint]) -> str:
    """A GeoJSON FeatureCollection of the footprints in EPSG:4326, as Microsoft's."""
    to_wgs = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True)
    features = []
    for footprint in footprints:
        lon, lat = to_wgs.transform(footprint.ring[:, 0], footprint.ring[:, 1])
        ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "properties": {"height": -1.0, "confidence": footprint.confidence},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, indent=1) + "\n"


def readme_text(meta: dict[str, Any]) -> str:
    """The region's README.md: what was generated, how, and how the weak sources are wrong."""
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
