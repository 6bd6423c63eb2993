"""``map`` without a terminal: stderr holds our lines only, resumed runs say what they reused.

Runs ``python -m torchgeo_lsr map`` on a two-tile sample city as a subprocess (stdin and
stderr not terminals), with the smallest settings that still go through every stage:
prior, training, prediction, outputs (VRTs, quicklook, scores).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from torchgeo_lsr.sample_city import make_sample_city

ROOT = Path(__file__).parents[1]
TINY = ["--steps", "4", "--batch-size", "4", "--patch-size", "64", "--num-filters", "4"]
TINY += ["--num-layers", "2", "--window", "96", "--accelerator", "cpu"]

STAGE = r"(sample city|prior|learned prior|training|prediction|maps|outputs)"
COUNT = r"\d+/\d+ \w+"
RATE = r"[\d.]+ \w+/(s|min|h)"
OURS = [
    # a progress line: done/total (percent), rate, metrics, ETA
    rf"{STAGE}: {COUNT} \(\d+%\)(, {RATE})?(, \w+ [-\d.e+]+)*(, ETA [\d:]+)?",
    # a stage's last line: done/total in time, rate, metrics (reused)
    rf"{STAGE}: {COUNT} in [\d:]+(, {RATE})?(, \w+ [-\d.e+]+)*( \(\d+ [\w ,]+\))?",
    # work found done
    rf"{STAGE}: {COUNT} (reused|done before, resuming)( \([\w.]+\))?",
    r"outputs: [\w.,;_ ]+",
    # the training budget the accelerator set (map without every budget option given)
    r"budget: (cpu|gpu) \(--accelerator [^)]+\)( not used)?: .+",
    # the command's summary
    r"map of .+ in .+: .+",
    r"  \w+ +accuracy [\d.]+  mIoU [\d.]+",
]


def run_map(city: Path, out: Path, *extra: str, verbosity: int | None = None) -> tuple[str, str]:
    """Run ``map`` as a subprocess without a terminal; returns (stdout, stderr)."""
    flag = {None: [], 0: ["--quiet"], 1: [], 2: ["--verbose"]}[verbosity]
    argv = ["map", str(city), "--out", str(out), *TINY, *extra, *flag]
    command = [sys.executable, "-m", "torchgeo_lsr", *argv]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=out.parent,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def foreign(stderr: str) -> list[str]:
    """The stderr lines that are not ours."""
    return [line for line in stderr.splitlines() if not any(re.fullmatch(p, line) for p in OURS)]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("quiet") / "region"
    make_sample_city(root, seed=0, tiles=2, size=160, progress=False)
    return root


@pytest.fixture(scope="module")
def first_run(city: Path) -> tuple[Path, str, str]:
    out = city.parent / "map"
    stdout, stderr = run_map(city, out)
    return out, stdout, stderr


def test_stderr_holds_only_our_lines(first_run: tuple[Path, str, str]) -> None:
    _, stdout, stderr = first_run
    assert foreign(stderr) == []
    for noise in ("Tip", "Warning", "warn", "GPU available", "TPU available", "Seed set"):
        assert noise not in stderr
    # every stage reported, with done/total
    for stage in ("prior: 2/2 tiles", "training: 4/4 steps", "prediction: 2/2 tiles"):
        assert stage in stderr
    assert "maps: 2/2 tiles" in stderr
    assert "outputs: q.vrt, r.vrt, quicklook.png" in stderr
    assert "accuracy" in stdout


def test_resumed_run_says_reused_and_shows_no_empty_bar(
    city: Path, first_run: tuple[Path, str, str]
) -> None:
    out = first_run[0]
    _, stderr = run_map(city, out)
    assert foreign(stderr) == []
    assert "prior: 2/2 tiles reused" in stderr
    assert "training: 4/4 steps reused (final.ckpt)" in stderr
    assert "maps: 2/2 tiles reused" in stderr
    bars = "\n".join(x for x in stderr.splitlines() if not x.startswith("budget: "))
    assert not re.search(r"\b0/\d|0\.00|px|\|", bars), stderr  # no empty bar, no bar


def test_quiet_writes_nothing_on_stderr(city: Path, first_run: tuple[Path, str, str]) -> None:
    stdout, stderr = run_map(city, first_run[0], verbosity=0)
    assert stderr == ""
    assert "accuracy" in stdout  # the result is still said


def test_verbose_lets_the_libraries_speak(city: Path, first_run: tuple[Path, str, str]) -> None:
    """What the filters hide is there: at verbosity 2 Lightning's lines come through."""
    _, stderr = run_map(city, first_run[0], verbosity=2)
    assert "GPU available" in stderr
    assert "prior: 2/2 tiles reused" in stderr
