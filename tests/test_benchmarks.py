"""The benchmark scripts run and write the JSON keys their issues promise (not timings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_sampling_benchmark_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    sampling = benchmark_module("sampling")
    monkeypatch.setattr(sampling, "PATCH", 32)
    out = tmp_path / "sampling.json"
    # a miniature run through the real code path: 2 tiles of 96 px, 32 patches
    original = sampling.write_tiles
    monkeypatch.setattr(sampling, "write_tiles", lambda root, tiles, size: original(root, 2, 96))
    result = sampling.main(["--quick", "--out", str(out), "--cache", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("ours_per_s", "torchgeo_per_s", "speedup", "ours_setup_s"):
        assert saved[key] > 0, key
    assert saved["speedup"] == pytest.approx(saved["ours_per_s"] / saved["torchgeo_per_s"])


def test_report_tables_every_result(
    tmp_path: Path, benchmark_module: Callable[[str], ModuleType]
) -> None:
    report = benchmark_module("report")
    out = tmp_path / "RESULTS.md"
    report.main(["--out", str(out)])
    text = out.read_text()
    for path in sorted((Path(report.__file__).parent / "results").glob("*.json")):
        assert f"`{path.name}`" in text, path.name  # every JSON gets a section
    assert "| prior argmax |" in text
