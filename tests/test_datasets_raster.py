"""Tests for the NAIP, NLCD and EnviroAtlas raster sources.

References are independent of the code under test: files are read back with plain
:func:`rasterio.open` (windows by hand), NLCD is reprojected with
:func:`rasterio.warp.reproject` and mapped with a literal code table, EnviroAtlas codes
are mapped with literal tables from the release's documentation, and broken inputs are
written into ``tmp_path``.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import rasterio
import torch
from matplotlib.figure import Figure
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject
from torchgeo.datasets import DatasetNotFoundError

from torchgeo_lsr.datasets.enviroatlas import EnviroAtlas, EnviroAtlasRegion
from torchgeo_lsr.datasets.grid import Grid
from torchgeo_lsr.datasets.naip import NAIP
from torchgeo_lsr.datasets.nlcd import NLCD

DATA = Path(__file__).parent / "data"
NAIP_DIR = DATA / "naip"
NAIP_A = NAIP_DIR / "m_3508001_ne_17_060_20191109.tif"
NAIP_B = NAIP_DIR / "m_3508001_nw_17_060_20191109_20200207.tif"
NAIP_OLD = NAIP_DIR / "m_3508001_se_17_1_20130711.tif"
NLCD_DIR = DATA / "nlcd"
NLCD_2021 = NLCD_DIR / "Annual_NLCD_LndCov_2021_CU_C1V1.tif"
NLCD_2019 = NLCD_DIR / "nlcd_2019_land_cover_l48_20210604.tif"
EA_ROOT = DATA / "enviroatlas"
EA_SPLIT = "pittsburgh_pa-2010_1m-train"
EA_DIR = EA_ROOT / "enviroatlas_lotp" / f"{EA_SPLIT}_tiles-debuffered"
EA_TILES = ["4007925_se", "4007925_sw"]

#: NLCD raw code -> index in the paper's order, written out by hand (0 and 250: nodata).
NLCD_INDEX = {
    0: 0, 11: 1, 12: 2, 21: 3, 22: 4, 23: 5, 24: 6, 31: 7, 41: 8,
    42: 9, 43: 10, 52: 11, 71: 12, 81: 13, 82: 14, 90: 15, 95: 16, 250: 0,
}  # fmt: skip
#: EnviroAtlas raw code -> 11-index, and 11-index -> paper's 5 classes (255 = ignored).
EA_INDEX = {0: 0, 10: 1, 20: 2, 30: 3, 40: 4, 52: 5, 70: 6, 80: 7, 82: 8, 91: 9, 92: 10}
EA5 = {0: 255, 1: 0, 2: 1, 3: 2, 4: 3, 5: 3, 6: 4, 7: 255, 8: 255, 9: 255, 10: 255}


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def write(path: Path, array: np.ndarray, crs: CRS, transform: rasterio.Affine) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=array.shape[0],
        height=array.shape[1],
        width=array.shape[2],
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
    ) as dst:
        dst.write(array)
    return path


def lookup(table: dict[int, int], raw: np.ndarray) -> np.ndarray:
    return np.vectorize(table.__getitem__, otypes=[np.int64])(raw)


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------
# NAIP
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "zone", "resolution", "date", "processing"),
    [
        ("m_3807511_ne_18_060_20181104.tif", 18, 0.6, datetime.date(2018, 11, 4), None),
        (
            "m_3807511_ne_18_060_20181104_20190211.tif",
            18,
            0.6,
            datetime.date(2018, 11, 4),
            datetime.date(2019, 2, 11),
        ),
        ("m_3807511_sw_18_1_20130711.tif", 18, 1.0, datetime.date(2013, 7, 11), None),
        ("m_4207201_nw_19_030_20210801.tif", 19, 0.3, datetime.date(2021, 8, 1), None),
    ],
)
def test_naip_names_parse(
    name: str,
    zone: int,
    resolution: float,
    date: datetime.date,
    processing: datetime.date | None,
) -> None:
    tile = NAIP.parse_name(f"/some/dir/{name}")
    assert tile is not None
    assert tile["path"] == f"/some/dir/{name}"
    assert tile["quadrangle"] == name[2:9]
    assert tile["quadrant"] == name[10:12]
    assert tile["zone"] == zone
    assert tile["resolution"] == pytest.approx(resolution)
    assert tile["date"] == date
    assert tile["processing_date"] == processing


@pytest.mark.parametrize(
    "name",
    [
        "m_3807511_ne_18_060_2018110.tif",  # 7-digit date
        "m_380751_ne_18_060_20181104.tif",  # 6-digit quadrangle
        "m_3807511_nx_18_060_20181104.tif",  # not a quadrant
        "m_3807511_ne_18_06_20181104.tif",  # two-digit resolution
        "m_3807511_ne_18_060_20181104.tif.aux.xml",
        "m_3807511_ne_18_060_20181104_extra.tif",
        "n_3807511_ne_18_060_20181104.tif",
        "m_3807511_ne_18_060_20181104.jp2",
    ],
)
def test_naip_bad_names_do_not_match(name: str) -> None:
    assert NAIP.parse_name(name) is None


def test_naip_impossible_date_is_an_error(tmp_path: Path) -> None:
    shutil.copy(NAIP_OLD, tmp_path / "m_3508001_se_17_1_20131399.tif")
    with pytest.raises(ValueError, match=r"m_3508001_se_17_1_20131399\.tif.*20131399"):
        NAIP(tmp_path)


def test_naip_finds_tiles_and_metadata() -> None:
    ds = NAIP(NAIP_DIR)
    assert [Path(f).name for f in ds.files] == sorted([NAIP_A.name, NAIP_B.name, NAIP_OLD.name])
    meta = {Path(t["path"]).name: t for t in ds.tiles}
    assert meta[NAIP_OLD.name]["resolution"] == 1.0
    assert meta[NAIP_OLD.name]["date"] == datetime.date(2013, 7, 11)
    assert meta[NAIP_B.name]["processing_date"] == datetime.date(2020, 2, 7)
    assert {t["zone"] for t in ds.tiles} == {17}
    assert ds.crs == CRS.from_epsg(26917)


def test_naip_ignores_other_files(tmp_path: Path) -> None:
    shutil.copy(NAIP_A, tmp_path / NAIP_A.name)
    shutil.copy(NAIP_B, tmp_path / "m_3508001_nw_17_060_2019110.tif")  # bad date field
    (tmp_path / f"{NAIP_A.name}.aux.xml").write_text("<PAMDataset/>")
    ds = NAIP(tmp_path)
    assert [Path(f).name for f in ds.files] == [NAIP_A.name]


@pytest.mark.parametrize("path", [NAIP_A, NAIP_B, NAIP_OLD])
def test_naip_values_equal_the_file(path: Path) -> None:
    grid = Grid.of_raster(path)
    sample = NAIP(NAIP_DIR)[grid]
    assert set(sample) == {"image", "valid"}
    assert sample["image"].dtype == torch.float32
    assert tuple(sample["image"].shape) == (4, *grid.shape)
    # Zeros are data: a band at 0 (e.g. NIR in shadow) must not mask the pixel.
    assert (read(path) == 0).any()
    assert bool(sample["valid"].all())
    np.testing.assert_allclose(sample["image"].numpy(), read(path).astype(np.float32), atol=1e-3)


def test_naip_band_subset() -> None:
    grid = Grid.of_raster(NAIP_A)
    sample = NAIP(NAIP_DIR, bands=("NIR", "R"))[grid]
    expected = read(NAIP_A)[[3, 0]].astype(np.float32)
    np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-3)
    with pytest.raises(ValueError, match="unknown bands"):
        NAIP(NAIP_DIR, bands=("R", "SWIR"))


def test_naip_merges_two_tiles_at_native_resolution() -> None:
    # 0.6 m grid over the east half of tile A and the west half of tile B.
    grid = Grid("EPSG:26917", from_origin(500_012.0, 3_880_024.0, 0.6, 0.6), 40, 40)
    sample = NAIP(NAIP_DIR)[grid]
    assert bool(sample["valid"].all())
    image = sample["image"].numpy()
    np.testing.assert_allclose(image[:, :, :20], read(NAIP_A)[:, :, 20:], atol=1e-3)
    np.testing.assert_allclose(image[:, :, 20:], read(NAIP_B)[:, :, :20], atol=1e-3)


def test_naip_coverage_and_grid_resolution() -> None:
    # A 1 m grid reaching 8 m east of tile B: covered, then not.
    grid = Grid("EPSG:26917", from_origin(500_040.0, 3_880_020.0, 1.0, 1.0), 4, 16)
    sample = NAIP(NAIP_DIR)[grid]
    valid = sample["valid"].numpy()
    assert tuple(sample["image"].shape) == (4, 4, 16)
    assert valid[:, :8].all()
    assert not valid[:, 8:].any()
    assert (sample["image"].numpy()[:, :, 8:] == 0).all()
    # 1 m pixel (row 0, col 0) covers B's 0.6 m pixels around (16..17, 6..8): a
    # bilinear value within the range of the B pixels it sees.
    b = read(NAIP_B).astype(np.float32)[:, 6:9, 26:29]
    value = sample["image"].numpy()[:, 0, 0]
    assert ((value >= b.min(axis=(1, 2)) - 1e-3) & (value <= b.max(axis=(1, 2)) + 1e-3)).all()


def test_naip_query_outside_raises() -> None:
    grid = Grid("EPSG:26917", from_origin(600_000.0, 3_880_000.0, 1.0, 1.0), 4, 4)
    with pytest.raises(IndexError, match="no file covers"):
        NAIP(NAIP_DIR)[grid]


def test_naip_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        NAIP(tmp_path)


def test_naip_plot() -> None:
    ds = NAIP(NAIP_DIR)
    fig = ds.plot(ds[Grid.of_raster(NAIP_A)], suptitle="NAIP")
    assert isinstance(fig, Figure)


# --------------------------------------------------------------------------------------
# NLCD
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "year"),
    [
        ("Annual_NLCD_LndCov_2021_CU_C1V1.tif", 2021),
        ("Annual_NLCD_LndCov_1985_CU_C1V0.tif", 1985),
        ("Annual_NLCD_H05V02_LndCov_2001_CU_C1V0.tif", 2001),
        ("nlcd_2019_land_cover_l48_20210604.tif", 2019),
        ("nlcd_2016_land_cover_l48_20190424.img", 2016),
        ("NLCD_2019_Land_Cover_L48_20210604_8jmNAWd0wT5DcgO7MxKi.tif", 2019),
        ("NLCD_2021_Land_Cover_L48_20230630.img", 2021),
    ],
)
def test_nlcd_names_parse(name: str, year: int) -> None:
    assert NLCD.parse_year(name) == year


@pytest.mark.parametrize(
    "name",
    [
        "Annual_NLCD_LndCov_21_CU_C1V1.tif",  # two-digit year
        "Annual_NLCD_LndCov_20211_CU_C1V1.tif",  # five-digit year
        "Annual_NLCD_FctImp_2021_CU_C1V1.tif",  # impervious, not land cover
        "Annual_NLCD_LndCov_2021_AK_C1V1.tif",  # Alaska: other classes
        "Annual_NLCD_LndCov_2021_CU_C1V1.tif.aux.xml",
        "Annual_NLCD_LndCov_2021_CU_C1V1.zip",
        "nlcd_2019_land_cover_ak_20210604.img",
        "nlcd_2019_land_cover_l48_2021060.img",  # 7-digit release date
        "nlcd_2019_impervious_l48_20210604.img",
        "nlcd_2019_land_cover_l48_20210604.ige",
    ],
)
def test_nlcd_bad_names_do_not_match(name: str) -> None:
    assert NLCD.parse_year(name) is None


def test_nlcd_values_on_native_grid() -> None:
    ds = NLCD(NLCD_DIR, years=[2021])
    assert [Path(f).name for f in ds.files] == [NLCD_2021.name]
    assert ds.crs == CRS.from_epsg(5070)
    assert ds.res == (30.0, 30.0)  # TorchGeo: (x, y)
    sample = ds[Grid.of_raster(NLCD_2021)]
    assert set(sample) == {"mask", "valid"}
    mask, valid = sample["mask"].numpy(), sample["valid"].numpy()
    assert mask.dtype == np.int64
    assert mask.shape == (16, 16)
    assert mask[5, 7] == 8  # code 41, deciduous forest
    assert (mask[:, -1] == 0).all()  # fill value 250
    assert not valid[:, -1].any()
    raw = read(NLCD_2021)[0]
    np.testing.assert_array_equal(mask, lookup(NLCD_INDEX, raw))
    np.testing.assert_array_equal(valid, (raw != 0) & (raw != 250))


def test_nlcd_fill_and_zero_without_declared_nodata() -> None:
    # The legacy fixture declares no nodata: 0 and 250 must still read as nodata
    # (TorchGeo 0.8.1's NLCD raises IndexError on 250).
    with rasterio.open(NLCD_2019) as src:
        assert src.nodata is None
    sample = NLCD(NLCD_DIR, years=[2019])[Grid.of_raster(NLCD_2019)]
    mask, valid = sample["mask"].numpy(), sample["valid"].numpy()
    raw = read(NLCD_2019)[0]
    assert raw[0, 0] == 0
    assert (raw[:, -1] == 250).all()
    assert mask[0, 0] == 0
    assert not valid[0, 0]
    assert (mask[:, -1] == 0).all()
    assert not valid[:, -1].any()
    assert mask[5, 7] == 14  # code 82, cultivated crops
    np.testing.assert_array_equal(mask, lookup(NLCD_INDEX, raw))
    assert valid.sum() == ((raw != 0) & (raw != 250)).sum()


def test_nlcd_years_selection_and_newest_wins() -> None:
    both = NLCD(NLCD_DIR)
    assert both.available_years == [2019, 2021]
    assert Path(both.files[0]).name == NLCD_2021.name  # newest first
    grid = Grid.of_raster(NLCD_2021)
    sample = both[grid]
    # Where 2021 is valid it wins; its fill column is taken from 2019, also fill.
    assert sample["mask"][5, 7] == 8
    assert NLCD(NLCD_DIR, years=[2019])[grid]["mask"][5, 7] == 14
    assert NLCD(NLCD_DIR, years=(2019, 2021)).available_years == [2019, 2021]
    with pytest.raises(ValueError, match=r"no file of years \[2005\].*found years \[2019, 2021\]"):
        NLCD(NLCD_DIR, years=[2005])


def test_nlcd_reprojected_onto_utm_matches_rasterio() -> None:
    # 1 m UTM 17N grid (the NAIP fixture's CRS family) inside the NLCD file.
    grid = Grid("EPSG:32617", from_origin(499_950.0, 3_880_080.0, 1.0, 1.0), 100, 120)
    sample = NLCD(NLCD_DIR, years=[2021])[grid]
    raw = np.full(grid.shape, 255, dtype=np.uint8)
    with rasterio.open(NLCD_2021) as src:
        reproject(
            src.read(1),
            raw,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            resampling=Resampling.nearest,
            src_nodata=None,
            dst_nodata=255,
        )
    assert (raw != 255).all()  # fully inside the file
    covered = raw != 250
    np.testing.assert_array_equal(sample["mask"].numpy(), lookup(NLCD_INDEX, raw))
    np.testing.assert_array_equal(sample["valid"].numpy(), covered & (raw != 0))
    assert len(np.unique(raw)) > 3  # the grid crosses several 30 m blocks


def test_nlcd_bad_code_names_the_file(tmp_path: Path) -> None:
    with rasterio.open(NLCD_2019) as src:
        data, crs, transform = src.read(), src.crs, src.transform
    data[0, 3, 3] = 13
    bad = write(tmp_path / "nlcd_2019_land_cover_l48_20210604.tif", data, crs, transform)
    ds = NLCD(tmp_path)
    with pytest.raises(ValueError, match=r"nlcd_2019_land_cover_l48_20210604\.tif.*\[13\]") as err:
        ds[Grid.of_raster(bad)]
    assert str(bad) in str(err.value)
    # A window without the bad pixel reads fine.
    assert ds[Grid.of_raster(bad).window(8, 8, 4, 4)]["mask"].shape == (4, 4)


def test_nlcd_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no rasters here")
    with pytest.raises(DatasetNotFoundError):
        NLCD(tmp_path)


def test_nlcd_plot() -> None:
    ds = NLCD(NLCD_DIR)
    assert ds.cmap is not None
    assert len(ds.cmap.colors) == 17
    np.testing.assert_allclose(ds.cmap.colors[8], np.array([104, 171, 95]) / 255)
    fig = ds.plot(ds[Grid.of_raster(NLCD_2021)])
    assert isinstance(fig, Figure)


# --------------------------------------------------------------------------------------
# EnviroAtlas
# --------------------------------------------------------------------------------------


def ea_path(tile: str, layer: str) -> Path:
    return EA_DIR / f"{tile}_{layer}.tif"


def test_enviroatlas_names() -> None:
    assert EnviroAtlas.parse_name("3009726_sw_d1_waterways.tif") == ("3009726_sw", "d1_waterways")
    assert EnviroAtlas.parse_name("3009726_sw_a_naip.tif.aux.xml") is None
    assert EnviroAtlas.parse_name("spatial_index.geojson") is None
    assert EnviroAtlas.layer_name("prior_no_osm_no_buildings") == (
        "prior_from_cooccurrences_101_31_no_osm_no_buildings"
    )
    with pytest.raises(ValueError, match="unknown EnviroAtlas layer 'd3_waterbodies'"):
        EnviroAtlas(EA_ROOT, layer="d3_waterbodies")


@pytest.mark.parametrize("tile", EA_TILES)
def test_enviroatlas_labels_11_classes(tile: str) -> None:
    ds = EnviroAtlas(EA_ROOT, layer="h_highres_labels")
    path = ea_path(tile, "h_highres_labels")
    sample = ds[Grid.of_raster(path)]
    raw = read(path)[0]
    assert set(np.unique(raw).tolist()) == set(EA_INDEX)  # every code occurs
    expected = lookup(EA_INDEX, raw)
    np.testing.assert_array_equal(sample["mask"].numpy(), expected)
    np.testing.assert_array_equal(sample["valid"].numpy(), raw != 0)


@pytest.mark.parametrize("tile", EA_TILES)
def test_enviroatlas_labels_5_classes(tile: str) -> None:
    ds = EnviroAtlas(EA_ROOT, layer="lc", classes="enviroatlas5")
    path = ea_path(tile, "h_highres_labels")
    sample = ds[Grid.of_raster(path)]
    raw = read(path)[0]
    expected = lookup(EA5, lookup(EA_INDEX, raw))
    np.testing.assert_array_equal(sample["mask"].numpy(), expected)
    np.testing.assert_array_equal(sample["valid"].numpy(), expected != 255)
    # Shrub (52) is a tree; agriculture (80) is ignored.
    assert (sample["mask"].numpy()[raw == 52] == 3).all()
    assert (sample["mask"].numpy()[raw == 80] == 255).all()


def test_enviroatlas_labels_across_both_tiles_and_outside() -> None:
    ds = EnviroAtlas(EA_DIR, layer="h_highres_labels", classes="enviroatlas5")
    assert sorted(ds.tiles) == EA_TILES
    # 1 m grid: 8 px of tile _sw, 16 px of tile _se, 4 px beyond.
    grid = Grid("EPSG:26917", from_origin(585_008.0, 4_477_016.0, 1.0, 1.0), 16, 28)
    sample = ds[grid]
    sw = lookup(EA5, lookup(EA_INDEX, read(ea_path("4007925_sw", "h_highres_labels"))[0]))
    se = lookup(EA5, lookup(EA_INDEX, read(ea_path("4007925_se", "h_highres_labels"))[0]))
    mask = sample["mask"].numpy()
    np.testing.assert_array_equal(mask[:, :8], sw[:, 8:])
    np.testing.assert_array_equal(mask[:, 8:24], se)
    assert (mask[:, 24:] == 255).all()
    assert not sample["valid"].numpy()[:, 24:].any()


def test_enviroatlas_prior_is_scaled_probability() -> None:
    ds = EnviroAtlas(EA_ROOT, layer="prior")
    assert len(ds.files) == 2  # the *_no_osm_no_buildings files are another layer
    path = ea_path("4007925_se", "prior_from_cooccurrences_101_31")
    sample = ds[Grid.of_raster(path)]
    image = sample["image"].numpy()
    assert image.dtype == np.float32
    assert image.shape == (5, 16, 16)
    np.testing.assert_allclose(image, read(path) / 255.0, atol=1e-5)
    sums = image.sum(axis=0)
    assert (sums <= 1 + 1e-5).all()
    assert (sums >= 1 - 5 / 255 - 1e-5).all()
    assert ds.bands == ("water", "impervious", "barren", "trees", "grass")


@pytest.mark.parametrize(
    "layer", ["prior_from_cooccurrences_101_31_no_osm_no_buildings", "prior_learned_101_31"]
)
def test_enviroatlas_other_priors(layer: str) -> None:
    path = ea_path("4007925_sw", layer)
    sample = EnviroAtlas(EA_ROOT, layer=layer, bands=["trees"])[Grid.of_raster(path)]
    np.testing.assert_allclose(sample["image"].numpy(), read(path)[3:4] / 255.0, atol=1e-5)


def test_enviroatlas_naip_nlcd_and_masks() -> None:
    grid = Grid.of_raster(ea_path("4007925_sw", "a_naip"))
    naip = EnviroAtlas(EA_ROOT, layer="naip")[grid]
    np.testing.assert_allclose(
        naip["image"].numpy(), read(ea_path("4007925_sw", "a_naip")), atol=1e-3
    )
    nlcd = EnviroAtlas(EA_ROOT, layer="b_nlcd")[grid]
    raw = read(ea_path("4007925_sw", "b_nlcd"))[0]
    np.testing.assert_array_equal(nlcd["mask"].numpy(), raw)  # stored as indices already
    np.testing.assert_array_equal(nlcd["valid"].numpy(), raw != 0)
    for layer in ("c_roads", "d_water", "d1_waterways", "d2_waterbodies", "e_buildings"):
        mask = EnviroAtlas(EA_ROOT, layer=layer)[grid]
        np.testing.assert_array_equal(mask["mask"].numpy(), read(ea_path("4007925_sw", layer))[0])
        assert bool(mask["valid"].all())


def test_enviroatlas_exact_layer_and_bad_values(tmp_path: Path) -> None:
    split = tmp_path / f"{EA_SPLIT}_tiles-debuffered"
    split.mkdir()
    src = ea_path("4007925_se", "h_highres_labels")
    shutil.copy(src, split / src.name)
    # Files of the authors' pipeline that must not be taken for the layer.
    shutil.copy(src, split / "4007925_se_h_highres_labels_argmaxed.tif")
    shutil.copy(ea_path("4007925_se", "b_nlcd"), split / "4007925_se_b_nlcd_onehot.tif")
    assert [Path(f).name for f in EnviroAtlas(tmp_path).files] == [src.name]
    with pytest.raises(DatasetNotFoundError):
        EnviroAtlas(tmp_path, layer="b_nlcd")

    with rasterio.open(src) as f:
        data, crs, transform = f.read(), f.crs, f.transform
    data[0, 2, 2] = 15
    bad = write(split / src.name, data, crs, transform)
    with pytest.raises(ValueError, match=r"h_highres_labels\.tif.*\[15\]") as err:
        EnviroAtlas(tmp_path)[Grid.of_raster(bad)]
    assert str(bad) in str(err.value)

    data = np.full((1, 16, 16), 2, dtype=np.uint8)
    roads = write(split / "4007925_se_c_roads.tif", data, crs, transform)
    with pytest.raises(ValueError, match=r"c_roads\.tif: values \[2\] found; expected 0/1"):
        EnviroAtlas(tmp_path, layer="roads")[Grid.of_raster(roads)]


def test_enviroatlas_bad_arguments() -> None:
    with pytest.raises(ValueError, match="classes must be"):
        EnviroAtlas(EA_ROOT, classes="nlcd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown bands"):
        EnviroAtlas(EA_ROOT, layer="a_naip", bands=["SWIR"])


def test_enviroatlas_region() -> None:
    region = EnviroAtlasRegion(EA_ROOT, EA_SPLIT)
    assert EnviroAtlasRegion.splits(EA_ROOT) == {EA_SPLIT: str(EA_DIR)}
    assert region.tiles == EA_TILES
    assert region["lc"] is region["h_highres_labels"]
    grid = region.tile_grid("4007925_se")
    assert grid == Grid.of_raster(ea_path("4007925_se", "a_naip"))
    assert grid.crs == CRS.from_epsg(26917)
    assert grid.res == 1.0
    samples = region.read(grid)
    assert set(samples) == {"a_naip", "prior_from_cooccurrences_101_31", "h_highres_labels"}
    raw = read(ea_path("4007925_se", "h_highres_labels"))[0]
    np.testing.assert_array_equal(
        samples["h_highres_labels"]["mask"].numpy(), lookup(EA5, lookup(EA_INDEX, raw))
    )
    # The parent of enviroatlas_lotp and the directory itself both work.
    assert EnviroAtlasRegion(EA_ROOT / "enviroatlas_lotp", EA_SPLIT, ["roads"]).tiles == EA_TILES
    with pytest.raises(KeyError, match="not opened"):
        region["roads"]
    with pytest.raises(KeyError, match="no tile"):
        region.tile_grid("4007925_ne")


def test_enviroatlas_region_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        EnviroAtlasRegion(tmp_path, EA_SPLIT)
    with pytest.raises(ValueError, match=r"no split 'austin_tx-2012_1m-test'.*pittsburgh"):
        EnviroAtlasRegion(EA_ROOT, "austin_tx-2012_1m-test")


@pytest.mark.parametrize(
    ("layer", "classes"),
    [
        ("a_naip", "enviroatlas"),
        ("prior", "enviroatlas"),
        ("h_highres_labels", "enviroatlas"),
        ("h_highres_labels", "enviroatlas5"),
        ("b_nlcd", "enviroatlas"),
        ("e_buildings", "enviroatlas"),
    ],
)
def test_enviroatlas_plot(layer: str, classes: str) -> None:
    ds = EnviroAtlas(EA_ROOT, layer=layer, classes=classes)  # type: ignore[arg-type]
    sample = ds[Grid.of_raster(ds.files[0])]
    if "mask" in sample:
        sample["prediction"] = sample["mask"].clone()
    fig = ds.plot(sample, suptitle=layer)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == (2 if "mask" in sample else 1)


@pytest.mark.parametrize("origin", [(499_950.0, 3_880_080.0), (499_937.3, 3_880_071.9)])
def test_lattice_lookup_equals_an_exact_transform_of_every_centre(
    origin: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lattice-interpolated centres pick the same NLCD cells as transforming each centre."""
    from torchgeo_lsr.datasets import warping

    grid = Grid("EPSG:32617", from_origin(*origin, 1.0, 1.0), 101, 123)
    lattice = NLCD(NLCD_DIR, years=[2021])[grid]["mask"].numpy()
    xs, ys = warping._centres_in(grid, CRS.from_epsg(5070))
    monkeypatch.setattr(warping, "NEAREST_LATTICE", 1)
    exact = NLCD(NLCD_DIR, years=[2021])[grid]["mask"].numpy()
    np.testing.assert_array_equal(lattice, exact)
    assert len(np.unique(exact)) > 3
    # the interpolated centres themselves are within a micrometre of PROJ's
    ex, ey = warping._centres_in(grid, CRS.from_epsg(5070), step=1)
    assert float((xs - ex).abs().max()) < 1e-6
    assert float((ys - ey).abs().max()) < 1e-6
    # and a window's lookup equals the same pixels of a larger read (lattice anchored)
    window = NLCD(NLCD_DIR, years=[2021])[grid.window(37, 41, 29, 31)]["mask"].numpy()
    monkeypatch.setattr(warping, "NEAREST_LATTICE", 16)
    whole = NLCD(NLCD_DIR, years=[2021])[grid]["mask"].numpy()
    np.testing.assert_array_equal(window, whole[37:66, 41:72])


def test_categorical_source_is_zero_where_invalid(tmp_path: Path) -> None:
    """A single-file categorical read gives mask 0 (not the fill -1) outside and at nodata."""
    from torchgeo_lsr.datasets.base import RasterSource

    class Codes(RasterSource):
        filename_glob = "*.tif"
        is_image = False

    codes = np.arange(1, 1 + 8 * 8, dtype=np.uint8).reshape(1, 8, 8)
    codes[0, 2, 3] = 255
    with rasterio.open(
        tmp_path / "codes.tif", "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8",
        crs="EPSG:32617", transform=from_origin(500_000, 3_880_000, 1, 1), nodata=255,
    ) as dst:  # fmt: skip
        dst.write(codes)
    grid = Grid("EPSG:32617", from_origin(499_998, 3_880_000, 1, 1), 8, 8)  # 2 px west of it
    sample = Codes(tmp_path)[grid]
    valid = sample["valid"].numpy()
    assert not valid[:, :2].any()
    assert not valid[2, 5]
    assert valid.sum() == 8 * 6 - 1
    mask = sample["mask"].numpy()
    assert (mask[~valid] == 0).all()
    np.testing.assert_array_equal(mask[valid], codes[0, :, :6][valid[:, 2:]])
