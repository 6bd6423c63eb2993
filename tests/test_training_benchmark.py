"""benchmarks/training.py runs and writes the JSON keys issue 18 promises (not timings)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def test_training_benchmark_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    bench = benchmark_module("training")
    from torchgeo_lsr.mapping import MapConfig

    def tiny(name: str, quick: bool) -> MapConfig:
        size = 32 if name == "demo" else 40
        return MapConfig(
            steps=8,
            patch_size=size,
            batch_size=2,
            num_filters=4,
            num_layers=2,
            warmup_epochs=0,
            accelerator="cpu",
        )

    monkeypatch.setattr(bench, "budget_config", tiny)
    monkeypatch.setattr(bench, "BARE_BATCHES", 2)
    monkeypatch.setattr(bench, "VARIANT_STEPS", {True: 4, False: 4})
    out = tmp_path / "training.json"
    argv = ["--quick", "--repeats", "1", "--tiles", "2", "--tile-size", "96"]
    argv += ["--variant-budgets", "demo", "--profile"]
    argv += ["--variants", "threads_1", "channels_last", "loader_workers_0", "--out", str(out)]
    result = bench.main(argv)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["budgets"]) == {"demo", "larger"}
    for key in ("python", "torch", "torchgeo", "lightning"):
        assert saved["versions"][key]
    assert saved["threads"]["intra_op"] >= 1
    for budget in saved["budgets"].values():
        assert budget["settings"]["steps"] == 8
        for key in ("ours_s_per_step", "bare_s_per_step", "ours_fit_s_per_step"):
            assert budget[key] > 0, key
        assert budget["ratio"] == pytest.approx(
            budget["ours_s_per_step"] / budget["bare_s_per_step"]
        )
        cpu = budget["ours_cpu_s_per_step"] / budget["bare_cpu_s_per_step"]
        assert budget["cpu_ratio"] == pytest.approx(cpu)
    assert saved["ratio"] == saved["budgets"]["demo"]["ratio"]
    variants = saved["budgets"]["demo"]["variants"]
    assert "variants" not in saved["budgets"]["larger"]
    plain = variants["plain"]["s_per_step"]
    for name in ("threads_1", "channels_last", "loader_workers_0"):
        assert variants[name]["speedup"] == pytest.approx(plain / variants[name]["s_per_step"])
        assert variants[name]["max_rel_loss_diff"] >= 0
    assert variants["threads_1"]["max_rel_loss_diff"] < 1e-3  # the same arithmetic
    assert "CUDA" in variants["pin_memory"]["note"]
    profile = saved["budgets"]["demo"]["ours_profile_s"]  # --profile: one more run of ours
    assert profile["backward"] > 0
    assert profile["training_epochs"] <= profile["train_call_s"]
