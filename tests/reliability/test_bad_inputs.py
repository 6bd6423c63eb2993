"""Bad input: one line naming the file or option and what was expected, exit 2, nothing written.

Each case here was accepted or answered with a traceback before (issue 13).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from reliability_helpers import our_lines, run_cli

from torchgeo_lsr.adapters.rankings import pair_order_prior
from torchgeo_lsr.mapping.run import MapConfig
from torchgeo_lsr.outputs import LOCK_NAME

pytestmark = pytest.mark.filterwarnings("ignore")


def _refused(result: object, command: str, *needles: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]  # type: ignore[attr-defined]
    lines = our_lines(result.stderr)  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]
    [line] = lines
    assert line.startswith(f"torchgeo-lsr {command}: ")
    for needle in needles:
        assert needle in line
    return line


def _nothing_written(out: Path) -> None:
    assert not out.exists() or [p.name for p in out.rglob("*") if p.name != LOCK_NAME] == []


@pytest.mark.parametrize(
    ("values", "what"),
    [(np.nan, "NaN or infinite"), (-1.0, "negative"), (0.0, "sums to 0")],
)
def test_cooccurrence_npy_of_nonsense(city: Path, tmp_path: Path, values: float, what: str) -> None:
    matrix = tmp_path / "m.npy"
    np.save(matrix, np.full((5, 17), values))
    out = tmp_path / "prior"
    result = run_cli("prior", city, "--out", out, "--cooccurrence", matrix, "--no-progress")
    _refused(result, "prior", str(matrix), what)
    _nothing_written(out)


def test_nlcd_that_does_not_overlap_the_imagery(city: Path, tmp_path: Path) -> None:
    far = tmp_path / "far"
    shutil.copytree(city, far)
    [nlcd] = (far / "nlcd").glob("*.tif")
    with rasterio.open(nlcd, "r+") as dst:  # 100 km east
        t = dst.transform
        dst.transform = Affine(t.a, t.b, t.c + 100_000, t.d, t.e, t.f)
    out = tmp_path / "prior"
    result = run_cli("prior", far, "--out", out, "--no-progress")
    _refused(result, "prior", "no NLCD file", "overlaps this tile")
    _nothing_written(out)


def test_learned_prior_that_is_not_a_checkpoint(city: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "prior"
    result = run_cli("prior", city, "--out", out, "--learned-prior", junk, "--no-progress")
    _refused(result, "prior", str(junk), "not a PyTorch checkpoint")
    _nothing_written(out)


def test_evaluate_maps_and_labels_without_overlap(city: Path, tmp_path: Path) -> None:
    labels = sorted((city / "labels").glob("*.tif"))[0]
    pred = tmp_path / "pred.tif"
    with rasterio.open(labels) as src:
        profile = src.profile
        data = src.read()
        t = src.transform
    profile["transform"] = Affine(t.a, t.b, t.c + 100_000, t.d, t.e, t.f)
    with rasterio.open(pred, "w", **profile) as dst:
        dst.write(data)
    out = tmp_path / "scores"
    result = run_cli("evaluate", pred, "--labels", labels, "--out", out)
    _refused(result, "evaluate", "share no valid pixel")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "least"),
    [("steps", -1, 0), ("batch_size", 0, 1), ("patch_size", 8, 16)],
)
def test_map_budget_names_the_wrong_option(option: str, value: int, least: int) -> None:
    with pytest.raises(ValueError, match=rf"^{option} must be >= {least}, got {value}$"):
        MapConfig(**{option: value})


def test_init_checkpoint_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    from torchgeo_lsr.trainers import LabelSuperResolutionTask

    junk = tmp_path / "junk.ckpt"
    junk.write_text("hello")
    with pytest.raises(ValueError, match=r"init_checkpoint .*junk\.ckpt: not a PyTorch checkpoint"):
        LabelSuperResolutionTask(in_channels=4, num_classes=5, init_checkpoint=str(junk))


def test_ranking_order_as_bool_is_refused() -> None:
    y1, y2 = torch.tensor([3, 1, 2]), torch.tensor([1, 1, 5])
    with pytest.raises(TypeError, match="bool"):
        pair_order_prior(y1 > y2, 10)
    # what the message suggests is what the function expects
    assert pair_order_prior(torch.sign(y1 - y2), 10).shape == (3, 10, 10)


def test_empty_naip_folder(city: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    shutil.copytree(city, empty)
    for tile in (empty / "naip").iterdir():
        tile.unlink()
    out = tmp_path / "prior"
    result = run_cli("prior", empty, "--out", out, "--no-progress")
    line = _refused(result, "prior", "naip/ holds no GeoTIFF")
    assert "download" not in line
    _nothing_written(out)


def test_uint16_tile_beside_uint8_tiles(city: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(city, mixed)
    tile = sorted((mixed / "naip").glob("*.tif"))[-1]
    with rasterio.open(tile) as src:
        profile, data = src.profile, src.read()
    profile["dtype"] = "uint16"
    with rasterio.open(tile, "w", **profile) as dst:
        dst.write(data.astype(np.uint16) * 257)
    out = tmp_path / "map"
    result = run_cli("map", mixed, "--out", out, "--no-progress")
    _refused(result, "map", str(tile), "uint16", "uint8")
    _nothing_written(out)


def test_nan_patch_in_a_float_prior(tmp_path: Path) -> None:
    from torchgeo_lsr.datasets.aligned import read_aligned_tile

    tiny = Path(__file__).parents[1] / "data" / "tiny"
    image = sorted((tiny / "naip").glob("*.tif"))[0]
    with rasterio.open(tiny / "prior" / "prior.tif") as src:
        profile, data = src.profile, src.read().astype(np.float32)
    profile.update(dtype="float32", nodata=None)
    data[:, 4:11, 4:18] = np.nan  # a patch over both tiles
    bad = tmp_path / "prior.tif"
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
    with pytest.raises(ValueError, match=r"prior\.tif: prior has NaN values"):
        read_aligned_tile(image, bad)
    profile.update(nodata=float("nan"))  # declared as nodata: missing pixels, accepted
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
    assert read_aligned_tile(image, bad).prior is not None


def _shifted_copy(src_path: Path, dst: Path, dx: float, scale: int = 1) -> Path:
    with rasterio.open(src_path) as src:
        profile, data, t = src.profile, src.read(), src.transform
    data = data[:, ::scale, ::scale]
    profile.update(
        transform=Affine(t.a * scale, t.b, t.c + dx, t.d, t.e * scale, t.f),
        width=data.shape[2],
        height=data.shape[1],
    )
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
    return dst


@pytest.mark.parametrize(("dx", "scale", "needle"), [(10.0, 1, "cover 9"), (0.0, 2, "coarser")])
def test_evaluate_says_when_labels_are_shifted_or_coarser(
    city: Path, tmp_path: Path, dx: float, scale: int, needle: str
) -> None:
    from torchgeo_lsr.classes import get_scheme
    from torchgeo_lsr.datasets.grid import Grid
    from torchgeo_lsr.region import read_label_file

    truth = sorted((city / "labels").glob("*.tif"))[0]
    grid = Grid.of_raster(truth)
    classes = read_label_file(truth, grid, get_scheme("enviroatlas5"), "enviroatlas")
    pred = tmp_path / "map.tif"  # a perfect class map of the labels
    with rasterio.open(truth) as src:
        profile = src.profile
    profile.update(dtype="uint8", count=1, nodata=255)
    with rasterio.open(pred, "w", **profile) as dst:
        dst.write(classes.astype(np.uint8)[None])
    labels = _shifted_copy(truth, tmp_path / "labels.tif", dx, scale)
    result = run_cli("evaluate", pred, "--labels", labels)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = our_lines(result.stderr)
    assert len(lines) == 1
    assert lines[0].startswith("torchgeo-lsr evaluate: warning: ")
    assert needle in lines[0]
    # aligned labels: no warning
    assert our_lines(run_cli("evaluate", pred, "--labels", truth).stderr) == []


def test_user_classes_on_a_region_with_labels_refused_before_training(
    city: Path, tmp_path: Path
) -> None:
    scheme = tmp_path / "city3.yaml"
    scheme.write_text(
        "name: city3\n"
        "classes:\n"
        "  - {name: water, color: '#00c5ff'}\n"
        "  - {name: built, color: [156, 156, 156]}\n"
        "  - {name: green, color: [38, 115, 0]}\n"
    )
    out = tmp_path / "map"
    result = run_cli("map", city, "--out", out, "--classes", scheme, "--no-progress")
    line = _refused(result, "map", f"--classes {scheme}", "enviroatlas codes", "without labels/")
    assert "label_scheme" not in line  # an option map does not have
    _nothing_written(out)
