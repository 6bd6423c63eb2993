"""``benchmarks/full_tile.py`` runs end to end and writes the keys issue 18 asks for."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import rasterio


def test_full_tile_benchmark_keys(
    tmp_path: Path, benchmark_module: Callable[[str], ModuleType]
) -> None:
    bench = benchmark_module("full_tile")
    out = tmp_path / "full_tile.json"
    argv = ["--size", "300", "260", "--steps", "2", "--cache", str(tmp_path), "--out", str(out)]
    result = bench.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    # the region is one tile of the size asked, in its real formats
    region = tmp_path / "full_tile_300x260_seed0"
    (tile,) = sorted((region / "naip").glob("*.tif"))
    with rasterio.open(tile) as src:
        assert (src.height, src.width, src.count, src.dtypes[0]) == (300, 260, 4, "uint8")
    with rasterio.open(next((region / "labels").glob("*.tif"))) as src:
        assert (src.height, src.width) == (300, 260)
    assert result["pixels"] == 300 * 260
    stages = result["stages_s"]
    assert set(stages) == set(bench.STAGES)
    assert result["area_stages_s"] == pytest.approx(
        sum(stages[s] for s in bench.AREA_STAGES), abs=0.02
    )
    assert 0 < result["peak_rss_gib"] < 64
    assert set(result["stage_peak_rss_gib"]) == set(bench.STAGES)
    for folder in ("prior", "q", "r", "checkpoints"):
        assert result["output_mib"][folder] > 0, folder
    assert result["prediction_mpx_s"] == pytest.approx(
        result["pixels"] / 1e6 / stages["predict"], rel=0.01
    )
    assert result["metrics"]["r"]["miou"] >= 0
    # the cached region is reused, not generated again
    stamp = tile.stat().st_mtime_ns
    assert bench.make_region(tmp_path, 300, 260) == region
    assert tile.stat().st_mtime_ns == stamp
