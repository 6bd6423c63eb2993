"""Killed anywhere, rerun: the same bytes as a run that was never interrupted.

Each command is killed with SIGKILL (nothing runs after it: no handler, no clean-up) at
five or more points spread over its stages, every rerun resuming the previous one's
leftovers, and the end result is compared bit for bit with an uninterrupted run.
Deterministic kill points come from ``killer.py``: the n-th published file of ``prior``
and ``map``, an exact optimizer step of ``fit``.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from reliability_helpers import assert_same_files, killed_target, our_lines, run_cli

from torchgeo_lsr.sample_city import make_sample_city

pytestmark = pytest.mark.filterwarnings("ignore")


def _chain(args: list[str], kill_at: list[int], attempts: int) -> list[str]:
    """Rerun ``args`` until one run finishes; run i is killed at its ``kill_at[i]``-th publish.

    Past the list, each run is killed one publish later than the previous, so progress
    is certain where a rerun redoes work (a network killed between its final checkpoint
    and the key beside it is trained again from last.ckpt).
    """
    targets: list[str] = []
    points = list(kill_at)
    for i in range(attempts):
        n = points[i] if i < len(points) else points[-1] + i - len(points) + 1
        result = run_cli(*args, kill_at_publish=n)
        if result.returncode == 0:
            return targets
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
        target = killed_target(result)
        assert target is not None
        targets.append(target)
    raise AssertionError(f"still not finished after {attempts} killed runs: {targets}")


def _summary(out: Path) -> dict[str, object]:
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("out")
    summary.pop("timings_s")
    return summary


def test_map_killed_at_every_stage_resumes_bit_for_bit(
    city: Path, map_config: Path, tmp_path: Path
) -> None:
    ref, out = tmp_path / "ref", tmp_path / "killed"
    common = ["--config", str(map_config), "--no-progress"]
    assert run_cli("map", city, "--out", ref, *common).returncode == 0
    targets = _chain(
        ["map", str(city), "--out", str(out), *common], kill_at=[2, 3, 3, 3, 4], attempts=20
    )
    names = [t.split("/killed/")[-1] for t in targets]
    stages = {
        "prior": any(n.startswith("prior") for n in names),
        "training": "checkpoints/last.ckpt" in names,
        "model": any(n.startswith("checkpoints/final") for n in names),
        "maps": any(n.startswith(("q/", "r/")) for n in names),
    }
    assert len(targets) >= 5, targets
    assert all(stages.values()), (stages, [t.split("/killed/")[-1] for t in targets])
    assert_same_files(out, ref)
    assert _summary(out) == _summary(ref)
    assert not list(out.rglob("*.partial"))


def test_prior_killed_after_each_tile_resumes_bit_for_bit(tmp_path: Path) -> None:
    region = tmp_path / "city"
    make_sample_city(region, seed=1, tiles=5, size=64, progress=False)
    ref, out = tmp_path / "ref", tmp_path / "killed"
    assert run_cli("prior", region, "--out", ref, "--no-progress").returncode == 0
    targets = _chain(
        ["prior", str(region), "--out", str(out), "--no-progress"], [1, 2, 2, 2, 2], 10
    )
    assert len(set(targets)) == 5  # killed before each of the five tiles
    assert_same_files(out, ref)
    assert not list(out.rglob("*.partial"))


# ----------------------------------------------------------------------------- fit
def _fit_config(tmp_path: Path, kill: dict[str, object] | None) -> Path:
    tiny = Path(__file__).parents[1] / "data" / "tiny"
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "tiny.yaml").read_text())
    config["trainer"].update(max_epochs=4, enable_checkpointing=True, deterministic=True)
    checkpoint = {
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"save_last": True, "every_n_epochs": 1},
    }
    callbacks = [checkpoint]
    if kill is not None:
        callbacks.insert(0, {"class_path": "killer.KillAtStep", "init_args": kill})
    config["trainer"]["callbacks"] = callbacks
    data = config["data"]["init_args"]
    data.update(train_length=64, seed=0)  # 16 steps per epoch
    for key in ("images", "priors", "labels"):
        data[key] = str(tiny / Path(data[key]).name)
    name = "fit" if kill is None else f"kill-{kill['step']}-{kill.get('signal', 'KILL')}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _fit(config: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "fit", "--config", config, "--trainer.default_root_dir", root, "--ckpt_path", "last"
    )


def _weights(root: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(
        root / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )["state_dict"]
    return state


@pytest.fixture(scope="module")
def fit_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    tmp = tmp_path_factory.mktemp("fit_ref")
    result = _fit(_fit_config(tmp, None), tmp / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    FIT_RUNS["reference"] = tmp / "run"
    return _weights(tmp / "run")


FIT_RUNS: dict[str, Path] = {}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_killed_at_five_steps_resumes_bit_for_bit(
    fit_reference: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    root = tmp_path / "run"
    # mid-epoch 0 (nothing saved yet), an epoch's last step, the first step after an
    # epoch's checkpoint, mid-epoch, and just before the end
    for step in (5, 16, 17, 40, 63):
        result = _fit(_fit_config(tmp_path, {"step": step}), root)
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert _fit(_fit_config(tmp_path, None), root).returncode == 0
    _assert_same(_weights(root), fit_reference)
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [
        "epoch=3-step=64.ckpt",
        "last.ckpt",
    ]  # no -v1 copies


@pytest.mark.parametrize(("signum", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_fit_signal_saves_exits_and_resumes(
    fit_reference: dict[str, torch.Tensor], tmp_path: Path, signum: str, code: int
) -> None:
    root = tmp_path / "run"
    result = _fit(_fit_config(tmp_path, {"step": 21, "signal": signum}), root)
    assert result.returncode == code
    assert our_lines(result.stderr) == [
        f"torchgeo-lsr fit: stopped by {signum}; saved {root / 'checkpoints' / 'last.ckpt'} "
        "(rerun with --ckpt_path last to resume)"
    ]
    assert _fit(_fit_config(tmp_path, None), root).returncode == 0
    _assert_same(_weights(root), fit_reference)


def test_fit_refuses_a_checkpoint_of_another_network_shape(
    fit_reference: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    ckpt = FIT_RUNS["reference"] / "checkpoints" / "last.ckpt"  # a 4-class network
    root = tmp_path / "run"
    labels = "[a, b, c, d, e]"
    result = run_cli(
        "fit",
        "--config",
        _fit_config(tmp_path, None),
        "--trainer.default_root_dir",
        root,
        "--model.init_args.num_classes",
        "5",
        "--model.init_args.labels",
        labels,
        "--ckpt_path",
        ckpt,
    )
    assert result.returncode == 2
    assert our_lines(result.stderr) == [
        f"torchgeo-lsr fit: --ckpt_path {ckpt}: its network has num_classes=4 (config: 5); "
        "resume it with its own settings, or start from its weights with "
        "model.init_args.init_checkpoint"
    ]
    assert not root.exists()
