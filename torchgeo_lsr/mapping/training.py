"""``map``'s training stage: the FCN trained on a region's imagery and priors.

Resumes from ``checkpoints/last.ckpt``; a finished run (``checkpoints/final.ckpt`` whose
key matches) is reused.

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import rasterio
import torch

from ..formats import stored_key
from ..interrupt import ResumeCheckpoint, raise_if_pending
from ..outputs import WriteError, atomic_output, write_text
from ..progress import lightning_progress, quiet_libraries, report
from ..region import Region, fingerprint
from .config import (
    NORMALIZATION_KEY,
    PREDICT_ONLY,
    MapConfig,
    Normalization,
    output_key,
    prior_files,
)

__all__ = ["train"]


@quiet_libraries()
def train(
    region: Region | str | os.PathLike[str],
    priors: Path,
    out: Path,
    config: MapConfig,
    progress: bool | None,
    norm: Normalization | None = None,
) -> Path:
    """Train the FCN on the region's imagery and priors; returns the final checkpoint.

    Resumes from ``checkpoints/last.ckpt``; a finished run (``checkpoints/final.ckpt``
    with the same key) is reused. ``norm`` defaults to :meth:`Normalization.of` the
    region by ``config.normalize`` (and ``config.init_from``); every checkpoint written
    records it under :data:`NORMALIZATION_KEY`. ``progress`` as in
    :mod:`torchgeo_lsr.progress` (steps done of ``config.steps``, with an ETA).
    """
    region = Region.open(region)
    norm = norm or Normalization.of(region, config.normalize, config.init_from)
    from lightning.pytorch import seed_everything

    from ..datamodules import LSRDataModule
    from ..trainers import LabelSuperResolutionTask
    from .engine import CheckpointEntry

    scheme = config.scheme
    ckpt_dir = out / "checkpoints"
    final = ckpt_dir / "final.ckpt"
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in PREDICT_ONLY}
    init = fingerprint([Path(config.init_from)]) if config.init_from else None
    priors_of_tiles = prior_files(region, priors)
    # the priors' own keys: a prior rebuilt from changed inputs retrains the network
    key = output_key(options, [(p.name, stored_key(p)) for p in priors_of_tiles], norm, init)
    marker = ckpt_dir / "final.key"
    if final.exists() and marker.exists() and marker.read_text().strip() == key:
        report("training", f"{config.steps}/{config.steps} steps reused ({final.name})", progress)
        return final
    seed_everything(config.seed, workers=True)
    epoch_batches = config.epoch_steps()
    dm = LSRDataModule(
        images=list(region.images),
        priors=priors_of_tiles,
        mean=norm.mean,
        std=norm.std,
        patch_size=config.patch_size,
        batch_size=config.batch_size,
        train_length=epoch_batches * config.batch_size,
        train_sampler=config.train_sampler,
        seed=config.seed,
    )
    with rasterio.open(region.images[0]) as src:
        bands = src.count
    task = LabelSuperResolutionTask(
        in_channels=bands,
        num_classes=len(scheme),
        num_filters=config.num_filters,
        num_layers=config.num_layers,
        loss=config.loss,  # type: ignore[arg-type]
        warmup_epochs=config.warmup(),
        warmup_loss=config.warmup_loss,
        denominator_momentum=config.denominator_momentum,
        labels=list(scheme.names),
        lr=config.lr,
        lr_schedule=config.lr_schedule,
        patience=3,
        init_checkpoint=config.init_from,
    )
    if config.steps == 0:  # the given network as it is
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        _save_model(task, norm, final)
        write_text(marker, key)
        report("training", "steps 0: the given network as it is", progress)
        return final
    dm.setup("fit")
    last = ckpt_dir / "last.ckpt"
    bars = lightning_progress("training", progress)
    trainer = config.trainer(
        max_steps=config.steps,
        limit_val_batches=8,
        log_every_n_steps=min(10, config.epoch_steps()),
        callbacks=[
            CheckpointEntry(NORMALIZATION_KEY, dataclasses.asdict(norm)),
            # last.ckpt every few steps and on SIGTERM / SIGINT, only where a rerun
            # resumes bit for bit (LSRDataModule's ResumableLoader holds the data stream)
            ResumeCheckpoint(last, every_n_steps=max(1, min(50, config.steps // 4))),
            *bars,
        ],
        logger=_logger(out),
        enable_checkpointing=False,  # ResumeCheckpoint saves last.ckpt; final.ckpt below
        enable_progress_bar=bool(bars),
        deterministic=True,
        default_root_dir=out,
        use_distributed_sampler=False,  # LSRDataModule shards its own samplers
    )
    # Under DDP every rank takes the same decision: rank 0 decides and removes a stale
    # last.ckpt before the other ranks start (they are launched inside fit()).
    resuming = last.exists() and marker.exists() and marker.read_text().strip() == "running:" + key
    if trainer.is_global_zero:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not resuming:
            last.unlink(missing_ok=True)
        write_text(marker, "running:" + key)
    trainer.fit(task, datamodule=dm, ckpt_path=str(last) if resuming else None)
    if trainer.is_global_zero:
        # the model alone (weights, hyper-parameters, normalisation): the same weights give
        # the same bytes, however often the run was stopped and resumed
        _save_model(task, norm, final)
        write_text(marker, key)
    trainer.strategy.barrier()
    raise_if_pending(final)  # a signal in the last step: the result is saved, now stop
    return final


def _save_model(task: Any, norm: Normalization, final: Path) -> None:
    """Write ``final``: a checkpoint ``load_from_checkpoint`` reads, without loop state."""
    import lightning

    state = {
        "state_dict": {k: v.detach().cpu() for k, v in task.state_dict().items()},
        "hyper_parameters": dict(task.hparams),
        "pytorch-lightning_version": lightning.__version__,
        NORMALIZATION_KEY: dataclasses.asdict(norm),
    }
    with atomic_output(final, _checkpoint_check) as partial, open(partial, "wb") as f:
        torch.save(state, f)  # to a file object: the archive is not named after `partial`


def _checkpoint_check(path: Path) -> None:
    """A written checkpoint loads (a full disk truncates it)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WriteError(f"{path}: checkpoint unreadable after writing ({err})") from None


def _logger(out: Path) -> Any:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=out, name="logs", version=0)
