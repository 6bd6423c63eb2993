"""Tests for the region prior builder (``torchgeo-lsr prior``) on the generated sample city.

The builder's output is checked against an independent rendering of the paper's recipe
written here (NLCD read with rasterio, codes mapped by hand, one-hot, torchvision's Gaussian
blur, matrix product, normalise), against a brute-force co-occurrence count, and for its
bookkeeping: one file per tile on that tile's grid, resume, rebuild on change, errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from scipy import ndimage
from torchvision.transforms.functional import gaussian_blur

from torchgeo_lsr import cli
from torchgeo_lsr.classes import reference_cooccurrence
from torchgeo_lsr.datasets import BuildingFootprints, OSMRoads, OSMWaterBodies, OSMWaterways
from torchgeo_lsr.datasets.grid import Grid
from torchgeo_lsr.priors import builder
from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors
from torchgeo_lsr.sample_city import SampleCity, make_sample_city

TILES, SIZE = 2, 256
#: The paper's blur: kernel 101 (radius 50), sigma 31 px at 1 m.
KERNEL, SIGMA, RADIUS = 101, 31.0, 50
#: Class names of the default scheme (enviroatlas5), in band order.
NAMES = ("water", "impervious", "barren", "trees", "grass")
#: NLCD raw code -> index in the paper's 17-class order (0 = no data), written out by hand.
NLCD_INDEX = {
    0: 0, 11: 1, 12: 2, 21: 3, 22: 4, 23: 5, 24: 6, 31: 7, 41: 8, 42: 9, 43: 10,
    52: 11, 71: 12, 81: 13, 82: 14, 90: 15, 95: 16,
}  # fmt: skip
#: NLCD fill value outside the mapped area.
NLCD_FILL = 250
#: EnviroAtlas raw code -> enviroatlas5 index (water, impervious, barren, trees + shrub,
#: grass); every other code (unclassified, agriculture, orchards, wetlands) is ignored.
EA5_INDEX = {10: 0, 20: 1, 30: 2, 40: 3, 52: 3, 70: 4}


# ------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> SampleCity:
    return make_sample_city(
        tmp_path_factory.mktemp("prior") / "city", seed=0, tiles=TILES, size=SIZE, progress=False
    )


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """``torchgeo-lsr prior ARGS`` in process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["prior", *map(str, args)])
    return int(rc or 0), out.getvalue(), err.getvalue()


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        data: np.ndarray = src.read()
    return data


def read_all(directory: Path) -> dict[str, np.ndarray]:
    return {p.name: read(p) for p in sorted(directory.glob("*.tif"))}


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``directory``: bytes and mtime."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def copy_region(city: SampleCity, dest: Path, skip: tuple[str, ...] = ()) -> Path:
    shutil.copytree(city.root, dest, ignore=shutil.ignore_patterns(*skip))
    return dest


def nlcd_codes_on(tile: Path, nlcd: Path, pad: int = 0) -> np.ndarray:
    """Raw NLCD codes on the tile's 1 m grid (grown by ``pad`` px), nearest, exact transform.

    Pixels outside NLCD or on its fill value read as 250.
    """
    with rasterio.open(tile) as t:
        transform = t.transform * rasterio.Affine.translation(-pad, -pad)
        shape, crs = (t.height + 2 * pad, t.width + 2 * pad), t.crs
    out = np.full(shape, NLCD_FILL, dtype=np.int32)
    with rasterio.open(nlcd) as src:
        reproject(
            src.read(1).astype(np.int32),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=NLCD_FILL,
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=NLCD_FILL,
            resampling=Resampling.nearest,
            tolerance=0,  # no approximate transformer: each pixel centre is projected
        )
    return out


def nlcd_index(codes: np.ndarray) -> np.ndarray:
    """Raw codes -> 17-index (fill and unknown codes -> 0, no data)."""
    lut = np.zeros(256, dtype=np.int64)
    for code, index in NLCD_INDEX.items():
        lut[code] = index
    out: np.ndarray = lut[codes]
    return out


def reference_prior(codes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The paper's recipe on a tile, by the book: one-hot 17 -> blur -> remap -> normalise.

    The blur is scipy's Gaussian filter with the paper's kernel (sigma 31, radius 50 =
    kernel 101), float64, mirrored at the edges: only pixels >= RADIUS px from the edges,
    whose kernel stays inside the tile, are comparable with the builder's output.
    """
    index = nlcd_index(codes)
    assert (index > 0).all(), "the reference expects NLCD data on every tile pixel"
    onehot = np.eye(17)[index].transpose(2, 0, 1)
    blurred = np.stack(
        [ndimage.gaussian_filter(c, SIGMA, mode="mirror", truncate=RADIUS / SIGMA) for c in onehot]
    )
    mass = np.einsum("kc,chw->khw", matrix, blurred)
    out: np.ndarray = mass / mass.sum(axis=0, keepdims=True)
    return out


def test_reference_blur_is_the_paper_kernel() -> None:
    """scipy's filter above = torchvision's gaussian_blur(kernel 101, sigma 31) inside."""
    rng = np.random.default_rng(0)
    x = rng.random((1, 160, 170))
    ours = ndimage.gaussian_filter(x[0], SIGMA, mode="mirror", truncate=RADIUS / SIGMA)
    theirs = gaussian_blur(torch.from_numpy(x), [KERNEL, KERNEL], [SIGMA, SIGMA]).numpy()[0]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def interior(a: np.ndarray) -> np.ndarray:
    return a[..., RADIUS:-RADIUS, RADIUS:-RADIUS]


def random_matrix(seed: int = 0) -> np.ndarray:
    """A (5, 17) column-stochastic matrix; column 0 (NLCD no data) carries no information."""
    rng = np.random.default_rng(seed)
    m = rng.dirichlet(np.full(5, 0.7), size=17).T
    m[:, 0] = 0.0
    return m


# ------------------------------------------------------------------- CLI output
@pytest.fixture(scope="module")
def cli_outputs(city: SampleCity, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default CLI run, as float32 and as uint8."""
    root = tmp_path_factory.mktemp("cli")
    outs = {}
    for dtype in ("float32", "uint8"):
        out = root / dtype
        rc, stdout, err = run_cli(city.root, "--out", out, "--dtype", dtype, "--no-progress")
        assert rc == 0, err
        assert "2 written, 0 reused" in stdout
        outs[dtype] = out
    return outs


def test_cli_one_prior_per_tile_on_its_grid(city: SampleCity, cli_outputs: dict[str, Path]) -> None:
    for dtype, out in cli_outputs.items():
        assert sorted(p.name for p in out.iterdir()) == sorted(t.stem + ".tif" for t in city.naip)
        for tile in city.naip:
            with rasterio.open(tile) as t, rasterio.open(out / (tile.stem + ".tif")) as p:
                assert p.crs == t.crs
                assert p.transform == t.transform
                assert (p.width, p.height) == (t.width, t.height)
                assert p.count == len(NAMES)
                assert p.dtypes == (dtype,) * len(NAMES)
                assert p.descriptions == NAMES
                tags = p.tags()
                assert tags["LSR_CLASSES"] == "enviroatlas5"
                assert tags["LSR_SCALE"] == ("1" if dtype == "float32" else "1/255")


def test_cli_float32_on_simplex(cli_outputs: dict[str, Path]) -> None:
    priors = read_all(cli_outputs["float32"])
    for prior in priors.values():
        total = prior.sum(axis=0, dtype=np.float64)
        valid = total > 0
        # NLCD covers the sample city's tiles (and the blur margin): every pixel is informed
        assert valid.all()
        assert np.abs(total[valid] - 1).max() < 1e-3
        assert prior.min() >= 0
        # the paper's smoothing eps=1e-4 keeps every class above eps / (1 + 5 eps)
        assert prior.min() >= 1e-4 / (1 + 5e-4) * (1 - 1e-5)
        # a blurred NLCD prior is not uniform: it is informative somewhere
        assert prior.max() > 0.5


def test_cli_uint8_is_sum_preserving_rounding_of_float32(cli_outputs: dict[str, Path]) -> None:
    floats, bytes_ = read_all(cli_outputs["float32"]), read_all(cli_outputs["uint8"])
    assert floats.keys() == bytes_.keys()
    for name, p in floats.items():
        q = bytes_[name]
        assert q.dtype == np.uint8
        # every pixel sums to exactly 255, each band within one step of 255 p
        np.testing.assert_array_equal(q.sum(axis=0, dtype=np.int64), 255)
        assert np.abs(q / 255.0 - p).max() <= 1 / 255 + 1e-6
        # an independent reference: round the cumulative sums in float64, difference them
        cum = np.round(255 * np.cumsum(p.astype(np.float64), axis=0))
        expected = np.diff(cum, axis=0, prepend=0)
        assert np.mean(q == expected) > 0.999  # float32 ties may round either way


def test_quantize_probs_on_the_simplex_and_nodata() -> None:
    from torchgeo_lsr.formats import quantize_probs

    gen = torch.Generator().manual_seed(0)
    p = torch.rand(5, 40, 30, generator=gen)
    p /= p.sum(dim=0, keepdim=True)
    p[:, :3] = 0  # no information
    q = quantize_probs(p)
    totals = q.sum(axis=0, dtype=np.int64)
    assert (totals[:3] == 0).all()
    assert (totals[3:] == 255).all()
    assert np.abs(q / 255.0 - p.numpy()).max() <= 1 / 255 + 1e-6


# --------------------------------------------------------------- window margins
def _aligned_nlcd_region(city: SampleCity, dest: Path) -> Path:
    """The city with its NLCD resampled (nearest) to a 30 m grid in the tiles' own CRS.

    The NLCD cells are then aligned with the 1 m tile grid, so reading NLCD on any window
    is exact and independent of the window: the comparison isolates the margin logic.
    """
    region = copy_region(city, dest, skip=("nlcd",))
    (region / "nlcd").mkdir()
    with rasterio.open(city.naip[0]) as t:
        crs, west, north = t.crs, t.transform.c, t.transform.f
    cells = 3  # NLCD cells beyond the tiles on each side (90 m > the 50 px margin)
    width, height = -(-TILES * SIZE // 30) + 2 * cells, -(-SIZE // 30) + 2 * cells
    transform = from_origin(west - 30 * cells, north + 30 * cells, 30.0, 30.0)
    codes = np.full((height, width), NLCD_FILL, dtype=np.uint8)
    with rasterio.open(city.nlcd) as src:
        reproject(
            src.read(1),
            codes,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=NLCD_FILL,
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=NLCD_FILL,
            resampling=Resampling.nearest,
            tolerance=0,
        )
        profile = src.profile | {
            "crs": crs,
            "transform": transform,
            "width": width,
            "height": height,
        }
    with rasterio.open(region / "nlcd" / city.nlcd.name, "w", **profile) as dst:
        dst.write(codes, 1)
    return region


@pytest.fixture(scope="module")
def aligned_region(city: SampleCity, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _aligned_nlcd_region(city, tmp_path_factory.mktemp("aligned") / "city")


@pytest.mark.parametrize("blur", ["exact", "fft"])
def test_windowed_equals_whole_tile(aligned_region: Path, tmp_path: Path, blur: str) -> None:
    """window=64 (16 windows per tile, each padded by 50 px) = one window per tile."""
    config = PriorConfig(blur=blur)  # type: ignore[arg-type]
    small = build_region_priors(
        aligned_region, tmp_path / "w64", dataclasses.replace(config, window=64), progress=False
    )
    whole = build_region_priors(
        aligned_region, tmp_path / "w4096", dataclasses.replace(config, window=4096), False
    )
    assert len(small.written) == len(whole.written) == TILES
    a, b = read_all(tmp_path / "w64"), read_all(tmp_path / "w4096")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("blur", ["exact", "fft"])
def test_windowed_equals_whole_tile_reprojected_nlcd(
    city: SampleCity, tmp_path: Path, blur: str
) -> None:
    """The same on the city as generated (NLCD in EPSG:5070, tiles in EPSG:26917).

    Needs an exact NLCD warp: with GDAL's approximate transformer (0.125 px) a nearest
    read picked another cell at one pixel depending on the window (7e-5 apart).
    """
    config = PriorConfig(blur=blur)  # type: ignore[arg-type]
    build_region_priors(city.root, tmp_path / "a", dataclasses.replace(config, window=64), False)
    build_region_priors(city.root, tmp_path / "b", dataclasses.replace(config, window=4096), False)
    a, b = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-5, err_msg=name)


def test_windowed_fast_within_its_error(aligned_region: Path, tmp_path: Path) -> None:
    """The fast blur's windows agree within its documented error against exact (< 0.01)."""
    build_region_priors(aligned_region, tmp_path / "a", PriorConfig(window=64), False)
    build_region_priors(aligned_region, tmp_path / "b", PriorConfig(window=4096), False)
    a, b = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    for name in a:
        assert np.abs(a[name] - b[name]).max() < 0.01, name


def test_windowed_equals_whole_tile_with_aux(aligned_region: Path, tmp_path: Path) -> None:
    """Aux layers are dilated across window seams (read on the padded window)."""
    config = PriorConfig(blur="exact", aux=("osm", "buildings"))
    build_region_priors(aligned_region, tmp_path / "a", dataclasses.replace(config, window=64))
    build_region_priors(aligned_region, tmp_path / "b", dataclasses.replace(config, window=4096))
    a, b = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-5, err_msg=name)


# ---------------------------------------------------------- the paper's recipe
@pytest.fixture(scope="module")
def matrix_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("matrix") / "random.npy"
    np.save(path, random_matrix())
    return path


@pytest.mark.parametrize(("blur", "bound"), [("exact", 1e-3), ("fft", 1e-3), ("fast", 1e-2)])
@pytest.mark.parametrize("source", ["pittsburgh", "npy"])
def test_matches_reference_recipe(
    city: SampleCity, tmp_path: Path, matrix_file: Path, blur: str, bound: float, source: str
) -> None:
    matrix = (
        reference_cooccurrence("pittsburgh", "enviroatlas5")
        if source == "pittsburgh"
        else np.load(matrix_file)
    )
    config = PriorConfig(
        cooccurrence=str(matrix_file) if source == "npy" else source,
        blur=blur,  # type: ignore[arg-type]
        kernel_size=KERNEL,
        sigma=SIGMA,
        eps=0.0,
    )
    report = build_region_priors(city.root, tmp_path, config, progress=False)
    np.testing.assert_allclose(report.matrix, matrix, rtol=0, atol=1e-12)
    for tile in city.naip:
        ours = read(tmp_path / (tile.stem + ".tif"))
        ref = reference_prior(nlcd_codes_on(tile, city.nlcd), matrix)
        diff = np.abs(interior(ours) - interior(ref)).max()
        assert diff < bound, f"{tile.name}: max abs diff {diff:.2e} (bound {bound})"
        # the comparison is not vacuous: the prior varies within the interior
        assert interior(ref).max(axis=(1, 2)).max() - interior(ref).min(axis=(1, 2)).min() > 0.3


def test_eps_smoothing(city: SampleCity, tmp_path: Path) -> None:
    """eps smoothing is (p + eps) / (1 + K eps) of the unsmoothed prior."""
    eps = 0.01
    build_region_priors(city.root, tmp_path / "a", PriorConfig(blur="exact", eps=0.0), False)
    build_region_priors(city.root, tmp_path / "b", PriorConfig(blur="exact", eps=eps), False)
    a, b = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    for name in a:
        expected = (a[name].astype(np.float64) + eps) / (1 + len(NAMES) * eps)
        np.testing.assert_allclose(b[name], expected, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------- resume
def test_resume_skips_and_rebuilds(city: SampleCity, tmp_path: Path) -> None:
    region = copy_region(city, tmp_path / "city")
    out = tmp_path / "priors"
    config = PriorConfig()
    first = build_region_priors(region, out, config, progress=False)
    assert len(first.written) == TILES
    assert not first.skipped
    before = snapshot(out)
    assert sorted(before) == sorted(t.stem + ".tif" for t in city.naip)

    again = build_region_priors(region, out, config, progress=False)
    assert not again.written
    assert again.skipped == first.written
    assert again.outputs == first.outputs
    assert snapshot(out) == before  # byte-identical, mtimes unchanged

    # a changed parameter rebuilds every tile, with different values
    sharper = build_region_priors(region, out, dataclasses.replace(config, sigma=10.0), False)
    assert sorted(sharper.written) == sorted(first.written)
    assert not sharper.skipped
    after_sigma, sigma_values = snapshot(out), read_all(out)
    for name, (data, _) in before.items():
        assert after_sigma[name][0] != data
    # ... and that is now the state a rerun keeps
    kept = build_region_priors(region, out, dataclasses.replace(config, sigma=10.0), False)
    assert not kept.written
    assert len(kept.skipped) == TILES

    # a touched input (a new mtime on the NLCD file) rebuilds too
    nlcd = next((region / "nlcd").iterdir())
    stat = nlcd.stat()
    os.utime(nlcd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = build_region_priors(region, out, dataclasses.replace(config, sigma=10.0), False)
    assert len(touched.written) == TILES
    assert not touched.skipped
    rebuilt = snapshot(out)
    assert rebuilt.keys() == after_sigma.keys()
    for name in rebuilt:  # rewritten (new mtime), from the same data: the same pixels
        assert rebuilt[name][1] != after_sigma[name][1]
        np.testing.assert_array_equal(read(out / name), sigma_values[name])


class _Interrupted(Exception):
    pass


def test_interrupted_run_resumes(
    city: SampleCity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = PriorConfig(window=64)  # 16 windows per tile
    out = tmp_path / "priors"
    real = builder.build_tile_prior
    finished: list[Path] = []

    def interrupted(*args: Any, **kwargs: Any) -> Path:
        """Build the first tile; stop the second after its first window is written."""
        bound = inspect.signature(real).bind(*args, **kwargs)
        if finished:

            def stop(pixels: int) -> None:
                raise _Interrupted

            bound.arguments["progress"] = stop
        path = real(*bound.args, **bound.kwargs)
        finished.append(path)
        return path

    monkeypatch.setattr(builder, "build_tile_prior", interrupted)
    with pytest.raises(_Interrupted):
        build_region_priors(city.root, out, config, progress=False)
    monkeypatch.undo()

    assert len(finished) == 1
    final = sorted(p.name for p in out.glob("*.tif"))
    assert final == [finished[0].name]  # nothing under a final name for the unfinished tile
    # the unfinished tile's temporary file is removed when the exception unwinds
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".torchgeo-lsr")) == final
    kept = snapshot(out)[finished[0].name]

    rerun = build_region_priors(city.root, out, config, progress=False)
    assert rerun.skipped == finished
    assert len(rerun.written) == TILES - 1
    assert snapshot(out)[finished[0].name] == kept
    assert sorted(p.name for p in out.iterdir()) == sorted(t.stem + ".tif" for t in city.naip)
    # the resumed tile equals an uninterrupted build
    clean = build_region_priors(city.root, tmp_path / "clean", config, progress=False)
    assert len(clean.written) == TILES
    for path in rerun.written:
        np.testing.assert_array_equal(read(path), read(tmp_path / "clean" / path.name))


# -------------------------------------------------------------------------- aux
def _aux_masks(region: Path, tile: Path, pad: int = 0) -> dict[str, np.ndarray]:
    """The aux layers on the tile's grid grown by ``pad`` px on each side."""
    grid = Grid.of_raster(tile)
    grid = grid.window(-pad, -pad, grid.height + 2 * pad, grid.width + 2 * pad)
    sources = {
        "roads": OSMRoads(region / "osm"),
        "water_bodies": OSMWaterBodies(region / "osm"),
        "waterways": OSMWaterways(region / "osm"),
        "buildings": BuildingFootprints(region / "buildings"),
    }
    return {name: src[grid]["mask"].numpy() > 0 for name, src in sources.items()}


def test_aux_osm_buildings(city: SampleCity, tmp_path: Path) -> None:
    rc, _, err = run_cli(city.root, "--out", tmp_path / "aux", "--aux", "osm,buildings",
                         "--no-progress")  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_cli(city.root, "--out", tmp_path / "none", "--aux", "none", "--no-progress")
    assert rc == 0, err
    for tile in city.naip:
        with_aux = read(tmp_path / "aux" / (tile.stem + ".tif")).astype(np.float64)
        without = read(tmp_path / "none" / (tile.stem + ".tif")).astype(np.float64)
        pad = 16  # features just beyond the tile edge are dilated into it
        padded = _aux_masks(city.root, tile, pad)
        masks = {k: v[pad:-pad, pad:-pad] for k, v in padded.items()}
        roads = masks["roads"]
        assert roads.sum() > 500, "the sample city has roads in every tile"
        imp = NAMES.index("impervious")
        gain = with_aux[imp][roads] - without[imp][roads]
        assert gain.min() >= -1e-6
        assert gain.mean() > 0.1
        # weight 1: a road pixel ends with at least half its mass on impervious (eps aside),
        # unless a water layer adds mass there too (a bridge; waterways are dilated 2 px)
        wet = ndimage.binary_dilation(masks["water_bodies"] | masks["waterways"], iterations=3)
        dry_roads = roads & ~wet
        assert dry_roads.sum() > 500
        assert with_aux[imp][dry_roads].min() >= 0.5 * (1 - 1e-3)
        assert np.abs(with_aux.sum(axis=0) - 1).max() < 1e-3

        anything = np.logical_or.reduce(list(padded.values()))
        far = ndimage.distance_transform_edt(~anything)[pad:-pad, pad:-pad] > 8  # dilation <= 3
        assert far.sum() > 1000
        # the same values; without aux layers the smoothing onto the simplex runs before the
        # upsampling instead of after it, which is the same map up to float32 round-off
        np.testing.assert_allclose(with_aux[:, far], without[:, far], rtol=0, atol=1e-6)
        # and water layers move mass to water
        water = masks["water_bodies"] & ~masks["roads"] & ~masks["buildings"]
        if water.any():
            w = NAMES.index("water")
            assert (with_aux[w][water] >= without[w][water] - 1e-6).all()


# ------------------------------------------------------------ co-occurrence
def brute_force_cooccurrence(city: SampleCity) -> np.ndarray:
    """P(class | NLCD) per tile by counting, each column averaged over the tiles where it occurs."""
    per_tile = []
    for tile, labels in zip(city.naip, city.labels, strict=True):
        with rasterio.open(labels) as src, rasterio.open(tile) as t:
            assert (src.crs, src.transform, src.shape) == (t.crs, t.transform, t.shape)
            codes = src.read(1)
        nlcd = nlcd_index(nlcd_codes_on(tile, city.nlcd))
        counts = np.zeros((5, 17))
        for code, k in EA5_INDEX.items():
            for c in range(1, 17):
                counts[k, c] += np.count_nonzero((codes == code) & (nlcd == c))
        per_tile.append(counts)
    sums, seen = np.zeros((5, 17)), np.zeros(17)
    for counts in per_tile:
        total = counts.sum(axis=0)
        present = total > 0
        sums[:, present] += counts[:, present] / total[present]
        seen += present
    out: np.ndarray = sums / np.maximum(seen, 1)
    return out


def test_cooccurrence_estimate(city: SampleCity, tmp_path: Path) -> None:
    rc, stdout, err = run_cli(city.root, "--out", tmp_path / "est", "--cooccurrence", "estimate",
                              "--no-progress")  # fmt: skip
    assert rc == 0, err
    assert "co-occurrence estimate" in stdout
    report = build_region_priors(
        city.root, tmp_path / "est", PriorConfig(cooccurrence="estimate"), progress=False
    )
    assert len(report.skipped) == TILES  # the CLI run wrote the same thing
    matrix = report.matrix
    assert matrix is not None
    assert matrix.shape == (5, 17)
    sums = matrix.sum(axis=0)
    assert np.all((np.abs(sums - 1) < 1e-9) | (sums == 0))
    assert sums[0] == 0  # NLCD no data is never counted
    expected = brute_force_cooccurrence(city)
    assert (expected.sum(axis=0) > 0).sum() >= 5
    np.testing.assert_allclose(matrix, expected, rtol=0, atol=1e-12)
    # the estimated matrix is the one the priors were built with
    np.save(tmp_path / "expected.npy", matrix)
    build_region_priors(
        city.root, tmp_path / "npy", PriorConfig(cooccurrence=str(tmp_path / "expected.npy")),
        progress=False,
    )  # fmt: skip
    for name, prior in read_all(tmp_path / "est").items():
        np.testing.assert_allclose(prior, read(tmp_path / "npy" / name), rtol=0, atol=1e-6)


def test_cooccurrence_estimate_rebuilds_on_new_labels(city: SampleCity, tmp_path: Path) -> None:
    region = copy_region(city, tmp_path / "city")
    config = PriorConfig(cooccurrence="estimate")
    build_region_priors(region, tmp_path / "out", config, progress=False)
    label = sorted((region / "labels").iterdir())[0]
    stat = label.stat()
    os.utime(label, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    again = build_region_priors(region, tmp_path / "out", config, progress=False)
    assert len(again.written) == TILES


# ----------------------------------------------------------------------- errors
def _no_nlcd(city: SampleCity, tmp: Path) -> Path:
    return copy_region(city, tmp / "city", skip=("nlcd",))


def _wrong_shape(city: SampleCity, tmp: Path) -> Path:
    np.save(tmp / "wrong.npy", np.full((4, 17), 0.25))
    return city.root


ErrorCase = tuple[
    Callable[[SampleCity, Path], Path],
    Callable[[Path], list[str]],
    Callable[[Path, Path], object],
    type[Exception],
    str,
]
ERRORS: dict[str, ErrorCase] = {
    "missing nlcd": (
        _no_nlcd,
        lambda tmp: [],
        lambda region, out: build_region_priors(region, out, PriorConfig(), False),
        FileNotFoundError,
        r"no nlcd/ directory",
    ),
    "unknown cooccurrence": (
        lambda city, tmp: city.root,
        lambda tmp: ["--cooccurrence", "gotham"],
        lambda region, out: build_region_priors(region, out, PriorConfig(cooccurrence="gotham")),
        ValueError,
        r"'gotham'.*not a reference city",
    ),
    "npy wrong shape": (
        _wrong_shape,
        lambda tmp: ["--cooccurrence", str(tmp / "wrong.npy")],
        lambda region, out: build_region_priors(
            region, out, PriorConfig(cooccurrence=str(out.parent / "wrong.npy"))
        ),
        ValueError,
        r"\(4, 17\); expected \(5, 17\)",
    ),
    "aux foo": (
        lambda city, tmp: city.root,
        lambda tmp: ["--aux", "foo"],
        lambda region, out: PriorConfig(aux=("foo",)),  # type: ignore[arg-type]
        ValueError,
        # the command line checks the choice before building a PriorConfig
        r"unknown sources \['foo'\]|^torchgeo-lsr prior: --aux: expected one of osm, buildings, "
        r"got 'foo'$",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(city: SampleCity, tmp_path: Path, case: str) -> None:
    setup, extra, api, error, message = ERRORS[case]
    region = setup(city, tmp_path)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(region, "--out", out, *extra(tmp_path), "--no-progress")
    assert rc == 2
    assert stdout == ""
    assert err.startswith("torchgeo-lsr prior: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert re.search(message, err), err
    with pytest.raises(error, match=message):
        api(region, out)
    assert not out.exists() or not any(out.iterdir()), "nothing written on an error"


# ------------------------------------------------------ the coarse fast path
def _blocky_nlcd(seed: int, size: int = 300, block: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """NLCD indices in 30 px blocks at a random offset, with a hole of nodata."""
    gen = np.random.default_rng(seed)
    codes = gen.integers(1, 17, size=(size // block + 2, size // block + 2))
    off = gen.integers(0, block, size=2)
    index = np.kron(codes, np.ones((block, block), dtype=np.int64))
    index = index[off[0] : off[0] + size, off[1] : off[1] + size]
    valid = np.ones_like(index, dtype=bool)
    valid[100:140, 200:260] = False
    return torch.from_numpy(index), torch.from_numpy(valid)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("aux", [False, True])
def test_fast_window_equals_the_fast_blur_recipe(seed: int, aux: bool) -> None:
    """The coarse-canvas rearrangement equals remap -> blur_probs(fast) -> fuse -> simplex."""
    from torchgeo_lsr.priors import blur_probs, fuse_auxiliary, to_simplex

    index, nlcd_valid = _blocky_nlcd(seed)
    matrix = torch.from_numpy(reference_cooccurrence("durham", "enviroatlas5")).float()
    config = PriorConfig(eps=1e-4)
    layers = {"roads": torch.zeros(index.shape, dtype=torch.bool)} if aux else None
    if layers is not None:
        layers["roads"][150:154, :] = True
    crop = 50
    ours, ok = builder.prior_window(index, nlcd_valid, matrix, config, layers, crop)

    valid = nlcd_valid & (matrix.sum(dim=0) > 0)[index]
    base = matrix[:, index] * valid
    blurred = blur_probs(base, 31.0, 101, valid=valid, method="fast")
    if layers is not None:
        spec = config.fusion_spec()["roads"]
        blurred = fuse_auxiliary(
            blurred,
            layers,
            targets={"roads": int(spec["target"])},
            weights={"roads": float(spec.get("weight", 1.0))},
            dilate={"roads": int(spec.get("dilate", 0))},
            sigma={"roads": float(spec.get("sigma", 0.0))},
        )
    ref, ref_ok = to_simplex(blurred[:, crop:-crop, crop:-crop], eps=1e-4)
    assert ours.shape == ref.shape == (5, 200, 200)
    assert torch.equal(ok, ref_ok)
    # normalising on the coarse canvas before upsampling instead of after: tiny difference
    assert (ours - ref).abs().max() < 2e-4, float((ours - ref).abs().max())
    torch.testing.assert_close(ours.sum(dim=0), torch.ones(200, 200), rtol=0, atol=1e-5)
