"""What every stage tells the user while it runs: progress, verbosity, library noise.

One convention for every stage (the prior, training, prediction, the outputs of ``map``,
the learned prior, the sample city):

* **Verbosity** (:func:`set_verbosity`): :data:`QUIET` shows nothing, :data:`NORMAL`
  (the default) shows our progress, :data:`VERBOSE` also lets the libraries' own
  messages through (Lightning's device lines and tips, known deprecation warnings).
* **Counted work** (:class:`Progress`): on a terminal a tqdm bar with done/total and an
  ETA; without one, plain lines on stderr such as
  ``prior: 3/8 tiles (37%), 1.2 tiles/s, ETA 0:04``, at most one every
  :func:`get_line_interval` seconds, and a last line when the stage ends. Work found done
  (a resumed run) is said so, ``prior: 8/8 tiles reused``, never shown as an empty bar.
* **Lightning** (:func:`lightning_progress`): the same for ``Trainer.fit`` (steps done of
  the whole run, not of an "epoch") and ``Trainer.predict``.
* **Library noise** (:func:`quiet_libraries`): Lightning's info lines and a few known
  warnings, filtered where they are made (logger levels, ``warnings`` filters by message,
  category and module), below :data:`VERBOSE`.

Every function that takes ``progress: bool | None`` means: False shows nothing, True shows
progress (whatever the verbosity), None decides from the verbosity (nothing at
:data:`QUIET`).

A floor-1 room: it imports nothing from the package, and Lightning only inside
:func:`lightning_progress` and :func:`quiet_libraries`, so the datasets and priors can use
it without importing Lightning.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress("prior", 8, "tiles", reused=8, stream=out):
    ...     pass
    >>> print(out.getvalue().strip())
    prior: 8/8 tiles reused

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal

from tqdm.std import tqdm

__all__ = [
    "DEFAULT_LINE_INTERVAL",
    "LIBRARY_LOGGERS",
    "LIBRARY_WARNINGS",
    "NORMAL",
    "QUIET",
    "RATE_WINDOW",
    "VERBOSE",
    "Progress",
    "ProgressMode",
    "get_line_interval",
    "get_verbosity",
    "lightning_progress",
    "progress_mode",
    "quiet_libraries",
    "report",
    "set_line_interval",
    "set_verbosity",
    "verbosity",
]

#: Nothing on stderr (errors aside).
QUIET = 0
#: Our progress and stage lines (the default).
NORMAL = 1
#: Also the libraries' own messages (Lightning's info lines, known warnings).
VERBOSE = 2

#: Seconds between two progress lines without a terminal.
DEFAULT_LINE_INTERVAL = 15.0

#: Rates and ETAs count the work of the last this many seconds (a stage's start-up, or a
#: resumed loader finding its place, weighs on them only at first).
RATE_WINDOW = 120.0

_state: dict[str, Any] = {"verbosity": NORMAL, "interval": DEFAULT_LINE_INTERVAL}

#: How progress is shown: not at all, a tqdm bar (a terminal), plain lines (a log).
ProgressMode = Literal["off", "bar", "lines"]


def set_verbosity(level: int) -> None:
    """Set the verbosity of every stage: :data:`QUIET`, :data:`NORMAL` or :data:`VERBOSE`."""
    if isinstance(level, bool) or level not in (QUIET, NORMAL, VERBOSE):
        raise ValueError(f"verbosity must be 0 (quiet), 1 (normal) or 2 (verbose), got {level!r}")
    _state["verbosity"] = level


def get_verbosity() -> int:
    """The verbosity set by :func:`set_verbosity` (default :data:`NORMAL`)."""
    level: int = _state["verbosity"]
    return level


@contextlib.contextmanager
def verbosity(level: int) -> Iterator[None]:
    """:func:`set_verbosity` for a ``with`` block; the previous level is restored after it."""
    before = get_verbosity()
    set_verbosity(level)
    try:
        yield
    finally:
        set_verbosity(before)


def set_line_interval(seconds: float) -> None:
    """Seconds between two progress lines without a terminal (default 15)."""
    if not seconds >= 0:
        raise ValueError(f"the line interval must be >= 0 seconds, got {seconds!r}")
    _state["interval"] = float(seconds)


def get_line_interval() -> float:
    """The interval set by :func:`set_line_interval`."""
    interval: float = _state["interval"]
    return interval


def _is_terminal(stream: IO[str]) -> bool:
    """A terminal a bar can be drawn on (one that reports no width gets lines)."""
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):
        return True  # says it is a terminal and has no descriptor to ask (a wrapper)


def progress_mode(progress: bool | None = None, stream: IO[str] | None = None) -> ProgressMode:
    """How to show progress on ``stream`` (default stderr): ``"off"``, ``"bar"``, ``"lines"``.

    False is ``"off"``; None is ``"off"`` at :data:`QUIET`; otherwise a bar on a terminal
    and lines elsewhere (a log file, a pipe, a notebook).
    """
    if progress is False or (progress is None and get_verbosity() == QUIET):
        return "off"
    return "bar" if _is_terminal(stream if stream is not None else sys.stderr) else "lines"


def report(
    stage: str, text: str, progress: bool | None = None, *, stream: IO[str] | None = None
) -> None:
    """One line ``"<stage>: <text>"`` on ``stream`` (default stderr) unless progress is off.

    For what a stage did at once (an output group written, a result reused); printed
    above any bar in progress.
    """
    stream = stream if stream is not None else sys.stderr
    if progress_mode(progress, stream) != "off":
        tqdm.write(f"{stage}: {text}", file=stream)
        stream.flush()


def _clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour (as the ETA of a bar)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _rate_text(per_second: float, unit: str) -> str:
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.3g} {unit}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.3g} {unit}/min"
    return f"{per_second * 3600:.3g} {unit}/h"


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _count(value: float) -> str:
    """Whole units done (a unit in progress is not done)."""
    return str(math.floor(value + 1e-9))


class _Bar(tqdm):  # type: ignore[misc]
    """tqdm with ``{done}`` (whole units; ``n`` may be fractional) and our rate and ETA."""

    rate_now: Callable[[], float | None] | None = None

    @property
    def format_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = super().format_dict
        rate = self.rate_now() if self.rate_now is not None else found["rate"]
        return found | {"done": _count(self.n), "rate": rate}


_BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {done}/{total_fmt} {unit} "
    "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


class Progress:
    """Progress of one stage's counted work (tiles, steps, windows), shown as the mode says.

    ``total`` counts everything the stage has to have done, ``reused`` of which were found
    done before it started (said once, ``prior: 3/8 tiles reused``); :meth:`skip` counts
    more such units found along the way. Rate and ETA count only the work done here.
    Without a terminal, a line at most every ``interval`` seconds and one at the end:
    ``prior: 8/8 tiles in 0:12, 0.42 tiles/s (3 reused)``, or ``prior: 8/8 tiles reused``
    when nothing was left to do; leaving the ``with`` block on an exception says where the
    stage stopped. Units may be done in fractions (the windows of a tile); lines and bars
    count whole units.

    Args:
        stage: the name lines start with (``prior``, ``training``, ...).
        total: units of the whole stage (None: unknown).
        unit: the units' plural name.
        reused: units done before the stage started.
        reused_note: what a line says of them (``reused``; ``done before, resuming``).
        progress: False hides, True shows, None decides from the verbosity.
        interval: seconds between lines without a terminal (default
            :func:`get_line_interval`).
        stream: where to write (default stderr, looked up when created).
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        stage: str,
        total: float | None,
        unit: str = "tiles",
        *,
        reused: int = 0,
        reused_note: str = "reused",
        progress: bool | None = None,
        interval: float | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage, self.total, self.unit = stage, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.mode: ProgressMode = progress_mode(progress, self.stream)
        self.interval = get_line_interval() if interval is None else interval
        self.reused_note = reused_note
        self._clock = clock
        self._start = self._last_line = clock()
        self._history: deque[tuple[float, float]] = deque([(self._start, 0.0)])
        self._reused = reused
        self._skipped = 0
        self._done = float(reused)
        self._metrics: dict[str, object] = {}
        self._item: str | None = None
        self._bar: _Bar | None = None
        self._closed = False
        if reused:
            self._write(f"{self._of(reused)} {reused_note}")

    # ---------------------------------------------------------------- counting
    @property
    def done(self) -> float:
        """Units done, reused ones included."""
        return self._done

    def update(self, n: float = 1, *, item: str | None = None, **metrics: object) -> None:
        """``n`` more units done here; ``metrics`` (``loss=0.41``) go on the bar and lines.

        ``item`` names what is being worked on (a tile), shown on a bar only.
        """
        self._done += n
        self._metrics.update(metrics)
        if item is not None:
            self._item = item
        now = self._clock()
        if now - self._history[-1][0] >= 1:
            self._history.append((now, self._worked()))
            while len(self._history) > 2 and self._history[1][0] <= now - RATE_WINDOW:
                self._history.popleft()
        self._show()

    def update_to(self, done: float, *, item: str | None = None, **metrics: object) -> None:
        """Set the units done (reused ones included), e.g. to a trainer's global step."""
        self.update(done - self._done, item=item, **metrics)

    def skip(self, n: int = 1) -> None:
        """``n`` units found done along the way (reused): counted, not timed."""
        self._skipped += n
        self._done += n
        if self._bar is not None:
            self._bar.initial += n  # the bar's rate counts the work done here
            self._show()

    # ---------------------------------------------------------------- showing
    def _of(self, done: float) -> str:
        total = "" if self.total is None else f"/{_count(self.total)}"
        return f"{_count(done)}{total} {self.unit}"

    def _write(self, text: str) -> None:
        if self.mode != "off":
            tqdm.write(f"{self.stage}: {text}", file=self.stream)
            self.stream.flush()

    def _worked(self) -> float:
        return self._done - self._reused - self._skipped

    def _rate(self, now: float, whole: bool = False) -> float | None:
        """Units per second over the last :data:`RATE_WINDOW` seconds (or the stage)."""
        since, before = (self._start, 0.0) if whole else self._history[0]
        worked = self._worked()
        if worked <= 0 or now <= since or worked <= before:
            return None
        return (worked - before) / (now - since)

    def _metric_text(self) -> list[str]:
        return [f"{k} {_value(v)}" for k, v in self._metrics.items()]

    def _show(self) -> None:
        if self.mode == "bar":
            if self._bar is None:
                if self._worked() <= 0:
                    return  # no bar before any work: a resumed run shows no empty bar
                self._bar = self._make_bar()
            postfix = ", ".join(([self._item] if self._item else []) + self._metric_text())
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(self._done - self._bar.n)  # redraws at most every mininterval
        elif self.mode == "lines":
            now = self._clock()
            finished = self.total is not None and self._done >= self.total
            if not finished and now - self._last_line >= self.interval:
                self._last_line = now
                self._write(self._progress_line(now))

    def _make_bar(self) -> _Bar:
        bar = _Bar(
            total=self.total,
            initial=self._reused + self._skipped,
            desc=self.stage,
            unit=self.unit,
            file=self.stream,
            bar_format=_BAR_FORMAT if self.total is not None else None,
            dynamic_ncols=True,
            smoothing=0,
        )
        bar.rate_now = lambda: self._rate(self._clock())  # as the lines: RATE_WINDOW
        return bar

    def _progress_line(self, now: float) -> str:
        parts = [self._of(self._done)]
        if self.total:
            parts[0] += f" ({math.floor(100 * self._done / self.total + 1e-9)}%)"
        rate = self._rate(now)
        if rate is not None:
            parts.append(_rate_text(rate, self.unit))
        parts += self._metric_text()
        if rate is not None and self.total is not None:
            parts.append(f"ETA {_clock(max(0.0, self.total - self._done) / rate)}")
        return ", ".join(parts)

    def _final_line(self, now: float, stopped: bool) -> str | None:
        elapsed = _clock(now - self._start)
        if stopped:
            return f"stopped at {self._of(self._done)} after {elapsed}"
        if self._worked() <= 0:
            if self._skipped:  # all found done along the way
                return f"{self._of(self._done)} {self.reused_note}"
            return None  # nothing to do, or said when the stage started
        parts = [f"{self._of(self._done)} in {elapsed}"]
        rate = self._rate(now, whole=True)
        if rate is not None:
            parts.append(_rate_text(rate, self.unit))
        parts += self._metric_text()
        line = ", ".join(parts)
        if self._reused + self._skipped:
            line += f" ({_count(self._reused + self._skipped)} {self.reused_note})"
        return line

    def close(self, stopped: bool = False) -> None:
        """End the stage: close the bar, write the last line (once)."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        if self._bar is not None:
            self._bar.n = self._done
            self._bar.refresh()
            self._bar.close()
            if stopped:
                self._write(f"stopped at {self._of(self._done)}")
            elif self._skipped and not self._reused:
                self._write(f"{_count(self._skipped)} {self.unit} {self.reused_note}")
            return
        line = self._final_line(now, stopped)
        if line is not None:
            self._write(line)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(stopped=kind is not None)


# -------------------------------------------------------------------- Lightning
def lightning_progress(
    stage: str,
    progress: bool | None = None,
    *,
    unit: str | None = None,
    reused: int = 0,
    reused_note: str | None = None,
    interval: float | None = None,
    stream: IO[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Any]:
    """The progress callback of a Lightning ``Trainer``: ``[callback]``, or ``[]`` when off.

    Pass it as ``callbacks=[*other, *bars]`` with ``enable_progress_bar=bool(bars)`` (the
    callback is Lightning's progress bar). Shows, as a :class:`Progress` named ``stage``:

    * ``fit``: optimizer steps done of the whole run (``max_steps``, else
      ``max_epochs`` x batches per epoch; a resumed run starts at its restored step, said
      as ``done before, resuming``), with a moving average of the training loss;
    * ``predict``: batches done of all (``reused`` more, done before, are counted in the
      total and said so).

    On other ranks than the global zero it shows nothing.
    """
    from lightning.pytorch.callbacks import ProgressBar

    class StageProgress(ProgressBar):  # type: ignore[misc]
        """Lightning's progress bar as a :class:`~torchgeo_lsr.progress.Progress`."""

        def __init__(self) -> None:
            super().__init__()
            self._enabled = True
            self._progress: Progress | None = None
            self._loss: float | None = None

        def disable(self) -> None:
            self._enabled = False

        def enable(self) -> None:
            self._enabled = True

        def print(self, *args: Any, **kwargs: Any) -> None:
            tqdm.write(" ".join(map(str, args)), file=kwargs.get("file", sys.stdout))

        def _open(self, total: float | None, done: int, default_unit: str, note: str) -> None:
            self._close(stopped=False)
            if self._enabled:
                self._progress = Progress(
                    stage,
                    total,
                    unit or default_unit,
                    reused=done,
                    reused_note=reused_note or note,
                    progress=progress,
                    interval=interval,
                    stream=stream,
                    clock=clock,
                )

        def _close(self, stopped: bool) -> None:
            if self._progress is not None:
                self._progress.close(stopped=stopped)
                self._progress = None

        # fit
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            total: float | None = trainer.max_steps if trainer.max_steps > 0 else None
            if total is None and trainer.max_epochs not in (None, -1):
                batches = trainer.num_training_batches
                total = trainer.max_epochs * batches if math.isfinite(batches) else None
            self._loss = None
            self._open(total, trainer.global_step, "steps", "done before, resuming")

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            if self._progress is None:
                return
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is None:
                self._progress.update_to(trainer.global_step)
                return
            value = float(loss)
            if math.isfinite(value):  # a moving average: one batch's loss is noise
                self._loss = value if self._loss is None else 0.9 * self._loss + 0.1 * value
            shown = self._loss if self._loss is not None else value
            self._progress.update_to(trainer.global_step, loss=shown)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self._close(stopped=False)

        # predict
        def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
            batches = sum(trainer.num_predict_batches)
            total = batches + reused if math.isfinite(batches) else None
            self._open(total, reused, "batches", "reused")

        def on_predict_batch_end(
            self,
            trainer: Any,
            pl_module: Any,
            outputs: Any,
            batch: Any,
            batch_idx: int,
            dataloader_idx: int = 0,
        ) -> None:
            if self._progress is not None:
                self._progress.update(1)

        def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
            self._close(stopped=False)

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            self._close(stopped=True)

    if progress_mode(progress, stream) == "off":
        return []
    return [StageProgress()]


# -------------------------------------------------------------------- library noise
#: Known warnings of ordinary runs, ignored below :data:`VERBOSE`: (message regex,
#: category, module regex of the code that warns).
LIBRARY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    # torch >= 2.9 deprecates LeafSpec, which Lightning's _pytree still builds
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree\Z",
    ),
    # PossibleUserWarning (a UserWarning): the stages load their data in-process on purpose
    (
        r"The '\w+' does not have many workers",
        UserWarning,
        r"lightning\.pytorch\.trainer\.connectors\.data_connector\Z",
    ),
    # --accelerator cpu on a machine with a GPU is a choice
    (r"GPU available but not used", UserWarning, r"lightning\.pytorch\.trainer\.setup\Z"),
    # a Trainer(logger=True) without TensorBoard: CSV logs, as the CLI's configs expect
    (
        r"Starting from v1\.9\.0, `tensorboardX` has been removed",
        UserWarning,
        r"lightning\.pytorch\.trainer\.connectors\.logger_connector\.logger_connector\Z",
    ),
    (
        r"The `srun` command is available on your system but is not used",
        UserWarning,
        r"lightning\.fabric\.plugins\.environments\.slurm\Z",
    ),
)

#: Loggers whose INFO lines (devices, tips, seeds, checkpoint loading, "fit stopped")
#: are hidden below :data:`VERBOSE`; their warnings and errors still show.
LIBRARY_LOGGERS = ("lightning.pytorch", "lightning.fabric")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Hide the libraries' own chatter inside a ``with`` block (or a decorated function).

    Below :data:`VERBOSE`: :data:`LIBRARY_LOGGERS` log warnings and errors only, and the
    warnings of :data:`LIBRARY_WARNINGS` are ignored; every other warning shows as usual.
    The loggers' levels and the warning filters are restored afterwards. Imports Lightning
    (which sets its loggers' levels when imported): call it around work that uses it.
    """
    if get_verbosity() >= VERBOSE:
        yield
        return
    with contextlib.suppress(ImportError):
        import lightning.pytorch  # noqa: F401
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        for message, category, module in LIBRARY_WARNINGS:
            warnings.filterwarnings("ignore", message, category, module)
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
