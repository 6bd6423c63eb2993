"""SIGTERM and SIGINT: stop at a point a rerun resumes from, and exit 143 / 130.

A batch scheduler preempting a job sends SIGTERM; a person presses Ctrl-C (SIGINT).
Inside :func:`graceful_signals` either signal raises :class:`Interrupted`, whose
:attr:`~Interrupted.exit_code` is ``128 + signum``, as a shell reports a process killed
by that signal. While a Lightning training run carries a :class:`StopAtStep` callback the
exception is deferred to the end of the current training step, where the callback first
saves the run's ``last.ckpt`` (which resumes exactly, see
:class:`~torchgeo_lsr.datamodules.ResumableLoader`); elsewhere (building priors,
predicting, writing) it is raised at once, and the atomic writers
(:mod:`torchgeo_lsr.outputs`) leave nothing half-written. A second signal while a save
is pending stops at once.

.. versionadded:: 0.2
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

__all__ = ["Interrupted", "StopAtStep", "graceful_signals"]


class Interrupted(BaseException):
    """The run was stopped by a signal.

    Attributes:
        signum: the signal.
        checkpoint: the checkpoint saved before stopping, if any.
    """

    def __init__(self, signum: int, checkpoint: Path | None = None) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        where = f"; saved {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by {name}{where}")

    @property
    def exit_code(self) -> int:
        """``128 + signum`` (143 for SIGTERM, 130 for SIGINT)."""
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.pending: int | None = None
        self.deferring = 0


_STATE = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _STATE.deferring and _STATE.pending is None:
        _STATE.pending = signum  # StopAtStep saves and raises at the end of this step
        return
    raise Interrupted(signum)


@contextmanager
def graceful_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Interrupted` while the block runs.

    Does nothing outside the main thread (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    _STATE.pending = None
    for s in previous:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _STATE.pending = None


class StopAtStep(Callback):
    """Defers a signal to the end of the training step, saves ``last``, then stops.

    Args:
        last: where to save the checkpoint; None to save nothing (just stop).
    """

    def __init__(self, last: str | Path | None) -> None:
        self.last = None if last is None else Path(last)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """From here on a signal waits for the end of the step."""
        _STATE.deferring += 1

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Signals stop at once again."""
        _STATE.deferring = max(0, _STATE.deferring - 1)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """Signals stop at once again."""
        _STATE.deferring = max(0, _STATE.deferring - 1)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        """After a signal: save ``last`` and raise :class:`Interrupted`."""
        signum = _STATE.pending
        if signum is None:
            return
        _STATE.pending = None
        saved = None
        if self.last is not None:
            trainer.save_checkpoint(self.last)
            saved = self.last
        raise Interrupted(signum, saved)
