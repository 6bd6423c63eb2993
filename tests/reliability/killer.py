"""Kill a ``torchgeo-lsr`` process at an exact point, as ``kill -9`` would.

Run as ``python killer.py SPEC_JSON ARGS...`` (``ARGS`` as for ``torchgeo-lsr``), with
``SPEC = {"publish": n, "signal": "SIGKILL"}``: the process sends itself the signal
(default SIGKILL) when it is about to publish
its n-th file (the file is written under its temporary name, not yet renamed: the worst
moment for an atomic writer); with ``"match": TEXT`` only publishes of files whose
path contains TEXT are counted. Every output of ``prior`` and ``map`` goes through
:func:`torchgeo_lsr.outputs.publish`, so the n-th publish is a point in a known stage.
The name of the file that was about to be published is printed to stderr first.

:class:`KillAtStep` does the same from inside a Lightning run (a ``trainer.callbacks``
entry of a ``fit`` config, with this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import signal
import signal as signal_module
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

KILLED_MARK = "killer: signalled before publishing "


def _die(what: str, signum: int = signal.SIGKILL) -> None:
    print(KILLED_MARK + what, file=sys.stderr, flush=True)
    os.kill(os.getpid(), signum)


class KillAtStep(Callback):
    """Send ``signal`` to this process at the end of optimizer step ``step``.

    Runs before the step's checkpoints (Lightning calls ModelCheckpoint last), so a
    SIGKILL there loses the step as a real kill would.
    """

    def __init__(self, step: int, signal: str = "SIGKILL") -> None:
        self.step = step
        self.signum = int(getattr(signal_module, signal))

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        """Die once ``global_step`` reaches ``step``."""
        if trainer.global_step == self.step:
            _die(f"step {self.step}", self.signum)


def main() -> int | None:
    """Patch ``publish`` to die at the n-th call, then run the CLI."""
    spec = json.loads(sys.argv[1])
    from torchgeo_lsr import outputs

    real = outputs.publish
    count = {"n": 0}

    def publish(tmp: Any, target: Any, check: Any = None) -> Path:
        if spec.get("match", "") not in str(target):
            return real(tmp, target, check)
        count["n"] += 1
        if count["n"] == spec["publish"]:
            _die(str(target), int(getattr(signal, spec.get("signal", "SIGKILL"))))
        return real(tmp, target, check)

    outputs.publish = publish  # type: ignore[assignment]
    from torchgeo_lsr.cli import main as cli

    return cli(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
