"""Tests for the synthetic sample city: formats, CRSs, realism of the scene and its sources."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmnx as ox
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject, transform_bounds
from shapely.geometry import Polygon

from torchgeo_lsr.classes import ENVIROATLAS, ENVIROATLAS5, ENVIROATLAS_TO_ENVIROATLAS5, NLCD
from torchgeo_lsr.sample_city import ROADS, SampleCity, main, make_sample_city

TILES, SIZE = 2, 256
#: NLCD code -> the EnviroAtlas5 class that usually dominates such a cell (82 left out).
NLCD_MAJORITY = {
    11: 0, 21: 4, 22: 4, 23: 1, 24: 1, 31: 2, 41: 3, 42: 3, 43: 3, 52: 3, 90: 3,
    71: 4, 81: 4, 95: 4,
}  # fmt: skip
#: NLCD developed code -> impervious fraction range [low, high).
INTENSITY = {21: (0.0, 0.2), 22: (0.2, 0.5), 23: (0.5, 0.8), 24: (0.8, 1.01)}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> SampleCity:
    return make_sample_city(
        tmp_path_factory.mktemp("city") / "region", seed=0, tiles=TILES, size=SIZE, progress=False
    )


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        data: np.ndarray = src.read()
    return data


def five_class(codes: np.ndarray) -> np.ndarray:
    """EnviroAtlas raw codes -> EnviroAtlas5 index (255 = ignored)."""
    out: np.ndarray = ENVIROATLAS_TO_ENVIROATLAS5[ENVIROATLAS.code_to_index(codes)]
    return out


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def label_fractions_on_nlcd(city: SampleCity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NLCD codes, per-cell 5-class fractions of the true labels, and cells fully covered."""
    with rasterio.open(city.nlcd) as src:
        nlcd, transform, crs = src.read(1), src.transform, src.crs
    fractions = np.zeros((6, *nlcd.shape), dtype=np.float32)
    for path in city.labels:
        with rasterio.open(path) as src:
            index = five_class(src.read(1))
            onehot = np.stack(
                [(index == k) for k in (*range(5), 255)] + [np.ones_like(index, bool)]
            ).astype(np.float32)
            part = np.zeros((7, *nlcd.shape), dtype=np.float32)
            reproject(
                onehot,
                part,
                src_transform=src.transform,
                src_crs=src.crs,
                dst_transform=transform,
                dst_crs=crs,
                resampling=Resampling.sum,
            )
        fractions += part[:6]
    total = fractions.sum(axis=0)
    full = total > 0.95 * 900  # the whole 30 m cell lies in the tiles
    return nlcd, fractions / np.maximum(total, 1), full


# --- formats and CRSs ------------------------------------------------------------------


def test_files_and_layout(city: SampleCity) -> None:
    assert len(city.naip) == len(city.labels) == TILES
    assert [p.name for p in city.naip] == [p.name for p in city.labels]
    assert len({p.name for p in city.naip}) == TILES
    for p in city.naip:
        assert p.name.startswith("m_")
        assert p.name.endswith("_17_060_20220615.tif")
    for p in (*city.naip, *city.labels, city.nlcd, city.osm, city.buildings, city.readme):
        assert p.is_file()
        assert p.stat().st_size > 0
    assert city.nlcd.name == "Annual_NLCD_LndCov_2021_CU_C1V1.tif"
    meta = json.loads(city.metadata.read_text())
    assert meta["seed"] == 0
    assert meta["tiles"] == TILES
    assert meta["tile_size_px"] == SIZE
    assert meta["class_fractions"] == city.class_fractions
    assert "EPSG:5070" in city.readme.read_text()
    # No temporary files left next to the region or inside it.
    assert [p.name for p in city.root.parent.iterdir()] == [city.root.name]
    assert not [p for p in all_files(city.root) if p.name.startswith(".")]


def test_naip_tiles(city: SampleCity) -> None:
    bounds = []
    for path in city.naip:
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 26917
            assert src.res == (1.0, 1.0)
            assert (src.count, src.height, src.width) == (4, SIZE, SIZE)
            assert src.dtypes == ("uint8",) * 4
            assert src.descriptions == ("Red", "Green", "Blue", "NIR")
            assert src.block_shapes == [(256, 256)] * 4  # tiled, not stripped
            assert src.compression.name.lower() == "deflate"
            image = src.read()
            bounds.append(src.bounds)
        assert image.std() > 10  # real content, not a constant
    # Side by side on one grid: the second tile starts where the first ends.
    assert bounds[0].right == bounds[1].left
    assert bounds[0].top == bounds[1].top


def test_labels_align_with_naip(city: SampleCity) -> None:
    for naip, labels in zip(city.naip, city.labels, strict=True):
        with rasterio.open(naip) as a, rasterio.open(labels) as b:
            assert b.crs == a.crs
            assert b.transform == a.transform
            assert b.shape == a.shape
            assert b.nodata == 0
            assert b.dtypes == ("uint8",)
            codes = b.read(1)
            assert b.colormap(1)[40][:3] == ENVIROATLAS.colors[4]
        assert set(np.unique(codes).tolist()) <= {10, 20, 30, 40, 52, 70, 80}


def test_nlcd_file(city: SampleCity) -> None:
    with rasterio.open(city.nlcd) as src:
        assert src.crs.to_epsg() == 5070
        assert src.res == (30.0, 30.0)
        assert src.nodata == 250
        # On NLCD's CONUS grid: cell edges at 30 k + 15 m.
        assert src.transform.c % 30 == 15
        assert src.transform.f % 30 == 15
        cmap = src.colormap(1)
        codes = src.read(1)
        tiles = [rasterio.open(p) for p in city.naip]
        try:
            for tile in tiles:
                left, bottom, right, top = transform_bounds(tile.crs, src.crs, *tile.bounds)
                assert src.bounds.left < left
                assert src.bounds.right > right
                assert src.bounds.bottom < bottom
                assert src.bounds.top > top
        finally:
            for tile in tiles:
                tile.close()
    for code, rgb in zip(NLCD.codes or (), NLCD.colors, strict=True):
        if code:
            assert cmap[code][:3] == rgb
    present = set(np.unique(codes).tolist())
    assert present <= {*(NLCD.codes or ()), 250} - {0, 12}
    assert 250 in present  # the rotated UTM canvas leaves fill in the Albers corners
    assert len(present & {21, 22, 23, 24}) >= 3
    assert present & {41, 42, 43}
    assert 11 in present or 90 in present or 95 in present


def test_osm_reads_with_osmnx(city: SampleCity) -> None:
    features = ox.features_from_xml(city.osm)
    assert features.crs.to_epsg() == 4326
    highways = set(features["highway"].dropna())
    assert {"primary", "secondary", "residential", "service", "footway"} <= highways
    waterways = features[features["waterway"].notna()]
    assert "river" in set(waterways["waterway"])
    streams = waterways[waterways["waterway"] == "stream"]
    assert (streams["tunnel"] == "culvert").sum() >= 1
    assert (streams["tunnel"] != "culvert").sum() >= 1
    lakes = features[features["natural"] == "water"]
    assert len(lakes) >= 1
    assert lakes.geometry.iloc[0].geom_type == "Polygon"
    assert lakes.to_crs(26917).area.iloc[0] > 300


def test_buildings_geojson(city: SampleCity) -> None:
    footprints = gpd.read_file(city.buildings)
    assert footprints.crs.to_epsg() == 4326
    assert set(footprints.geom_type) == {"Polygon"}
    assert {"height", "confidence"} <= set(footprints.columns)
    area = footprints.to_crs(26917).area
    assert area.min() > 15
    assert area.median() < 600
    raw = json.loads(city.buildings.read_text())
    assert raw["type"] == "FeatureCollection"
    assert len(raw["features"]) == len(footprints)
    # Incomplete: fewer footprints than true buildings.
    assert 0 < city.n_footprints < city.n_buildings
    assert city.n_footprints >= 0.7 * city.n_buildings


# --- realism of the scene --------------------------------------------------------------


def test_class_fractions(city: SampleCity) -> None:
    codes = np.concatenate([read(p).ravel() for p in city.labels])
    index = five_class(codes)
    fractions = np.bincount(index[index != 255], minlength=5) / (index != 255).sum()
    assert dict(zip(ENVIROATLAS5.names, fractions.round(5).tolist(), strict=True)) == pytest.approx(
        city.class_fractions, abs=1e-4
    )
    water, impervious, barren, trees, grass = fractions
    assert 0.01 < water < 0.25
    assert 0.05 < impervious < 0.45
    assert 0.002 < barren < 0.1
    assert 0.1 < trees < 0.65
    assert 0.1 < grass < 0.65
    assert (codes == 52).mean() < 0.03  # a little shrub


def test_nlcd_agrees_with_labels_realistically(city: SampleCity) -> None:
    nlcd, fractions, full = label_fractions_on_nlcd(city)
    majority = fractions[:6].argmax(axis=0)  # 5 = ignored (agriculture)
    mapped = np.full(nlcd.shape, 255, dtype=np.int64)
    for code, k in NLCD_MAJORITY.items():
        mapped[nlcd == code] = k
    cells = full & (mapped != 255) & (majority != 5)
    assert cells.sum() > 50
    agreement = (mapped[cells] == majority[cells]).mean()
    assert 0.55 < agreement < 0.95, agreement


def test_nlcd_developed_intensity_rule(city: SampleCity) -> None:
    nlcd, fractions, full = label_fractions_on_nlcd(city)
    impervious = fractions[1]
    hits = total = 0
    for code, (low, high) in INTENSITY.items():
        cells = full & (nlcd == code)
        total += int(cells.sum())
        hits += int(((impervious[cells] >= low) & (impervious[cells] < high)).sum())
    assert total > 20
    assert 0.6 < hits / total < 1.0, hits / total
    # Cells with no impervious surface at all are not medium/high intensity.
    assert not (full & (impervious == 0) & np.isin(nlcd, [23, 24])).any()


def test_nlcd_misses_a_changed_area(city: SampleCity) -> None:
    meta = json.loads(city.metadata.read_text())
    (change,) = meta["nlcd"]["changed_areas"]
    site = Polygon(change["polygon_epsg26917"])
    with rasterio.open(city.nlcd) as src:
        nlcd, transform = src.read(1), src.transform
        rows, cols = np.mgrid[0 : nlcd.shape[0], 0 : nlcd.shape[1]]
        x, y = transform * (cols + 0.5, rows + 0.5)
        ux, uy = Transformer.from_crs(src.crs, 26917, always_xy=True).transform(x, y)
    inside = shapely.contains_xy(site.buffer(-12), ux, uy)  # cell centres well inside
    assert inside.sum() >= 1
    assert np.isin(nlcd[inside], [41, 42, 43, 90]).mean() >= 0.5  # NLCD: still forest
    labels = [read(p)[0] for p in city.labels]
    transforms = [rasterio.open(p).transform for p in city.labels]
    barren = []
    for codes, t in zip(labels, transforms, strict=True):
        r, c = np.mgrid[0 : codes.shape[0], 0 : codes.shape[1]]
        px, py = t * (c + 0.5, r + 0.5)
        barren.append(codes[shapely.contains_xy(site.buffer(-2), px, py)])
    assert (np.concatenate(barren) == 30).mean() > 0.9  # today: bare soil


def test_footprints_are_shifted(city: SampleCity) -> None:
    footprints = gpd.read_file(city.buildings).to_crs(26917)
    shift = json.loads(city.metadata.read_text())["misregistration_m"]["buildings"]

    def overlap(dx: float, dy: float) -> float:
        hit = count = 0
        for path in city.labels:
            with rasterio.open(path) as src:
                impervious = src.read(1) == 20
                shapes = [(g, 1) for g in footprints.translate(dx, dy).geometry]
                mask = rasterize(shapes, out_shape=src.shape, transform=src.transform) == 1
            hit += int(impervious[mask].sum())
            count += int(mask.sum())
        return hit / count

    observed, corrected = overlap(0.0, 0.0), overlap(-shift[0], -shift[1])
    assert 0.5 < observed < 0.95
    assert corrected > observed


def test_osm_roads_are_misregistered_but_informative(city: SampleCity) -> None:
    features = ox.features_from_xml(city.osm)
    roads = features[features["highway"].notna()].to_crs(26917)
    roads = roads[roads.geom_type == "LineString"]
    widths = roads["highway"].map(lambda h: ROADS[h][0]).astype(float)
    shift = json.loads(city.metadata.read_text())["misregistration_m"]["osm"]

    def precision(dx: float, dy: float) -> tuple[float, float]:
        hit = count = 0
        for path in city.labels:
            with rasterio.open(path) as src:
                impervious = five_class(src.read(1)) == 1
                shapes = [
                    (g.buffer(w / 2), 1)
                    for g, w in zip(roads.translate(dx, dy).geometry, widths, strict=True)
                ]
                mask = rasterize(shapes, out_shape=src.shape, transform=src.transform) == 1
            hit += int(impervious[mask].sum())
            count += int(mask.sum())
        return hit / count, float(impervious.mean())

    observed, chance = precision(0.0, 0.0)
    corrected, _ = precision(-shift[0], -shift[1])
    assert observed > 2 * chance
    assert observed < 0.95
    assert corrected > observed  # undoing the known shift helps: the shift is real


def test_imagery_learnable_but_not_trivial(city: SampleCity) -> None:
    image = np.concatenate([read(p).reshape(4, -1) for p in city.naip], axis=1).T.astype(float)
    index = np.concatenate([five_class(read(p).ravel()) for p in city.labels])
    keep = index != 255
    x, y = image[keep], index[keep]
    centroids = np.stack([x[y == k].mean(axis=0) for k in range(5)])
    predicted = ((x[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    accuracy = (predicted == y).mean()
    assert 0.6 < accuracy < 0.98, accuracy
    # The spectra make physical sense: water darkest in NIR, vegetation brightest.
    nir = centroids[:, 3]
    assert nir.argmin() == 0
    assert nir[3] > nir[1]
    assert nir[4] > nir[1]
    # Neighbouring tiles differ in brightness (per-tile gain), like real NAIP.
    means = [read(p).mean() for p in city.naip]
    assert abs(means[0] - means[1]) > 0.1


# --- determinism and files -------------------------------------------------------------


def test_same_seed_same_bytes(city: SampleCity, tmp_path: Path) -> None:
    again = make_sample_city(tmp_path / "again", seed=0, tiles=TILES, size=SIZE, progress=False)
    ours, theirs = all_files(city.root), all_files(again.root)
    assert [p.relative_to(city.root) for p in ours] == [p.relative_to(again.root) for p in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_different_seed_differs(city: SampleCity, tmp_path: Path) -> None:
    other = make_sample_city(tmp_path / "other", seed=1, tiles=TILES, size=SIZE, progress=False)
    for a, b in zip(
        (*city.naip, *city.labels, city.nlcd), (*other.naip, *other.labels, other.nlcd), strict=True
    ):
        assert a.name == b.name
        assert not np.array_equal(read(a), read(b))
    assert city.osm.read_bytes() != other.osm.read_bytes()


def test_refuses_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "region"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        make_sample_city(out, tiles=1, size=64, progress=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["region"]  # nothing staged left
    city = make_sample_city(out, tiles=1, size=64, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists()
    assert city.naip[0].is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["region"]


def test_empty_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "region").mkdir()
    city = make_sample_city(tmp_path / "region", tiles=1, size=64, progress=False)
    assert city.nlcd.is_file()


@pytest.mark.parametrize(("tiles", "size"), [(0, 64), (1, 32)])
def test_bad_arguments(tmp_path: Path, tiles: int, size: int) -> None:
    with pytest.raises(ValueError, match=r"tiles|size"):
        make_sample_city(tmp_path / "region", tiles=tiles, size=size)
    assert not (tmp_path / "region").exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "region"
    argv = [str(out), "--seed", "3", "--tiles", "3", "--size", "64", "--no-progress"]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(list((out / "naip").glob("m_*.tif"))) == 3
    assert json.loads((out / "city.json").read_text())["seed"] == 3
    assert main(argv) == 1  # exists: refused with a message
    assert "overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert main([str(tmp_path / "other"), "--size", "8"]) == 2  # bad input: one line
    err = capsys.readouterr().err
    assert err == "torchgeo-lsr sample-city: size must be at least 64 px, got 8\n"
    assert not (tmp_path / "other").exists()
