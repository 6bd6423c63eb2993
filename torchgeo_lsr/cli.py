"""Command-line interface: ``torchgeo-lsr SUBCOMMAND ...``.

``fit``, ``validate``, ``test`` and ``predict`` run a :class:`LightningCLI` configured
as :func:`torchgeo.main.main` (same GDAL environment, same base classes), so the same
YAML configs also run under ``torchgeo fit``. Other subcommands are the project's
own tools and are listed by ``torchgeo-lsr --help``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

import torchgeo
from lightning.pytorch.cli import ArgsType, LightningCLI
from torchgeo.datamodules import BaseDataModule

import torchgeo_lsr.datamodules
import torchgeo_lsr.trainers  # noqa: F401

from . import __version__
from ._compat import BaseTask

__all__ = ["LIGHTNING_SUBCOMMANDS", "TOOLS", "LSRLightningCLI", "lightning_main", "main"]

#: Subcommands handled by Lightning.
LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

#: The project's own subcommands: name -> ("module:function", one-line help). Imported
#: only when run, so a tool's optional dependencies never slow down or break another.
TOOLS: dict[str, tuple[str, str]] = {
    "map": (
        "torchgeo_lsr.mapping.run:main",
        "map a region in one command (prior, training, prediction, GeoTIFFs)",
    ),
    "evaluate": (
        "torchgeo_lsr.mapping.evaluate:main",
        "score class maps against hi-res labels (accuracy, mIoU, confusion)",
    ),
    "prior": (
        "torchgeo_lsr.priors.cli:main",
        "build one prior GeoTIFF per imagery tile of a region directory",
    ),
    "sample-city": (
        "torchgeo_lsr.sample_city:main",
        "write the generated sample city (a region directory) to OUT_DIR",
    ),
}


def _tool(name: str) -> Callable[[Sequence[str]], int | None]:
    module, _, function = TOOLS[name][0].partition(":")
    entry: Callable[[Sequence[str]], int | None] = getattr(
        importlib.import_module(module), function
    )
    return entry


#: Cloud-optimised GeoTIFF reading, as in ``torchgeo.main`` (from pangeo-data/cog-best-practices).
GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "AWS_NO_SIGN_REQUEST": "YES",
    "GDAL_MAX_RAW_BLOCK_CACHE_SIZE": "200000000",
    "GDAL_SWATH_SIZE": "200000000",
    "VSI_CURL_CACHE_SIZE": "200000000",
}


class CheckpointMismatch(ValueError):
    """``--ckpt_path`` names a checkpoint of another network shape than the config's."""


class LSRLightningCLI(LightningCLI):
    """TorchGeo's LightningCLI, with runs that stop cleanly and resume exactly.

    For ``fit``: SIGTERM / SIGINT save ``last.ckpt`` at the end of the current step (at a
    point the data stream restarts from, :class:`~torchgeo_lsr.interrupt.ResumeCheckpoint`)
    and raise :class:`~torchgeo_lsr.interrupt.Interrupted` (exit 143 / 130 from
    :func:`main`); ``--ckpt_path last`` resumes from it. Checkpoints never get ``-v1``
    twins: a rerun into the same directory replaces the killed run's files.
    """

    #: Model arguments that fix the network's shape: a checkpoint must agree on them.
    SHAPE_ARGS = ("in_channels", "num_classes", "num_filters", "num_layers")

    def _parse_ckpt_path(self) -> None:
        """Refuse a ``--ckpt_path`` whose network shape differs from the config's.

        Lightning re-reads the model's arguments from the checkpoint and silently lets them
        win, so a 4-class checkpoint would train a "5-class" run with 4 classes.
        """
        before = self._shape_args()
        super()._parse_ckpt_path()
        after = self._shape_args()
        changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        if changed:
            ckpt = self.config[self.config.subcommand].get("ckpt_path")
            what = ", ".join(f"{k}={new} (config: {old})" for k, (old, new) in changed.items())
            raise CheckpointMismatch(
                f"--ckpt_path {ckpt}: its network has {what}; resume it with its own "
                "settings, or start from its weights with model.init_args.init_checkpoint"
            )

    def _shape_args(self) -> dict[str, object]:
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return {}
        model = self.config[subcommand].get("model")
        init = getattr(model, "init_args", None) if model is not None else None
        if init is None:
            return {}
        return {k: init.get(k) for k in self.SHAPE_ARGS if init.get(k) is not None}

    def _run_subcommand(self, subcommand: str) -> None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        from .interrupt import ResumeCheckpoint, graceful_signals

        if subcommand == "fit":
            for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
                if isinstance(callback, ModelCheckpoint):
                    callback._enable_version_counter = False
            self.trainer.callbacks.append(ResumeCheckpoint())  # type: ignore[attr-defined]
        with graceful_signals():
            super()._run_subcommand(subcommand)


def lightning_main(args: ArgsType = None) -> LightningCLI:
    """Run a Lightning subcommand (``fit``, ``validate``, ``test``, ``predict``).

    Args:
        args: command-line arguments without the program name; None reads ``sys.argv``.

    Returns:
        The finished CLI object (its ``trainer``, ``model`` and ``datamodule``).
    """
    os.environ.update(GDAL_ENV)
    return LSRLightningCLI(
        model_class=BaseTask,
        datamodule_class=BaseDataModule,
        seed_everything_default=0,
        parser_kwargs={"version": f"torchgeo-lsr {__version__} (torchgeo {torchgeo.__version__})"},
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def _usage() -> str:
    lines = [
        f"torchgeo-lsr {__version__}: label super-resolution for TorchGeo",
        "",
        "usage: torchgeo-lsr SUBCOMMAND [options]   (torchgeo-lsr SUBCOMMAND --help for options)",
        "",
        "training (Lightning, YAML configs with class_path/init_args, as `torchgeo fit`):",
        "  fit        train a model:          torchgeo-lsr fit --config configs/tiny.yaml",
        "  validate   score on the val split",
        "  test       score on the test split",
        "  predict    run the model on the predict split",
    ]
    if TOOLS:
        lines += ["", "tools:"]
        lines += [f"  {name:<10} {summary}" for name, (_, summary) in sorted(TOOLS.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int | None:
    """Entry point of the ``torchgeo-lsr`` console script.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        The tool's exit status (Lightning subcommands exit through Lightning).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        print(f"torchgeo-lsr {__version__} (torchgeo {torchgeo.__version__})")
        return 0
    if args[0] in LIGHTNING_SUBCOMMANDS:
        # Let Lightning read sys.argv itself when we were called as a script.
        from .interrupt import Interrupted

        try:
            lightning_main(None if argv is None else args)
        except CheckpointMismatch as err:
            print(f"torchgeo-lsr {args[0]}: {err}", file=sys.stderr)
            return 2
        except Interrupted as stop:
            resume = " (rerun with --ckpt_path last to resume)" if stop.checkpoint else ""
            print(f"torchgeo-lsr {args[0]}: {stop}{resume}", file=sys.stderr)
            return stop.exit_code
        return 0
    if args[0] in TOOLS:
        return _tool(args[0])(args[1:])
    print(f"torchgeo-lsr: unknown subcommand {args[0]!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
