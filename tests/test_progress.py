"""Tests for torchgeo_lsr.progress: verbosity, progress lines and bars, library noise."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchgeo_lsr import progress as P
from torchgeo_lsr.progress import (
    NORMAL,
    QUIET,
    VERBOSE,
    Progress,
    get_verbosity,
    lightning_progress,
    progress_mode,
    quiet_libraries,
    report,
    set_verbosity,
    verbosity,
)

#: A progress line of a stage, as the lines mode writes it.
LINE = re.compile(
    r"^[a-z ]+: \d+/\d+ \w+ \(\d+%\)(, [\d.]+ \w+/(s|min|h))?(, \w+ [-\d.e+]+)*"
    r"(, ETA \d+:\d\d(:\d\d)?)?$"
)


class Clock:
    """A fake monotonic clock: ``clock.t += 5`` moves it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# ------------------------------------------------------------------ verbosity
def test_verbosity_levels_and_context() -> None:
    assert get_verbosity() == NORMAL
    with verbosity(QUIET):
        assert get_verbosity() == QUIET
        with verbosity(VERBOSE):
            assert get_verbosity() == VERBOSE
        assert get_verbosity() == QUIET
    assert get_verbosity() == NORMAL
    for bad in (3, -1, True, "quiet"):
        with pytest.raises(ValueError, match="verbosity must be 0"):
            set_verbosity(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="line interval"):
        P.set_line_interval(-1)


def test_mode_from_progress_verbosity_and_terminal() -> None:
    log, tty = io.StringIO(), Terminal()
    assert progress_mode(None, log) == "lines"
    assert progress_mode(None, tty) == "bar"
    assert progress_mode(False, tty) == "off"
    with verbosity(QUIET):
        assert progress_mode(None, tty) == "off"
        assert progress_mode(True, log) == "lines"  # an explicit True wins
    with verbosity(VERBOSE):
        assert progress_mode(None, log) == "lines"


def test_quiet_writes_nothing() -> None:
    out = io.StringIO()
    with verbosity(QUIET):
        with Progress("prior", 3, stream=out, reused=1, interval=0) as bar:
            bar.update(2)
        report("outputs", "q.vrt", stream=out)
    with Progress("prior", 3, stream=out, progress=False, interval=0) as bar:
        bar.update(3)
    assert out.getvalue() == ""


# ------------------------------------------------------------------ lines
def test_lines_are_rate_limited_and_the_last_one_is_written() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress("training", 600, "steps", stream=out, clock=clock, interval=10) as bar:
        for step in range(1, 601):
            clock.t += 0.2  # 5 steps/s: 120 s in all
            bar.update_to(step, loss=0.41)
    written = lines(out)
    # one line per 10 s of the 120 s (the one at 600/600 is the last line instead)
    assert len(written) == 12
    assert written[0] == "training: 50/600 steps (8%), 5 steps/s, loss 0.41, ETA 1:50"
    assert all(LINE.match(line) for line in written[:-1]), written
    assert written[-1] == "training: 600/600 steps in 2:00, 5 steps/s, loss 0.41"


def test_no_line_between_intervals_and_interval_default() -> None:
    clock, out = Clock(), io.StringIO()
    P.set_line_interval(30)
    try:
        bar = Progress("prior", 8, stream=out, clock=clock)
        assert bar.interval == 30
        for _ in range(7):
            clock.t += 4  # 28 s: under the interval
            bar.update()
        assert out.getvalue() == ""
        clock.t += 4
        bar.update()
        bar.close()
    finally:
        P.set_line_interval(P.DEFAULT_LINE_INTERVAL)
    assert lines(out) == ["prior: 8/8 tiles in 0:32, 15 tiles/min"]


def test_rate_and_eta_follow_the_recent_work() -> None:
    """A slow start (a loader finding its place) weighs on the ETA only at first."""
    clock, out = Clock(), io.StringIO()
    bar = Progress("training", 3000, "steps", stream=out, clock=clock, interval=60)
    clock.t += 100  # nothing for 100 s, then 10 steps/s
    for step in range(1, 2001):
        clock.t += 0.1
        bar.update_to(step)
    rates = [float(m) for m in re.findall(r", ([\d.]+) steps/s", out.getvalue())]
    etas = re.findall(r"ETA (\d+):(\d\d)", out.getvalue())
    assert len(rates) == 3  # (and a first line at 0.6 steps/min)
    assert rates[0] < 5  # the stall still in the window: a pessimistic ETA
    assert rates[-1] == 10  # past the window: the pace of the work
    minutes, seconds = map(int, etas[-1])
    assert abs(60 * minutes + seconds - 120) <= 1  # ~1,200 steps left at 10 steps/s
    bar.close()
    assert re.search(r"in 5:00, 6\.67 steps/s$", lines(out)[-1]), lines(out)[-1]  # the stage's mean


def test_fractions_of_a_unit_count_whole_units() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress("prior", 2, stream=out, clock=clock, interval=0) as bar:
        for _ in range(3):
            clock.t += 1
            bar.update(0.25)  # windows of a tile
    assert lines(out) == [
        "prior: 0/2 tiles (12%), 15 tiles/min, ETA 0:07",
        "prior: 0/2 tiles (25%), 15 tiles/min, ETA 0:06",
        "prior: 0/2 tiles (37%), 15 tiles/min, ETA 0:05",
        "prior: 0/2 tiles in 0:03, 15 tiles/min",
    ]


def test_reused_work_is_said_never_an_empty_bar() -> None:
    for stream in (io.StringIO(), Terminal()):
        with Progress("prior", 8, "tiles", reused=8, stream=stream):
            pass
        assert stream.getvalue() == "prior: 8/8 tiles reused\n"
    # found done one by one (the maps of a resumed run)
    for stream in (io.StringIO(), Terminal()):
        with Progress("maps", 2, stream=stream) as bar:
            bar.skip()
            bar.skip()
        assert stream.getvalue() == "maps: 2/2 tiles reused\n"


def test_partly_reused_counts_only_new_work_in_the_rate() -> None:
    clock, out = Clock(), io.StringIO()
    with Progress("prior", 8, reused=3, stream=out, clock=clock, interval=10) as bar:
        bar.skip()
        for _ in range(4):
            clock.t += 5
            bar.update()
    assert lines(out) == [
        "prior: 3/8 tiles reused",
        "prior: 6/8 tiles (75%), 12 tiles/min, ETA 0:10",
        "prior: 8/8 tiles in 0:20, 12 tiles/min (4 reused)",
    ]


def test_stopped_stage_says_where() -> None:
    clock, out = Clock(), io.StringIO()

    def interrupted() -> None:
        with Progress("prior", 8, stream=out, clock=clock) as bar:
            clock.t += 65
            bar.update()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert lines(out)[-1] == "prior: stopped at 1/8 tiles after 1:05"


def test_bar_on_a_terminal_shows_done_total_and_eta() -> None:
    tty = Terminal()
    with Progress("prior", 4, "tiles", reused=1, stream=tty) as bar:
        for _ in range(3):
            bar.update(item="m_0001")
    screen = tty.getvalue().replace("\r", "\n")
    assert screen.startswith("prior: 1/4 tiles reused\n")
    assert re.search(r"prior: 100%\|.*\| 4/4 tiles \[\d\d:\d\d<\d\d:\d\d, .*m_0001\]", screen)
    assert "0.00" not in screen


# ------------------------------------------------------------------ Lightning
class Tiny:
    """A two-parameter regression as a LightningModule (built lazily: Lightning is heavy)."""

    @staticmethod
    def module() -> Any:
        from lightning.pytorch import LightningModule

        class Module(LightningModule):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.net = nn.Linear(1, 1)

            def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
                x, y = batch
                return nn.functional.mse_loss(self.net(x), y)

            def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
                return self.net(batch[0])

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=0.1)

        return Module()

    @staticmethod
    def loader(n: int = 8) -> DataLoader[Any]:
        x = torch.linspace(0, 1, n)[:, None]
        return DataLoader(TensorDataset(x, 2 * x), batch_size=2)


def fit(out: io.StringIO, clock: Clock, steps: int, root: Path, ckpt: Path | None = None) -> Any:
    from lightning.pytorch import Trainer

    def tick() -> float:
        clock.t += 1
        return clock.t

    bars = lightning_progress("training", None, stream=out, clock=tick, interval=0)
    with quiet_libraries():
        trainer = Trainer(
            max_steps=steps,
            callbacks=bars,
            enable_progress_bar=bool(bars),
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            accelerator="cpu",
            default_root_dir=root,
        )
        trainer.fit(Tiny.module(), Tiny.loader(), ckpt_path=str(ckpt) if ckpt else None)
    return trainer


def test_training_counts_steps_of_the_whole_run(tmp_path: Path) -> None:
    clock, out = Clock(), io.StringIO()
    trainer = fit(out, clock, 8, tmp_path)  # 4 batches an epoch: 2 epochs
    written = lines(out)
    assert written[0].startswith("training: 1/8 steps (12%), ")
    assert written[4].startswith("training: 5/8 steps (62%), ")  # across an epoch's end
    assert all(LINE.match(line) for line in written[:-1]), written
    assert re.match(r"training: 8/8 steps in 0:\d\d, [\d.]+ steps/\w+, loss [\d.]+$", written[-1])
    # resumed: the restored steps are said, and counted in done/total
    ckpt = tmp_path / "half.ckpt"
    trainer.save_checkpoint(ckpt)
    out = io.StringIO()
    fit(out, clock, 12, tmp_path, ckpt)
    written = lines(out)
    assert written[0] == "training: 8/12 steps done before, resuming"
    assert written[1].startswith("training: 9/12 steps (75%), ")
    assert written[-1].startswith("training: 12/12 steps in ")
    assert written[-1].endswith("(8 done before, resuming)")


def test_prediction_counts_batches_and_reused(tmp_path: Path) -> None:
    from lightning.pytorch import Trainer

    out = io.StringIO()
    bars = lightning_progress("prediction", None, unit="tiles", reused=2, stream=out, interval=0)
    with quiet_libraries():
        trainer = Trainer(
            callbacks=bars,
            enable_progress_bar=True,
            logger=False,
            enable_model_summary=False,
            accelerator="cpu",
            default_root_dir=tmp_path,
        )
        trainer.predict(Tiny.module(), Tiny.loader(), return_predictions=False)
    written = lines(out)
    assert written[0] == "prediction: 2/6 tiles reused"
    assert written[-1].startswith("prediction: 6/6 tiles in ")
    assert written[-1].endswith("(2 reused)")


def test_callback_off_is_no_callback() -> None:
    assert lightning_progress("training", False) == []
    with verbosity(QUIET):
        assert lightning_progress("training", None) == []


# ------------------------------------------------------------------ library noise
def _pytree() -> None:
    from lightning.pytorch.utilities import _pytree

    _pytree._tree_flatten(1)


def _workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.trainer.connectors import data_connector

    monkeypatch.setattr(data_connector, "suggested_max_num_workers", lambda devices: 4)
    data_connector._worker_check(SimpleNamespace(num_devices=1), Tiny.loader(), "train_dataloader")


def _gpu_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.accelerators import CPUAccelerator
    from lightning.pytorch.trainer import setup

    monkeypatch.setattr(setup.CUDAAccelerator, "is_available", staticmethod(lambda: True))
    setup._log_device_info(SimpleNamespace(accelerator=CPUAccelerator(), num_devices=1))


def _srun(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.fabric.plugins.environments import slurm

    monkeypatch.setattr(slurm.shutil, "which", lambda name: "/usr/bin/srun")
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    slurm.SLURMEnvironment._validate_srun_used()


def _default_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch import Trainer
    from lightning.pytorch.trainer.connectors.logger_connector import logger_connector

    logger_connector.warning_cache.clear()  # it says each message once per process
    with tempfile.TemporaryDirectory() as root:
        Trainer(logger=True, accelerator="cpu", enable_progress_bar=False, default_root_dir=root)


SOURCES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "treespec": lambda mp: _pytree(),
    "many workers": _workers,
    "GPU available but not used": _gpu_not_used,
    "srun": _srun,
    "tensorboardX": _default_logger,
}


@pytest.mark.parametrize("what", sorted(SOURCES))
def test_known_warnings_are_filtered_where_they_are_made(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each filter of LIBRARY_WARNINGS catches the real warning from its real source."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        SOURCES[what](monkeypatch)
    if not any(what in str(w.message) for w in seen):
        pytest.skip(f"this Lightning/torch does not warn {what!r} here")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_libraries():
            SOURCES[what](monkeypatch)
            warnings.warn("our own warning", UserWarning, stacklevel=1)
        with verbosity(VERBOSE), quiet_libraries():
            SOURCES[what](monkeypatch)
    messages = [str(w.message) for w in seen]
    assert messages[0] == "our own warning"  # other warnings still show
    assert len(messages) >= 2
    assert what in messages[1]  # and at verbose, the filtered one does too


def test_lightning_info_lines_hidden_below_verbose() -> None:
    import lightning.pytorch  # noqa: F401

    info = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    seed = logging.getLogger("lightning.fabric.utilities.seed")
    before = [logging.getLogger(n).level for n in P.LIBRARY_LOGGERS]
    assert info.isEnabledFor(logging.INFO)
    with quiet_libraries():
        assert not info.isEnabledFor(logging.INFO)
        assert not seed.isEnabledFor(logging.INFO)
        assert info.isEnabledFor(logging.WARNING)
    with verbosity(VERBOSE), quiet_libraries():
        assert info.isEnabledFor(logging.INFO)
    assert [logging.getLogger(n).level for n in P.LIBRARY_LOGGERS] == before


def test_importing_progress_does_not_import_lightning() -> None:
    code = "import sys, torchgeo_lsr.progress; print('lightning' in sys.modules)"
    env = os.environ | {"PYTHONPATH": str(Path(P.__file__).parents[1])}
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert found.strip() == "False"


# ------------------------------------------------------------------ the stages
def test_sample_city_and_prior_report_done_total_and_reuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors
    from torchgeo_lsr.sample_city import make_sample_city

    city = make_sample_city(tmp_path / "city", tiles=2, size=64, progress=True)
    assert re.fullmatch(r"sample city: 7/7 steps in 0:\d\d, .*\n", capsys.readouterr().err)
    config = PriorConfig(window=32, sigma=4)
    build_region_priors(city.root, tmp_path / "prior", config, progress=None)
    assert re.fullmatch(r"prior: 2/2 tiles in 0:\d\d, .*\n", capsys.readouterr().err)
    build_region_priors(city.root, tmp_path / "prior", config, progress=None)
    assert capsys.readouterr().err == "prior: 2/2 tiles reused\n"
    with verbosity(QUIET):
        build_region_priors(city.root, tmp_path / "prior", config)
    assert capsys.readouterr().err == ""
