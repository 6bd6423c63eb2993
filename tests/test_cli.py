"""Tests for the command-line interface, ours and TorchGeo's, on the same configs."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from torchgeo.main import main as torchgeo_main

from torchgeo_lsr.cli import lightning_main, main
from torchgeo_lsr.trainers import LabelSuperResolutionTask

ROOT = Path(__file__).parents[1]
TINY = "configs/tiny.yaml"
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # configs name paths relative to the repository
    monkeypatch.setattr(sys, "argv", ["torchgeo-lsr"])  # not pytest's own arguments


def logged_metrics(log_dir: Path) -> dict[str, float]:
    """Last value of each metric in a CSVLogger's metrics.csv."""
    (path,) = log_dir.rglob("metrics.csv")
    values: dict[str, float] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            values |= {k: float(v) for k, v in row.items() if v not in ("", None)}
    return values


def short_run_args(tmp_path: Path) -> list[str]:
    return [
        "fit",
        "--config",
        TINY,
        "--trainer.max_steps",
        "2",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(tmp_path),
    ]


@pytest.mark.parametrize("entry", [lightning_main, torchgeo_main], ids=["torchgeo-lsr", "torchgeo"])
def test_fit_from_config_logs_our_metrics(
    entry: Callable[[list[str]], object], tmp_path: Path
) -> None:
    entry(short_run_args(tmp_path))
    metrics = logged_metrics(tmp_path)
    for name in ("train_loss", "val_loss", "val_acc_q", "val_miou_q", "val_acc_r", "val_miou_r"):
        assert name in metrics, name
        assert math.isfinite(metrics[name]), name
    assert 0 <= metrics["val_acc_q"] <= 1
    assert 0 <= metrics["val_miou_r"] <= 1


def fast(tmp_path: Path) -> list[str]:
    """Arguments of a one-batch run that writes nothing into the repository."""
    return ["--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]


def test_fast_dev_run(tmp_path: Path) -> None:
    cli = lightning_main(["fit", "--config", TINY, *fast(tmp_path)])
    assert isinstance(cli.model, LabelSuperResolutionTask)
    assert cli.trainer.state.finished
    assert cli.model.hparams["loss"] == "qr"


def test_bf16_mixed_precision(tmp_path: Path) -> None:
    """Autocast runs the network in bf16; the losses still see float32 probabilities."""
    cli = lightning_main(
        ["fit", "--config", TINY, "--trainer.precision", "bf16-mixed", *fast(tmp_path)]
    )
    assert cli.trainer.state.finished
    assert math.isfinite(float(cli.trainer.callback_metrics["train_loss"]))


def test_fast_dev_run_under_torchgeo(tmp_path: Path) -> None:
    torchgeo_main(["fit", "--config", TINY, *fast(tmp_path)])


GEO = "configs/torchgeo_geodatamodule.yaml"


def test_plain_torchgeo_geodatamodule(tmp_path: Path) -> None:
    """The task trains from TorchGeo's own GeoDataModule over LSRLayers (its samplers)."""
    from torchgeo.datamodules import GeoDataModule

    from torchgeo_lsr.datasets import LSRLayers

    cli = lightning_main(["fit", "--config", GEO, *fast(tmp_path)])
    assert type(cli.datamodule) is GeoDataModule
    assert isinstance(cli.datamodule.train_dataset, LSRLayers)
    assert cli.trainer.state.finished
    metrics = cli.trainer.callback_metrics
    for name in ("train_loss", "val_loss", "val_miou_q", "val_miou_r"):
        assert math.isfinite(float(metrics[name])), name


def test_plain_geodatamodule_under_torchgeo(tmp_path: Path) -> None:
    torchgeo_main(["fit", "--config", GEO, *fast(tmp_path)])


def test_override_configs_merge(tmp_path: Path) -> None:
    cli = lightning_main(
        [
            "fit",
            "--config",
            TINY,
            "--config",
            "configs/paper/rq.yaml",
            "--config",
            "configs/paper/warmup.yaml",
            *fast(tmp_path),
        ]
    )
    assert cli.model.hparams["loss"] == "rq"
    assert cli.model.hparams["warmup_epochs"] == 2
    assert cli.model.hparams["num_filters"] == 8  # from the base config


def test_em_warmup_override(tmp_path: Path) -> None:
    cli = lightning_main(
        ["fit", "--config", TINY, "--config", "configs/em_warmup.yaml", *fast(tmp_path)]
    )
    assert cli.model.hparams["loss"] == "qr"  # from the base config
    assert cli.model.hparams["warmup_loss"] == "em"
    assert cli.model.hparams["warmup_epochs"] == 5
    assert cli.model.hparams["lr_schedule"] == "cosine"
    assert type(cli.model.warmup_criterion).__name__ == "EMLoss"


def test_unknown_config_key_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        lightning_main(["fit", "--config", TINY, "--model.init_args.lossx", "rq"])
    assert info.value.code != 0
    assert "lossx" in capsys.readouterr().err


@pytest.mark.parametrize("config", ["configs/paper/landcover.yaml"])
def test_paper_config_parses(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        lightning_main(["fit", "--config", config, "--print_config"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert "torch.optim.Adam" in out
    assert "num_filters: 128" in out


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for sub in ("fit", "validate", "test", "predict"):
        assert f"  {sub} " in out


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown subcommand 'frobnicate'" in capsys.readouterr().err


def test_console_script_and_module() -> None:
    script = BIN / "torchgeo-lsr"
    if not script.exists():
        pytest.skip("package not installed (no console script)")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("torchgeo-lsr ")
    out = subprocess.run(
        [sys.executable, "-m", "torchgeo_lsr", "--help"], capture_output=True, text=True, check=True
    )
    assert "fit " in out.stdout
