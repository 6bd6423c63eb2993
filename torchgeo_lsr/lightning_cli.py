"""The Lightning subcommands: ``torchgeo-lsr fit | validate | test | predict``.

A :class:`LightningCLI` configured as :func:`torchgeo.main.main` (same GDAL environment,
same base classes), so the same YAML configs also run under ``torchgeo fit``. This module
imports torch, Lightning and TorchGeo; :mod:`torchgeo_lsr.cli` imports it only for these
subcommands, so the tools' ``--help`` does not pay for it.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os

from lightning.pytorch.cli import ArgsType, LightningCLI
from torchgeo.datamodules import BaseDataModule

import torchgeo_lsr.datamodules
import torchgeo_lsr.trainers  # noqa: F401

from ._compat import BaseTask
from .options import version_line

__all__ = ["GDAL_ENV", "CheckpointMismatch", "LSRLightningCLI", "lightning_main"]


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
        parser_kwargs={"version": version_line()},
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )
