"""Tests for :mod:`torchgeo_lsr.datasets` (aligned reading, file matching, patches).

References are built independently of the code under test: rasters are read back with
plain :func:`rasterio.open`, the Albers prior is reprojected onto each tile both with
:func:`rasterio.warp.reproject` and with a numpy bilinear interpolation at pyproj-mapped
pixel centres, and broken inputs are written into ``tmp_path``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from torchgeo_lsr.datasets import (
    AlignedTile,
    PatchDataset,
    list_rasters,
    match_by_stem,
    read_aligned_tile,
)
from torchgeo_lsr.samplers import PatchIndex

TINY = Path(__file__).parent / "data" / "tiny"
STEMS = ["m_3507801_ne_17_060_20200101", "m_3507801_nw_17_060_20200101"]
PRIOR = TINY / "prior" / "prior.tif"
LABEL_MAP = {1: 0, 2: 1, 3: 2, 4: 3}
UTM = CRS.from_epsg(32617)
#: Top-left corner of the first tile (EPSG:32617, 1 m pixels, 64 x 64).
WEST, NORTH = 700_000.0, 3_900_064.0


def image_path(stem: str) -> Path:
    return TINY / "naip" / f"{stem}.tif"


def label_path(stem: str) -> Path:
    return TINY / "labels" / f"{stem}.tif"


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def write(
    path: Path,
    array: np.ndarray,
    *,
    crs: CRS | None = UTM,
    transform: rasterio.Affine | None = None,
    nodata: float | None = None,
) -> Path:
    """Write a ``(C, H, W)`` GeoTIFF (1 m UTM grid at the first tile's corner by default)."""
    transform = from_origin(WEST, NORTH, 1.0, 1.0) if transform is None else transform
    profile = {
        "driver": "GTiff",
        "count": array.shape[0],
        "height": array.shape[1],
        "width": array.shape[2],
        "dtype": array.dtype.name,
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def simplex_u8(rng: np.random.Generator, k: int, h: int, w: int) -> np.ndarray:
    """Random uint8 class fractions of ``k`` classes summing to exactly 255 per pixel."""
    cuts = np.sort(rng.integers(0, 256, size=(k - 1, h, w)), axis=0)
    parts = np.concatenate([cuts[:1], np.diff(cuts, axis=0), 255 - cuts[-1:]], axis=0)
    assert (parts.sum(axis=0) == 255).all()
    return parts.astype(np.uint8)


@pytest.fixture(scope="module")
def tiles() -> dict[str, AlignedTile]:
    """The fixture tiles read once, with the region-wide prior and mapped labels."""
    return {
        stem: read_aligned_tile(
            image_path(stem), PRIOR, label_path(stem), label_map=LABEL_MAP, ignore_index=255
        )
        for stem in STEMS
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------------------
# read_aligned_tile on the fixture region
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", STEMS)
def test_tile_is_on_the_imagery_grid(tiles: dict[str, AlignedTile], stem: str) -> None:
    tile = tiles[stem]
    with rasterio.open(image_path(stem)) as src:
        assert tile.crs == src.crs
        assert tile.transform == src.transform
        assert tile.shape == (src.height, src.width) == (64, 64)
        expected = src.read()
    assert tile.name == stem
    assert tile.image.dtype == np.uint8
    np.testing.assert_array_equal(tile.image, expected)
    assert tile.prior is not None
    assert tile.prior.shape == (4, 64, 64)
    assert tile.prior.dtype == np.float32
    assert tile.mask is not None
    assert tile.mask.shape == (64, 64)
    assert tile.mask.dtype == np.int64


@pytest.mark.parametrize("stem", STEMS)
def test_prior_is_a_distribution_per_pixel(tiles: dict[str, AlignedTile], stem: str) -> None:
    prior = tiles[stem].prior
    assert prior is not None
    assert np.isfinite(prior).all()
    assert (prior >= 0).all()
    np.testing.assert_allclose(prior.sum(axis=0), 1.0, atol=1e-5)


@pytest.mark.parametrize("stem", STEMS)
def test_labels_through_label_map(tiles: dict[str, AlignedTile], stem: str) -> None:
    raw = read(label_path(stem))[0].astype(np.int64)
    expected = np.where(raw == 255, 255, raw - 1)
    mask = tiles[stem].mask
    assert mask is not None
    np.testing.assert_array_equal(mask, expected)
    # The fixture's nodata is exactly the 2 x 2 top-left corner.
    nodata = np.zeros((64, 64), dtype=bool)
    nodata[:2, :2] = True
    np.testing.assert_array_equal(mask == 255, nodata)
    assert set(np.unique(mask[~nodata]).tolist()) <= {0, 1, 2, 3}


def test_labels_without_label_map_keep_codes_and_ignore_nodata() -> None:
    stem = STEMS[0]
    tile = read_aligned_tile(image_path(stem), None, label_path(stem), ignore_index=-100)
    raw = read(label_path(stem))[0].astype(np.int64)
    assert tile.prior is None
    assert tile.mask is not None
    np.testing.assert_array_equal(tile.mask, np.where(raw == 255, -100, raw))


def test_label_codes_missing_from_label_map_are_ignored() -> None:
    stem = STEMS[1]
    tile = read_aligned_tile(image_path(stem), None, label_path(stem), label_map={2: 0, 4: 1})
    raw = read(label_path(stem))[0].astype(np.int64)
    expected = np.select([raw == 2, raw == 4], [0, 1], default=255)
    assert tile.mask is not None
    np.testing.assert_array_equal(tile.mask, expected)


@pytest.mark.parametrize("stem", STEMS)
def test_prior_matches_rasterio_reproject(tiles: dict[str, AlignedTile], stem: str) -> None:
    tile = tiles[stem]
    with rasterio.open(PRIOR) as src:
        source, src_crs, src_transform = src.read(), src.crs, src.transform
    expected = np.full((4, 64, 64), np.nan, dtype=np.float32)
    reproject(
        source,
        expected,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=tile.transform,
        dst_crs=tile.crs,
        resampling=Resampling.bilinear,
        dst_nodata=np.nan,
    )
    assert not np.isnan(expected).any()
    expected /= expected.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(tile.prior, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("stem", STEMS)
def test_prior_matches_numpy_bilinear(tiles: dict[str, AlignedTile], stem: str) -> None:
    """Independent of GDAL: pyproj maps pixel centres, numpy interpolates bilinearly."""
    tile = tiles[stem]
    with rasterio.open(PRIOR) as src:
        source = src.read().astype(np.float64)
        src_crs, src_transform = src.crs, src.transform
    rows, cols = np.mgrid[0:64, 0:64] + 0.5
    xs, ys = tile.transform @ (cols, rows)
    ax, ay = Transformer.from_crs(tile.crs, src_crs, always_xy=True).transform(xs, ys)
    c, r = ~src_transform @ (ax, ay)
    c, r = c - 0.5, r - 0.5  # pixel-centre convention
    c0, r0 = np.floor(c).astype(int), np.floor(r).astype(int)
    fc, fr = c - c0, r - r0
    expected = (
        source[:, r0, c0] * (1 - fr) * (1 - fc)
        + source[:, r0, c0 + 1] * (1 - fr) * fc
        + source[:, r0 + 1, c0] * fr * (1 - fc)
        + source[:, r0 + 1, c0 + 1] * fr * fc
    )
    expected /= expected.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(tile.prior, expected, atol=1e-4, rtol=0)


def test_prior_agrees_with_the_labels_it_was_made_from(tiles: dict[str, AlignedTile]) -> None:
    # The fixture prior is the 8 m block average of the labels: its argmax is right well
    # above chance (0.25); a misregistered prior (e.g. shifted by one 8 m cell) is not.
    for tile in tiles.values():
        assert tile.prior is not None
        assert tile.mask is not None
        valid = tile.mask != 255
        assert (tile.prior.argmax(axis=0) == tile.mask)[valid].mean() > 0.5
        shifted = np.roll(tile.prior, 8, axis=2)
        assert (shifted.argmax(axis=0) == tile.mask)[valid].mean() < 0.4


# --------------------------------------------------------------------------------------
# read_aligned_tile on synthetic rasters
# --------------------------------------------------------------------------------------


def test_float_prior_on_imagery_grid_is_read_unchanged(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    expected = (simplex_u8(rng, 4, 64, 64) / 255).astype(np.float32)
    path = write(tmp_path / "prior.tif", expected)
    tile = read_aligned_tile(image_path(STEMS[0]), path)
    np.testing.assert_allclose(tile.prior, expected, atol=1e-6)


def test_uint8_prior_is_read_as_probabilities(tmp_path: Path, rng: np.random.Generator) -> None:
    stored = simplex_u8(rng, 4, 64, 64)
    path = write(tmp_path / "prior_u8.tif", stored)
    tile = read_aligned_tile(image_path(STEMS[0]), path)
    assert tile.prior is not None
    assert tile.prior.dtype == np.float32
    np.testing.assert_allclose(tile.prior, stored / 255.0, atol=1e-6)


def _albers_uint8_prior(path: Path, **layout: str) -> tuple[Path, np.ndarray]:
    """The fixture prior scaled by 255 as uint8, on its own 8 m Albers grid."""
    with rasterio.open(PRIOR) as src:
        profile, data = src.profile, src.read()
    stored = np.round(data * 255).astype(np.uint8)
    with rasterio.open(path, "w", **{**profile, "dtype": "uint8", **layout}) as dst:
        dst.write(stored)
    return path, stored


def _check_uint8_prior(path: Path, stored: np.ndarray, float_tile: AlignedTile) -> None:
    stem = float_tile.name
    tile = read_aligned_tile(image_path(stem), path)
    with rasterio.open(PRIOR) as src:
        src_crs, src_transform = src.crs, src.transform
    expected = np.zeros((4, 64, 64), dtype=np.float32)
    reproject(
        stored.astype(np.float32) / 255,
        expected,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=float_tile.transform,
        dst_crs=float_tile.crs,
        resampling=Resampling.bilinear,
    )
    expected /= expected.sum(axis=0, keepdims=True)
    np.testing.assert_allclose(tile.prior, expected, atol=1e-4, rtol=0)
    # Rounding to 1/255 moves renormalised probabilities by well under 0.01.
    np.testing.assert_allclose(tile.prior, float_tile.prior, atol=0.01, rtol=0)


def test_uint8_prior_off_the_imagery_grid(tmp_path: Path, tiles: dict[str, AlignedTile]) -> None:
    path, stored = _albers_uint8_prior(tmp_path / "prior_u8.tif", photometric="MINISBLACK")
    _check_uint8_prior(path, stored, tiles[STEMS[0]])


def test_uint8_prior_default_rgba_layout(tmp_path: Path, tiles: dict[str, AlignedTile]) -> None:
    path, stored = _albers_uint8_prior(tmp_path / "prior_u8.tif")
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == ColorInterp.alpha  # the trigger
    _check_uint8_prior(path, stored, tiles[STEMS[0]])


def test_prior_partly_outside_its_coverage_is_zero(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    top = (simplex_u8(rng, 3, 32, 64) / 255).astype(np.float32)
    path = write(tmp_path / "top_half.tif", top)
    tile = read_aligned_tile(image_path(STEMS[0]), path)
    assert tile.prior is not None
    np.testing.assert_allclose(tile.prior[:, :32], top, atol=1e-6)
    np.testing.assert_array_equal(tile.prior[:, 32:], 0.0)


def test_coarser_labels_are_upsampled_by_nearest(tmp_path: Path, rng: np.random.Generator) -> None:
    coarse = rng.integers(1, 5, size=(1, 32, 32)).astype(np.uint8)
    path = write(tmp_path / "labels_2m.tif", coarse, transform=from_origin(WEST, NORTH, 2.0, 2.0))
    tile = read_aligned_tile(image_path(STEMS[0]), None, path, label_map=LABEL_MAP)
    expected = coarse[0].repeat(2, axis=0).repeat(2, axis=1).astype(np.int64) - 1
    np.testing.assert_array_equal(tile.mask, expected)


def test_labels_outside_their_coverage_are_ignored(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    left = rng.integers(1, 5, size=(1, 64, 32)).astype(np.uint8)
    path = write(tmp_path / "left_half.tif", left, nodata=255)
    for label_map in (LABEL_MAP, None):
        tile = read_aligned_tile(
            image_path(STEMS[0]), None, path, label_map=label_map, ignore_index=-100
        )
        assert tile.mask is not None
        offset = 1 if label_map else 0
        np.testing.assert_array_equal(tile.mask[:, :32], left[0].astype(np.int64) - offset)
        np.testing.assert_array_equal(tile.mask[:, 32:], -100)


def test_labels_in_another_crs_match_rasterio_nearest(
    tmp_path: Path, tiles: dict[str, AlignedTile]
) -> None:
    stem = STEMS[0]
    raw = read(label_path(stem))
    albers = CRS.from_epsg(5070)
    # The fixture labels reprojected to Albers at 1.5 m, then read back onto the tile.
    moved = np.full((1, 60, 60), 255, dtype=np.uint8)
    with rasterio.open(label_path(stem)) as src:
        left, _, _, top = transform_bounds(src.crs, albers, *src.bounds)
        src_transform = src.transform
    dst_transform = from_origin(left - 3, top + 3, 1.5, 1.5)
    reproject(
        raw,
        moved,
        src_transform=src_transform,
        src_crs=UTM,
        src_nodata=255,
        dst_transform=dst_transform,
        dst_crs=albers,
        dst_nodata=255,
        resampling=Resampling.nearest,
    )
    path = write(
        tmp_path / "labels_albers.tif", moved, crs=albers, transform=dst_transform, nodata=255
    )
    expected = np.full((1, 64, 64), 255, dtype=np.uint8)
    reproject(
        moved,
        expected,
        src_transform=dst_transform,
        src_crs=albers,
        src_nodata=255,
        dst_transform=src_transform,
        dst_crs=UTM,
        dst_nodata=255,
        resampling=Resampling.nearest,
    )
    tile = read_aligned_tile(image_path(stem), None, path, label_map=LABEL_MAP)
    reference = np.where(expected[0] == 255, 255, expected[0].astype(np.int64) - 1)
    np.testing.assert_array_equal(tile.mask, reference)
    # And the round trip keeps most labels (nearest at 1.5 m, then back at 1 m).
    assert (tile.mask == tiles[stem].mask).mean() > 0.65


# --------------------------------------------------------------------------------------
# read_aligned_tile errors
# --------------------------------------------------------------------------------------


def _named(path: Path, what: str) -> str:
    """Regex: the message starts with the role and the file's full path."""
    return rf"^{what} {re.escape(str(path))}: "


def test_prior_without_crs_errors(tmp_path: Path) -> None:
    with rasterio.open(PRIOR) as src:
        data, transform = src.read(), src.transform
    path = write(tmp_path / "no_crs.tif", data, crs=None, transform=transform)
    with pytest.raises(ValueError, match=_named(path, "prior") + r"has no CRS; expected a geo"):
        read_aligned_tile(image_path(STEMS[0]), path)


def test_imagery_without_crs_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "image.tif", read(image_path(STEMS[0])), crs=None)
    with pytest.raises(ValueError, match=_named(path, "imagery") + r"has no CRS"):
        read_aligned_tile(path, PRIOR)


def test_prior_not_overlapping_errors(tmp_path: Path) -> None:
    with rasterio.open(PRIOR) as src:
        profile, data = src.profile, src.read()
    # Same raster, 100 km further east in Albers.
    profile["transform"] = profile["transform"] @ rasterio.Affine.translation(100_000 / 8, 0)
    path = tmp_path / "far.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(ValueError, match=_named(path, "prior") + r"does not overlap the imagery"):
        read_aligned_tile(image_path(STEMS[0]), path)


def test_labels_not_overlapping_errors(tmp_path: Path) -> None:
    labels = read(label_path(STEMS[0]))
    path = write(tmp_path / "labels.tif", labels, transform=from_origin(WEST + 64, NORTH, 1, 1))
    # Touching the tile's east edge is not overlapping it.
    with pytest.raises(ValueError, match=_named(path, "labels") + r"does not overlap"):
        read_aligned_tile(image_path(STEMS[0]), None, path)


@pytest.mark.parametrize("role", ["imagery", "prior", "labels"])
def test_missing_file_errors(tmp_path: Path, role: str) -> None:
    missing = tmp_path / "nowhere" / "missing.tif"
    args = {
        "imagery": (missing, PRIOR),
        "prior": (image_path(STEMS[0]), missing),
        "labels": (image_path(STEMS[0]), PRIOR, missing),
    }[role]
    with pytest.raises(ValueError, match=_named(missing, role) + r"not a readable GeoTIFF"):
        read_aligned_tile(*args)


@pytest.mark.parametrize("role", ["imagery", "prior", "labels"])
def test_garbage_file_errors(tmp_path: Path, rng: np.random.Generator, role: str) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(rng.integers(0, 256, size=2000, dtype=np.uint8).tobytes())
    args = {
        "imagery": (garbage,),
        "prior": (image_path(STEMS[0]), garbage),
        "labels": (image_path(STEMS[0]), None, garbage),
    }[role]
    with pytest.raises(ValueError, match=_named(garbage, role) + r"not a readable GeoTIFF"):
        read_aligned_tile(*args)


@pytest.mark.parametrize("role", ["imagery", "prior", "labels"])
@pytest.mark.parametrize("keep", [0.02, 0.5, 0.9])
def test_truncated_file_errors(tmp_path: Path, role: str, keep: float) -> None:
    source = {"imagery": image_path(STEMS[0]), "prior": PRIOR, "labels": label_path(STEMS[0])}
    data = source[role].read_bytes()
    cut = tmp_path / "truncated.tif"
    cut.write_bytes(data[: int(len(data) * keep)])
    args = {
        "imagery": (cut,),
        "prior": (image_path(STEMS[0]), cut),
        "labels": (image_path(STEMS[0]), None, cut),
    }[role]
    # A cut inside the header loses the GeoTIFF keys, so "has no CRS" is also a fair answer.
    expected = r"(not a readable GeoTIFF|could not be read, truncated or corrupt|has no CRS)"
    with pytest.raises(ValueError, match=_named(cut, role) + expected):
        read_aligned_tile(*args)


# --------------------------------------------------------------------------------------
# list_rasters and match_by_stem
# --------------------------------------------------------------------------------------


def test_list_rasters_finds_rasters_recursively_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ["b.tif", "a.TIF", "sub/c.tiff", "sub/deeper/d.vrt", "notes.txt", "x.tif.aux"]:
        (tmp_path / name).write_bytes(b"")
    found = list_rasters(tmp_path, "images")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.TIF",
        "b.tif",
        "sub/c.tiff",
        "sub/deeper/d.vrt",
    ]
    # str and a list of a directory and a file are accepted too.
    assert list_rasters(str(tmp_path), "images") == found
    assert list_rasters([tmp_path / "sub", PRIOR], "x") == [*found[2:], PRIOR]


def test_list_rasters_on_fixture() -> None:
    assert list_rasters(TINY / "naip", "images") == [image_path(s) for s in STEMS]
    assert list_rasters(TINY / "prior", "priors") == [PRIOR]


def test_list_rasters_empty_dir_errors(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no rasters here")
    with pytest.raises(
        FileNotFoundError, match=r"^priors: no GeoTIFF .*" + re.escape(tmp_path.name)
    ):
        list_rasters(tmp_path, "priors")


def test_list_rasters_missing_path_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(
        FileNotFoundError, match=rf"^labels: {re.escape(str(missing))} does not exist"
    ):
        list_rasters([TINY / "labels", missing], "labels")


def test_match_by_stem_pairs_by_stem() -> None:
    images = [Path("naip") / f"{s}.tif" for s in ["c", "a", "b"]]
    others = [Path("lab") / f"{s}.tif" for s in ["a", "b", "c", "extra"]]
    assert match_by_stem(images, others, "labels") == [
        Path("lab/c.tif"),
        Path("lab/a.tif"),
        Path("lab/b.tif"),
    ]


def test_match_by_stem_accepts_one_region_wide_file() -> None:
    images = [Path(f"{s}.tif") for s in STEMS]
    assert match_by_stem(images, [PRIOR], "priors") == [PRIOR, PRIOR]


def test_match_by_stem_names_the_unmatched_tile() -> None:
    images = [Path("naip/a.tif"), Path("naip/lonely.tif")]
    others = [Path("lab/a.tif"), Path("lab/b.tif")]
    with pytest.raises(ValueError, match=r"^labels: .*no match for \['lonely.tif'\]"):
        match_by_stem(images, others, "labels")


def test_match_by_stem_with_no_candidates_errors() -> None:
    with pytest.raises(ValueError, match=r"no match for \['a.tif'\]"):
        match_by_stem([Path("a.tif")], [], "priors")


# --------------------------------------------------------------------------------------
# PatchDataset
# --------------------------------------------------------------------------------------


@pytest.fixture
def synthetic_tiles(rng: np.random.Generator) -> list[AlignedTile]:
    """Two tiles of different shapes with known arrays; the second has no labels."""
    out = []
    for i, (h, w, with_mask) in enumerate([(20, 30, True), (16, 16, False)]):
        prior = rng.random((3, h, w)).astype(np.float32)
        out.append(
            AlignedTile(
                name=f"t{i}",
                image=rng.integers(0, 256, size=(4, h, w)).astype(np.uint8),
                prior=prior / prior.sum(axis=0),
                mask=rng.integers(0, 3, size=(h, w)).astype(np.int64) if with_mask else None,
                crs=UTM,
                transform=from_origin(WEST, NORTH, 1.0, 1.0),
            )
        )
    return out


@pytest.mark.parametrize(
    "index", [PatchIndex(0, 0, 0, 8), PatchIndex(0, 12, 22, 8), (0, 3, 5, 10), (0, 0, 0, 20)]
)
def test_patch_dataset_returns_the_slice(
    synthetic_tiles: list[AlignedTile], index: tuple[int, int, int, int]
) -> None:
    t, r, c, s = index
    sample = PatchDataset(synthetic_tiles)[index]
    tile = synthetic_tiles[t]
    assert set(sample) == {"image", "prior", "mask", "location"}
    assert sample["image"].dtype == torch.uint8  # as stored; the data module makes floats
    assert sample["prior"].dtype == torch.float32
    assert sample["mask"].dtype == torch.int64
    assert sample["location"].dtype == torch.int64
    assert sample["image"].shape == (4, s, s)
    np.testing.assert_array_equal(sample["image"].numpy(), tile.image[:, r : r + s, c : c + s])
    np.testing.assert_array_equal(sample["prior"].numpy(), tile.prior[:, r : r + s, c : c + s])
    np.testing.assert_array_equal(sample["mask"].numpy(), tile.mask[r : r + s, c : c + s])
    assert sample["location"].tolist() == [t, r, c, s]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (np.uint8, torch.uint8),
        (np.int16, torch.int16),
        (np.int32, torch.int32),
        (np.float32, torch.float32),
        (np.float64, torch.float64),
        (np.uint16, torch.float32),  # torch has no general uint16: converted
    ],
)
def test_patch_dataset_image_dtype(
    rng: np.random.Generator, stored: type, expected: torch.dtype
) -> None:
    image = rng.integers(0, 30_000, size=(2, 12, 12)).astype(stored)
    tile = AlignedTile("t", image, None, None, UTM, from_origin(WEST, NORTH, 1.0, 1.0))
    sample = PatchDataset([tile])[PatchIndex(0, 3, 4, 8)]
    assert sample["image"].dtype == expected
    np.testing.assert_array_equal(sample["image"].numpy(), image[:, 3:11, 4:12])


def test_patch_dataset_without_labels_or_prior(synthetic_tiles: list[AlignedTile]) -> None:
    dataset = PatchDataset(synthetic_tiles)
    assert len(dataset) == 2
    sample = dataset[PatchIndex(1, 8, 4, 8)]
    assert set(sample) == {"image", "prior", "location"}
    bare = AlignedTile(
        "bare", synthetic_tiles[1].image, None, None, UTM, rasterio.Affine.identity()
    )
    assert set(PatchDataset([bare])[PatchIndex(0, 0, 0, 4)]) == {"image", "location"}


@pytest.mark.parametrize("index", [PatchIndex(0, 0, 0, 16), PatchIndex(1, 40, 17, 24)])
def test_patch_dataset_on_fixture_matches_windowed_reads(
    tiles: dict[str, AlignedTile], index: PatchIndex
) -> None:
    t, r, c, s = index
    sample = PatchDataset([tiles[stem] for stem in STEMS])[index]
    window = Window(c, r, s, s)
    with rasterio.open(image_path(STEMS[t])) as src:
        image = src.read(window=window)
    with rasterio.open(label_path(STEMS[t])) as src:
        labels = src.read(1, window=window).astype(np.int64)
    assert sample["image"].dtype == torch.uint8
    np.testing.assert_array_equal(sample["image"].numpy(), image)
    np.testing.assert_array_equal(sample["mask"].numpy(), np.where(labels == 255, 255, labels - 1))
    assert sample["prior"].shape == (4, s, s)
    torch.testing.assert_close(sample["prior"].sum(dim=0), torch.ones(s, s), atol=1e-5, rtol=0)
