"""SIGTERM and SIGINT: stop at a point a rerun resumes from, and exit 143 / 130.

A batch scheduler preempting a job sends SIGTERM; a person presses Ctrl-C (SIGINT).
Inside :func:`graceful_signals` either signal raises :class:`Interrupted`, whose
:attr:`~Interrupted.exit_code` is ``128 + signum``, as a shell reports a process killed
by that signal. While a Lightning training run carries a :class:`ResumeCheckpoint` callback the
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

__all__ = ["Interrupted", "ResumeCheckpoint", "graceful_signals", "raise_if_pending"]


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
        self.installed = False


_STATE = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _STATE.deferring and _STATE.pending is None:
        _STATE.pending = signum  # ResumeCheckpoint saves and raises at the end of this step
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
    _STATE.installed = True
    try:
        yield
    finally:
        _STATE.installed = False
        for s, h in previous.items():
            signal.signal(s, h)
        _STATE.pending = None


def raise_if_pending(saved: Path | None = None) -> None:
    """Raise :class:`Interrupted` for a signal that arrived while it was deferred.

    A signal in the last training step cannot be honoured there (the run is about to end);
    the caller finishes its write and then calls this, so the signal is never lost.
    """
    signum = _STATE.pending
    if signum is not None:
        _STATE.pending = None
        raise Interrupted(signum, saved)


class ResumeCheckpoint(Callback):
    """Saves ``last`` where a rerun resumes exactly: every ``every_n_steps`` and on a signal.

    A checkpoint is only ever written at the end of a training step that is *not* the last
    of its epoch: Lightning restores a checkpoint taken at an epoch's last batch into the
    wrong epoch (the next epoch's data, warm-up and validation shift by one), so a save
    due there moves to the end of the next step. With the loader's state
    (:class:`~torchgeo_lsr.datamodules.ResumableLoader`) every checkpoint this callback
    writes resumes bit for bit. A signal (inside :func:`graceful_signals`) saves and
    raises :class:`Interrupted`; one in the run's last step is left pending for
    :func:`raise_if_pending`.

    Args:
        last: where to save (a temporary name beside it, then renamed); None: the
            ``last.ckpt`` of the trainer's first :class:`ModelCheckpoint` (what
            ``--ckpt_path last`` finds), else ``default_root_dir/checkpoints/last.ckpt``.
        every_n_steps: save every this many optimizer steps; None only on a signal.
    """

    def __init__(self, last: str | Path | None = None, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        self._given = None if last is None else Path(last)
        self.last = self._given or Path("last.ckpt")
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """From here on a signal waits for the end of a step."""
        _STATE.deferring += 1
        self._saved_step = trainer.global_step
        if _STATE.installed and threading.current_thread() is threading.main_thread():
            # Lightning's own SIGTERM handler (installed by fit) would stop the loop at the
            # next batch and return normally (exit 0); ours saves and exits 143. Lightning
            # puts the previous handlers back when fit ends.
            for s in (signal.SIGTERM, signal.SIGINT):
                signal.signal(s, _handler)
        if self._given is None:
            self.last = _last_path(trainer)

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
        """Save when due (or after a signal, then raise), unless this ends an epoch."""
        if idx + 1 >= trainer.num_training_batches:
            return  # an epoch's last batch: not a point Lightning resumes from exactly
        step = trainer.global_step
        if trainer.max_steps > 0 and step >= trainer.max_steps:
            return  # the run ends here; the caller writes its final result
        signum = _STATE.pending
        due = self.every_n_steps is not None and step - self._saved_step >= self.every_n_steps
        if signum is None and not due:
            return
        self._save(trainer)
        signum = signum if signum is not None else _STATE.pending  # one during the save
        if signum is not None:
            _STATE.pending = None
            raise Interrupted(signum, self.last)

    def _save(self, trainer: Trainer) -> None:
        from .outputs import publish

        self.last.parent.mkdir(parents=True, exist_ok=True)
        partial = self.last.with_name(f".{self.last.name}.partial")  # the --out is locked
        trainer.save_checkpoint(partial)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            publish(partial, self.last, _loads)
        trainer.strategy.barrier()
        self._saved_step = trainer.global_step


def _last_path(trainer: Trainer) -> Path:
    """Where ``--ckpt_path last`` looks first: the first ModelCheckpoint's ``last.ckpt``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            name = callback.CHECKPOINT_NAME_LAST + callback.FILE_EXTENSION
            return Path(callback.dirpath) / name
    return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"


def _loads(path: Path) -> None:
    from .checkpoints import read_checkpoint
    from .outputs import WriteError

    try:
        read_checkpoint(path, "checkpoint")
    except ValueError as err:
        raise WriteError(f"{path}: unreadable after writing ({err})") from None
