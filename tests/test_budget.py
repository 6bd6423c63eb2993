"""``map``'s training budget by accelerator: which one, what it sets, what the user keeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from torchgeo_lsr.cli import main
from torchgeo_lsr.mapping import cli as map_cli
from torchgeo_lsr.mapping import run as map_run
from torchgeo_lsr.mapping.config import (
    BUDGET_FIELDS,
    BUDGETS,
    MapConfig,
    choose_budget,
)
from torchgeo_lsr.options import given_options, tool_parser

CONFIGS = Path(__file__).parents[1] / "configs" / "map"


def fake_devices(
    monkeypatch: pytest.MonkeyPatch, cuda: int = 0, mps: bool = False, tpu: bool = False
) -> None:
    """What Lightning's accelerators report: ``cuda`` devices, Apple MPS, a TPU."""
    from lightning.fabric.accelerators import cuda as fabric_cuda
    from lightning.fabric.accelerators.cuda import CUDAAccelerator
    from lightning.fabric.accelerators.mps import MPSAccelerator
    from lightning.fabric.accelerators.xla import XLAAccelerator

    monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: cuda > 0))
    monkeypatch.setattr(fabric_cuda, "num_cuda_devices", lambda: cuda)
    monkeypatch.setattr(MPSAccelerator, "is_available", staticmethod(lambda: mps))
    monkeypatch.setattr(XLAAccelerator, "is_available", staticmethod(lambda: tpu))


def test_budgets_are_the_shipped_configs() -> None:
    """cpu = configs/map/demo.yaml, gpu = configs/map/paper.yaml, field by field."""
    demo = MapConfig.from_yaml(CONFIGS / "demo.yaml")
    cpu = MapConfig(**BUDGETS["cpu"])
    for name in BUDGET_FIELDS:
        if name == "warmup_epochs":  # None = auto: the demo's explicit 1 epoch
            assert cpu.warmup() == demo.warmup() == 1
        else:
            assert getattr(cpu, name) == getattr(demo, name), name
    paper = yaml.safe_load((CONFIGS / "paper.yaml").read_text())
    assert {k: paper[k] for k in BUDGET_FIELDS} == BUDGETS["gpu"]
    assert set(BUDGETS["cpu"]) == set(BUDGETS["gpu"]) == set(BUDGET_FIELDS)
    # the CPU budget is MapConfig's own defaults
    assert {k: getattr(MapConfig(), k) for k in BUDGET_FIELDS} == BUDGETS["cpu"]


@pytest.mark.parametrize(
    ("accelerator", "devices", "name", "reason"),
    [
        ("cpu", {"cuda": 1}, "cpu", "--accelerator cpu"),
        ("gpu", {}, "gpu", "--accelerator gpu"),
        ("cuda", {}, "gpu", "--accelerator cuda"),
        ("auto", {}, "cpu", "--accelerator auto found no GPU"),
        ("auto", {"cuda": 1}, "gpu", "--accelerator auto found 1 CUDA device"),
        ("auto", {"cuda": 4}, "gpu", "--accelerator auto found 4 CUDA devices"),
        ("auto", {"mps": True}, "gpu", "--accelerator auto found Apple MPS"),
        # Lightning's order for "auto": TPU, then MPS, then CUDA
        ("auto", {"cuda": 2, "tpu": True}, "gpu", "--accelerator auto found a TPU"),
    ],
)
def test_choose_budget(
    monkeypatch: pytest.MonkeyPatch,
    accelerator: str,
    devices: dict[str, Any],
    name: str,
    reason: str,
) -> None:
    fake_devices(monkeypatch, **devices)
    assert choose_budget(accelerator) == (name, reason)


def test_choose_budget_leaves_cuda_uninitialised() -> None:
    """Asking which budget must not start CUDA in the parent (``ddp_fork`` would fail)."""
    was = torch.cuda.is_initialized()
    choose_budget("auto")
    assert torch.cuda.is_initialized() == was


def test_for_accelerator_keeps_what_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_devices(monkeypatch, cuda=1)
    config, budget = MapConfig.for_accelerator({"steps": 300, "loss": "rq"})
    assert budget.name == "gpu"
    assert (config.steps, config.loss) == (300, "rq")  # given: kept
    for name in set(BUDGET_FIELDS) - {"steps"}:  # not given: the GPU budget
        assert getattr(config, name) == BUDGETS["gpu"][name], name
    assert budget.applied == {k: v for k, v in BUDGETS["gpu"].items() if k != "steps"}
    assert "steps" not in budget.describe()
    assert "batch_size 64" in budget.describe()
    every = MapConfig.for_accelerator(dict(BUDGETS["cpu"]))[1]
    assert not every.applied
    assert "not used" in every.describe()


def test_given_options_reads_flags_and_config_keys(tmp_path: Path) -> None:
    parser = tool_parser("demo", "A demo.")
    parser.add_argument("--patch-size", type=int, default=96, dest="patch_size")
    parser.add_argument("--batch-size", type=int, default=8, dest="batch_size")
    parser.add_argument("--lr", type=float, default=1e-3, dest="lr")
    config = tmp_path / "c.yaml"
    config.write_text("batch_size: 8\n")
    # a value equal to the default is still the user's
    assert given_options(parser, ["--patch_size=96"]) == {"patch_size"}
    assert given_options(parser, ["--config", str(config), "--lr", "0.1"]) == {"batch_size", "lr"}
    assert given_options(parser, []) == set()


def _map_config(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> MapConfig:
    """The MapConfig ``torchgeo-lsr map ARGV`` would run with (the work is not run)."""
    seen: dict[str, Any] = {}

    def fake(region: Any, out: Any, config: MapConfig, progress: Any = None) -> dict[str, Any]:
        seen["config"] = config
        return {}

    monkeypatch.setattr(map_run, "map_region", fake)
    assert main(["map", "--out", "o", *argv]) == 0
    return seen["config"]


def test_cli_fills_the_budget_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake_devices(monkeypatch)
    config = _map_config([], monkeypatch)
    assert config == dataclasses.replace(MapConfig(), **BUDGETS["cpu"])
    err = capsys.readouterr().err
    assert "budget: cpu (--accelerator auto found no GPU): steps 250" in err

    config = _map_config(["--accelerator", "gpu", "--steps", "40"], monkeypatch)
    assert (config.steps, config.batch_size, config.num_filters) == (40, 64, 128)
    line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("budget:")]
    assert len(line) == 1
    assert line[0].startswith("budget: gpu (--accelerator gpu): patch_size 128")

    # keys of a --config file are the user's too; --quiet says nothing
    cfg = tmp_path / "run.yaml"
    cfg.write_text("batch_size: 5\naccelerator: gpu\n")
    config = _map_config(["--config", str(cfg), "--quiet"], monkeypatch)
    assert (config.batch_size, config.steps) == (5, 10000)
    assert "budget" not in capsys.readouterr().err


def test_help_names_the_gpu_budget(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["map", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "On a GPU, when not given: 10000 (the paper's budget)." in text
    assert "default: 250" in text
    assert map_cli.BUDGETS is BUDGETS


def test_map_region_without_config_uses_the_budget(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake(region: Any, out: Any, config: MapConfig, progress: Any) -> dict[str, Any]:
        seen["config"] = config
        return {}

    fake_devices(monkeypatch, cuda=1)
    monkeypatch.setattr(map_run, "_map_region", fake)
    map_run.map_region(None, tmp_path / "out", progress=True)
    assert seen["config"].steps == 10000
    assert "budget: gpu (--accelerator auto found 1 CUDA device)" in capsys.readouterr().err
