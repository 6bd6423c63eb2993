"""The benchmark scripts run and write the JSON keys their issues promise (not timings)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_sampling_benchmark_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sampling = load("sampling")
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


def test_report_tables_every_result(tmp_path: Path) -> None:
    report = load("report")
    out = tmp_path / "RESULTS.md"
    report.main(["--out", str(out)])
    text = out.read_text()
    for path in sorted((BENCH / "results").glob("*.json")):
        assert f"`{path.name}`" in text, path.name  # every JSON gets a section
    assert "| prior argmax |" in text
