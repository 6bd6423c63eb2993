r"""Map a region in one command: prior -> training on the prior -> whole-region prediction.

``torchgeo-lsr map REGION_DIR --out OUT_DIR`` opens the region (a region directory or the
Chesapeake CVPR release, :class:`~torchgeo_lsr.region.Region`), builds (or reuses) one
prior per imagery tile, trains the FCN on the region's own imagery and prior
(transductive, as the paper; no hi-res label is used; imagery standardised per band with
the region's statistics), predicts every tile exactly (see :mod:`.predict`), and writes:

* ``q/<tile>.tif`` and ``r/<tile>.tif``: uint8 class-map COGs (colour table, class names)
  of the network output q and of the implicit posterior r, whose denominator
  :math:`\sum_j q_j(l)` is taken over the whole region (the paper's evaluation);
* ``q.vrt``, ``r.vrt``: region mosaics; ``quicklook.png``: imagery | prior | q | r;
* ``probs/q|r/<tile>.tif`` (with ``save_probs``): uint8 x 255 probabilities;
* ``summary.json``: parameters, versions, timings, the normalisation and, when the region
  has labels, the accuracy and mIoU of q, r and the prior's argmax.

Every stage can be interrupted and rerun: priors and maps carry keys of their inputs
and are reused when they match, training resumes from ``checkpoints/last.ckpt``, and no
file is ever half-written under its final name.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import torch
import yaml
from tqdm.auto import tqdm

from ..checks import LRSchedule, WarmupLoss, check_choice
from ..classes import ClassScheme, get_scheme, labels_to_classes
from ..datasets.base import Grid
from ..formats import MAP_KEY_TAG, content_key, read_prior, stored_key
from ..interrupt import Interrupted, ResumeCheckpoint, graceful_signals, raise_if_pending
from ..losses import DEFAULT_SMOOTHING, LossName
from ..outputs import WriteError, atomic_output, output_lock, write_json, write_text
from ..priors.builder import PriorConfig, build_label_priors, build_region_priors
from ..region import Region, add_region_arguments, fingerprint, open_region_from_args
from .evaluate import evaluate_maps, plot_confusion
from .io import NODATA, quicklook, write_class_map, write_probabilities, write_vrt
from .predict import implicit_posterior_map

__all__ = ["MapConfig", "main", "map_region"]

PriorKind = Literal["nlcd", "handmade", "learned", "labels"]
Normalize = Literal["standardize", "scale"]

#: MapConfig fields that change prediction only (a change does not retrain).
PREDICT_ONLY = frozenset({"window", "save_probs"})


@dataclass(frozen=True)
class MapConfig:
    """Parameters of ``torchgeo-lsr map`` (also the keys of its ``--config`` YAML).

    Attributes:
        loss: training objective (``qr``, ``qr_kl``, ``rq``, ``em``, ``ce_soft``,
            ``ce_hard``, ``nll_union``; see :mod:`torchgeo_lsr.losses`).
        prior: ``nlcd`` (NLCD through the co-occurrence matrix), ``handmade`` (plus
            OSM roads/water and building footprints, when the region has them),
            ``learned`` (a trained ``LearnedPriorTask`` checkpoint, ``learned_prior``) or
            ``labels`` (one-hot of the region's own hi-res labels: supervised training,
            the upper bound benchmarks compare with; not weak supervision).
        learned_prior: checkpoint path for ``prior="learned"``.
        classes: class scheme (name or YAML file).
        cooccurrence: matrix for the prior (see :class:`~torchgeo_lsr.priors.PriorConfig`).
        sigma: prior blur sigma in pixels.
        steps: training steps (batches); 0 with ``init_from`` maps with that network
            as it is (no training).
        patch_size: training patch side in pixels.
        batch_size: patches per batch.
        num_filters: FCN filters per layer.
        num_layers: FCN hidden layers.
        lr: learning rate (AdamW).
        lr_schedule: ``plateau`` (TorchGeo's ReduceLROnPlateau) or ``cosine`` (annealed
            to 0 over ``steps``).
        warmup_epochs: epochs (of 100 steps) of ``warmup_loss`` before ``loss``; 0 for
            none; None (default) for about a third of the run when ``loss`` is QR or RQ
            and ``steps`` >= 200 (see :meth:`warmup`), else none (the baselines and
            ``em`` train on their own loss throughout). The warm-up must leave some steps
            to ``loss``.
        warmup_loss: ``em`` (RQ's EM form; keeps every class the prior supports alive
            before QR, see ``benchmarks/FINDINGS.md``) or ``ce_soft`` (the paper's).
        denominator_momentum: online estimate of QR/RQ's denominator (None = per batch).
        train_sampler: ``random``, ``per_tile`` or ``mixed_batch``.
        normalize: how imagery is scaled for the network: ``standardize`` (default:
            per band, ``(x - mean) / std`` with the mean and standard deviation of the
            region's own imagery, see :func:`~torchgeo_lsr.datamodules.band_statistics`;
            with ``init_from``, those the checkpoint was trained with when it records them,
            as every checkpoint ``map`` writes does) or ``scale`` (``x / 255``, for uint8
            imagery; on real NAIP the network then predicts the majority class
            everywhere, ``benchmarks/FINDINGS.md``).
        init_from: a checkpoint to start training from: a ``LabelSuperResolutionTask``
            checkpoint or a plain state dict of a network of the same shape (the paper's
            "pretrained" protocol); None = random initialisation.
        window: prediction window side in pixels.
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: Lightning devices per node (e.g. ``1``, ``4``, ``"auto"``).
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``, ...); under DDP
            training is data-parallel and each rank predicts and writes its own tiles.
        num_nodes: Lightning nodes.
        precision: Lightning precision (e.g. ``32-true``, ``bf16-mixed``).
        seed: seed of initialisation and sampling.
        save_probs: also write probability rasters.
    """

    loss: str = "qr"
    prior: PriorKind = "handmade"
    learned_prior: str | None = None
    classes: str = "enviroatlas5"
    cooccurrence: str = "pittsburgh"
    sigma: float = 31.0
    steps: int = 600
    patch_size: int = 128
    batch_size: int = 16
    num_filters: int = 32
    num_layers: int = 5
    lr: float = 1e-3
    lr_schedule: LRSchedule = "cosine"
    warmup_epochs: int | None = None
    warmup_loss: WarmupLoss = "em"
    denominator_momentum: float | None = None
    train_sampler: Literal["random", "per_tile", "mixed_batch"] = "mixed_batch"
    normalize: Normalize = "standardize"
    init_from: str | None = None
    window: int = 1024
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    seed: int = 0
    save_probs: bool = False

    @cached_property
    def scheme(self) -> ClassScheme:
        """The class scheme ``classes`` names, resolved once (a YAML file is read once)."""
        return get_scheme(self.classes)

    def __post_init__(self) -> None:
        _ = self.scheme  # an unknown scheme fails here, before any work
        check_choice("loss", self.loss, LossName)
        check_choice("warmup_loss", self.warmup_loss, WarmupLoss)
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0 or None, got {self.warmup_epochs}")
        check_choice("lr_schedule", self.lr_schedule, LRSchedule)
        check_choice("prior", self.prior, PriorKind)
        if (self.prior == "learned") != (self.learned_prior is not None):
            raise ValueError("prior='learned' and learned_prior=CHECKPOINT go together")
        if self.learned_prior is not None and not os.path.exists(self.learned_prior):
            raise FileNotFoundError(f"learned_prior {self.learned_prior}: no such checkpoint")
        check_choice("normalize", self.normalize, Normalize)
        if self.init_from is not None and not os.path.isfile(self.init_from):
            raise FileNotFoundError(f"init_from {self.init_from}: no such checkpoint")
        for name, value, least in (
            ("steps", self.steps, 0),
            ("batch_size", self.batch_size, 1),
            ("patch_size", self.patch_size, 16),
        ):
            if value < least:
                raise ValueError(f"{name} must be >= {least}, got {value}")
        if self.steps == 0 and self.init_from is None:
            raise ValueError("steps=0 maps with a given network: set init_from=CHECKPOINT")
        warmup_steps = self.warmup() * self.epoch_steps()
        if warmup_steps and warmup_steps >= self.steps:
            raise ValueError(
                f"warmup_epochs={self.warmup_epochs} is {warmup_steps} steps of warmup_loss, "
                f"which leaves none of steps={self.steps} to loss={self.loss!r}: lower "
                "warmup_epochs or raise steps"
            )

    def epoch_steps(self) -> int:
        """Training steps per epoch (the unit of ``warmup_epochs``): 100, or ``steps``."""
        return max(1, min(self.steps, 100))

    def warmup(self) -> int:
        """Warm-up epochs to run: ``warmup_epochs``, or (None) a third of the run for QR/RQ.

        The default is ``round(steps / 300)`` epochs of 100 steps, at least 1, when the
        loss is QR or RQ and ``steps`` >= 200; else 0. On the sample city's 1,000-step
        run, 1 epoch of EM before QR lost water on 2 of 5 seeds and 2, 4 or 6 epochs lost
        it on none (``benchmarks/results/sample_city_ablation_warmup*.json``).
        """
        if self.steps == 0:
            return 0
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        implicit = self.loss in ("qr", "qr_kl", "rq")
        if not implicit or self.steps < 2 * self.epoch_steps():
            return 0
        return max(1, round(self.steps / (3 * self.epoch_steps())))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> MapConfig:
        """Read a config file; ``overrides`` (non-None) win. Unknown keys are errors."""
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"--config {path}: expected a mapping of options")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"--config {path}: unknown keys {unknown}; known: {sorted(known)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


@dataclass
class _Timer:
    times: dict[str, float] = field(default_factory=dict)

    def __call__(self, name: str, start: float) -> None:
        self.times[name] = round(time.perf_counter() - start, 2)


@dataclass(frozen=True)
class Normalization:
    """Per-band ``(x - mean) / std`` applied to imagery in training and prediction.

    Attributes:
        mean: per-band mean (one value for every band with ``scale``).
        std: per-band scale.
    """

    mean: list[float]
    std: list[float]

    @classmethod
    def of(
        cls, region: Region, normalize: Normalize, init_from: str | None = None
    ) -> Normalization:
        """The normalisation to train and predict with.

        ``standardize``: the statistics a network started from ``init_from`` was trained
        with (when its checkpoint records them), else those of the region's imagery;
        ``scale``: ``x / 255``.
        """
        if normalize == "scale":
            return cls([0.0], [255.0])
        if init_from is not None:
            carried = cls.from_checkpoint(init_from)
            if carried is not None:
                return carried
        from ..datamodules import band_statistics

        mean, std = band_statistics(region.images)
        return cls(mean, std)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> Normalization | None:
        """The normalisation a checkpoint of ``map`` records (None: a checkpoint without)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        found = state.get(NORMALIZATION_KEY) if isinstance(state, dict) else None
        return None if found is None else cls(list(found["mean"]), list(found["std"]))


#: Checkpoint entry that records the :class:`Normalization` the network was trained with.
NORMALIZATION_KEY = "lsr_normalization"


def _key(*parts: Any) -> str:
    """The 16-digit :func:`~torchgeo_lsr.formats.content_key` map outputs carry."""
    return content_key(*parts, length=16)


def _prior_files(region: Region, priors: Path) -> list[Path]:
    """The prior of each of the region's tiles (others in ``priors`` are not this run's)."""
    return [priors / f"{image.stem}.tif" for image in region.images]


# ---------------------------------------------------------------------- training
def train(
    region: Region | str | os.PathLike[str],
    priors: Path,
    out: Path,
    config: MapConfig,
    progress: bool,
    norm: Normalization | None = None,
) -> Path:
    """Train the FCN on the region's imagery and priors; returns the final checkpoint.

    Resumes from ``checkpoints/last.ckpt``; a finished run (``checkpoints/final.ckpt``
    with the same key) is reused. ``norm`` defaults to :meth:`Normalization.of` the
    region by ``config.normalize`` (and ``config.init_from``); every checkpoint written
    records it under :data:`NORMALIZATION_KEY`.
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
    prior_files = _prior_files(region, priors)
    # the priors' own keys: a prior rebuilt from changed inputs retrains the network
    key = _key(options, [(p.name, stored_key(p)) for p in prior_files], norm, init)
    marker = ckpt_dir / "final.key"
    if final.exists() and marker.exists() and marker.read_text().strip() == key:
        return final
    seed_everything(config.seed, workers=True)
    epoch_batches = config.epoch_steps()
    dm = LSRDataModule(
        images=list(region.images),
        priors=prior_files,
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
        return final
    dm.setup("fit")
    last = ckpt_dir / "last.ckpt"
    trainer = _trainer(
        config,
        max_steps=config.steps,
        limit_val_batches=8,
        log_every_n_steps=min(10, config.epoch_steps()),
        callbacks=[
            CheckpointEntry(NORMALIZATION_KEY, dataclasses.asdict(norm)),
            # last.ckpt every few steps and on SIGTERM / SIGINT, only where a rerun
            # resumes bit for bit (LSRDataModule's ResumableLoader holds the data stream)
            ResumeCheckpoint(last, every_n_steps=max(1, min(50, config.steps // 4))),
        ],
        logger=_logger(out),
        enable_checkpointing=False,  # ResumeCheckpoint saves last.ckpt; final.ckpt below
        enable_progress_bar=progress,
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


# -------------------------------------------------------------------- prediction
def _load_model(checkpoint: Path) -> Any:
    from ..trainers import LabelSuperResolutionTask

    # init_checkpoint only seeds training: the trained weights are in this checkpoint,
    # and the file it names need not exist any more
    task = LabelSuperResolutionTask.load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=True, init_checkpoint=None
    )
    task.eval()
    return task


def _weights_digest(task: Any) -> str:
    """A hash of the network's weights: the same weights give the same maps and keys."""
    digest = hashlib.sha256()
    for name, tensor in sorted(task.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


#: Regions whose q (uint16 codes) fits in this many bytes keep it in memory between the
#: passes when prediction runs in this process.
Q_MEMORY_BYTES = 2 * 1024**3


def _trainer(config: MapConfig, **kwargs: Any) -> Any:
    """A Lightning Trainer on the configured accelerator, devices, strategy and nodes."""
    from lightning.pytorch import Trainer

    return Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,  # type: ignore[arg-type]
        enable_model_summary=False,
        **kwargs,
    )


def predict_region(
    region: Region | str | os.PathLike[str],
    priors: Path,
    out: Path,
    checkpoint: Path,
    config: MapConfig,
    progress: bool,
    norm: Normalization | None = None,
) -> dict[str, list[Path]] | None:
    """Write q and r class maps (and probabilities) for every tile; returns the paths.

    Pass 1 predicts q for every tile through ``Trainer.predict`` (see :mod:`.engine`:
    under a DDP strategy each rank predicts and writes its own tiles). Pass 2, on the
    global rank 0 only, takes the region mean of q and writes the class maps of q and r.
    Other ranks return None. ``norm`` is that of training (default: the one the
    checkpoint records, else as :func:`train`).
    """
    from torch.utils.data import DataLoader

    from .engine import (
        QTileWriter,
        TileDataset,
        TilePredictor,
        dequantize,
        q_sum,
        read_q_sum,
        read_q_tile,
    )

    region = Region.open(region)
    norm = norm or Normalization.from_checkpoint(checkpoint)
    norm = norm or Normalization.of(region, config.normalize, config.init_from)
    scheme = config.scheme
    task = _load_model(checkpoint)
    margin = (task.model.receptive_field - 1) // 2
    tiles = list(region.images)
    ckpt_key = _key(_weights_digest(task), config.window, norm)
    work = out / "work" / "q"
    grids = {tile.stem: Grid.of_raster(tile) for tile in tiles}

    # Pass 1: q for every tile. One process keeps q in memory when the region fits in
    # Q_MEMORY_BYTES; otherwise (or under DDP) each tile goes to a uint16 work file,
    # which a rerun after an interruption reuses.
    trainer = _trainer(
        config,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        inference_mode=True,
    )
    pixels = sum(g.height * g.width for g in grids.values())
    in_memory = (
        trainer.world_size == 1
        and trainer.strategy.launcher is None
        and pixels * len(scheme) * 2 <= Q_MEMORY_BYTES
    )
    held: dict[str, torch.Tensor] = {}
    todo = [t for t in tiles if in_memory or read_q_sum(work / f"{t.stem}.tif", ckpt_key) is None]
    if todo:
        writer = QTileWriter(todo, work, ckpt_key, hold=held if in_memory else None)
        trainer.callbacks.append(writer)
        loader = DataLoader(TileDataset(todo), batch_size=1)
        predictor = TilePredictor(task.model, margin, config.window, norm.mean, norm.std)
        trainer.predict(predictor, dataloaders=loader, return_predictions=False)
        trainer.strategy.barrier()
    if not trainer.is_global_zero:
        return None

    q_total = torch.zeros(len(scheme), dtype=torch.float64)
    for tile in tiles:
        if in_memory:
            q_total += q_sum(held[tile.stem])
        else:
            found = read_q_sum(work / f"{tile.stem}.tif", ckpt_key)
            if found is None:
                raise RuntimeError(f"{work / tile.stem}.tif: missing after prediction")
            q_total += found[0]
    q_mean = (q_total / max(pixels, 1)).float()

    # Pass 2: class maps of q and r (r with the region-level denominator).
    map_key = _key(ckpt_key, q_mean.tolist())
    written: dict[str, list[Path]] = {"q": [], "r": []}
    for tile in tqdm(tiles, desc="maps", disable=not progress):
        grid = grids[tile.stem]
        q_map, r_map = out / "q" / f"{tile.stem}.tif", out / "r" / f"{tile.stem}.tif"
        written["q"].append(q_map)
        written["r"].append(r_map)
        if all(p.exists() and stored_key(p, MAP_KEY_TAG) == map_key for p in (q_map, r_map)) and (
            not config.save_probs or (out / "probs" / "r" / f"{tile.stem}.tif").exists()
        ):
            continue
        codes = held[tile.stem] if in_memory else read_q_tile(work / f"{tile.stem}.tif")
        q = dequantize(codes)
        with rasterio.open(priors / f"{tile.stem}.tif") as src:
            prior = torch.from_numpy(read_prior(src))
        r, _ = implicit_posterior_map(q, prior, q_mean, DEFAULT_SMOOTHING)
        for path, probs in ((q_map, q), (r_map, r)):
            # numpy's argmax over the leading axis is ~3x faster than torch's here
            classes = np.argmax(probs.numpy(), axis=0).astype(np.uint8)
            write_class_map(path, classes, grid, scheme, tags={MAP_KEY_TAG: map_key})
        if config.save_probs:
            write_probabilities(out / "probs" / "q" / f"{tile.stem}.tif", q.numpy(), grid, scheme)
            write_probabilities(out / "probs" / "r" / f"{tile.stem}.tif", r.numpy(), grid, scheme)
    return written


def _prior_argmax_maps(region: Region, priors: Path, out: Path, scheme: ClassScheme) -> list[Path]:
    paths = []
    for prior in _prior_files(region, priors):
        grid = Grid.of_raster(prior)
        target = out / "prior_argmax" / prior.name
        with rasterio.open(prior) as src:
            p = src.read()
        classes_ = np.where(p.sum(0) > 0, p.argmax(0), NODATA).astype(np.uint8)
        paths.append(write_class_map(target, classes_, grid, scheme))
    return paths


# -------------------------------------------------------------------------- main
def map_region(
    region: Region | str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    config: MapConfig | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Map a region (see the module docstring); returns the summary written to JSON.

    Under a DDP strategy launched as one process per rank, ranks other than 0 return an
    empty dict once their share of the prediction is written.

    Args:
        region: an open :class:`~torchgeo_lsr.region.Region`, a region directory or a
            Chesapeake CVPR release (every tile); None generates the sample city into
            ``out/region``.
        out: output directory (created; rerunning into it resumes).
        config: parameters (default :class:`MapConfig`).
        progress: show progress bars (default: when stderr is a terminal).
    """
    config = config or MapConfig()
    out = Path(out)
    with output_lock(out, "torchgeo-lsr map"):
        return _map_region(region, out, config, progress)


def _map_region(
    region: Region | str | os.PathLike[str] | None,
    out: Path,
    config: MapConfig,
    progress: bool | None,
) -> dict[str, Any]:
    show = sys.stderr.isatty() if progress is None else progress
    timer = _Timer()
    t0 = time.perf_counter()
    if region is None:
        from ..sample_city import make_sample_city

        city = out / "region"
        if not (city / "city.json").exists():
            make_sample_city(city, seed=config.seed, overwrite=city.exists(), progress=show)
        timer("sample_city_s", t0)
        region = city
    region = Region.open(region)
    if config.prior == "labels" and region.labels is None:
        raise ValueError(f"--prior labels: region {region.root} has no labels (labels/ or lc)")
    if region.labels is not None:  # labels these classes cannot score: fail before training
        try:
            labels_to_classes(np.zeros(1, np.int64), config.scheme, region.label_scheme)
        except ValueError:
            known = {"enviroatlas": "enviroatlas, enviroatlas5", "chesapeake": "chesapeake4"}
            raise ValueError(
                f"--classes {config.classes}: {region.root}'s labels are in "
                f"{region.label_scheme} codes, which map scores only in classes "
                f"{known.get(region.label_scheme, 'index')}; choose one of those, or map a "
                "copy of the region without labels/ (no scores)"
            ) from None
    # the summary describes one finished run: a run that stops leaves none, never an
    # older run's beside this run's maps
    (out / "summary.json").unlink(missing_ok=True)

    start = time.perf_counter()
    aux = region.available_aux() if config.prior == "handmade" else ()
    norm = Normalization.of(region, config.normalize, config.init_from)
    timer("normalization_s", start)
    start = time.perf_counter()
    prior_config = PriorConfig(
        classes=config.classes, cooccurrence=config.cooccurrence, sigma=config.sigma, aux=aux
    )
    priors = out / "prior"
    if config.learned_prior is not None:
        from ..priors.learned import apply_learned_prior

        apply_learned_prior(
            config.learned_prior, region, priors, window=config.window, progress=show
        )
    elif config.prior == "labels":
        build_label_priors(region, priors, config.scheme)
    else:
        build_region_priors(region, priors, prior_config, progress=show)
    timer("prior_s", start)

    start = time.perf_counter()
    checkpoint = train(region, priors, out, config, show, norm)
    timer("train_s", start)

    start = time.perf_counter()
    maps = predict_region(region, priors, out, checkpoint, config, show, norm)
    timer("predict_s", start)
    if maps is None:  # a DDP rank other than 0: its tiles are written, rank 0 finishes
        return {}

    for name in ("q", "r"):
        write_vrt(maps[name], out / f"{name}.vrt")
    first = region.images[0]
    quicklook(
        first,
        priors / f"{first.stem}.tif",
        {"q (network)": maps["q"][0], "r (posterior)": maps["r"][0]},
        config.scheme,
        out / "quicklook.png",
        title=f"{region.name}: {first.stem}",
    )
    summary: dict[str, Any] = {
        "region": str(region.root),
        "layout": region.layout,
        "tiles": [p.stem for p in region.images],
        "out": str(out),
        "config": dataclasses.asdict(config),
        "prior": dataclasses.asdict(prior_config) | {"aux": list(aux)},
        "normalization": dataclasses.asdict(norm),
        "versions": _versions(),
        "timings_s": timer.times,
        "outputs": {"q": "q.vrt", "r": "r.vrt", "quicklook": "quicklook.png"},
    }
    if region.labels is not None:
        prior_maps = _prior_argmax_maps(region, priors, out, config.scheme)
        metrics = {}
        for name, paths in (("q", maps["q"]), ("r", maps["r"]), ("prior_argmax", prior_maps)):
            result = evaluate_maps(paths, region, config.scheme)
            metrics[name] = {"accuracy": result.accuracy, "miou": result.miou, "iou": result.iou}
            if name == "r":
                plot_confusion(
                    result,
                    out / "confusion_r.png",
                    title=f"r map: accuracy {result.accuracy:.3f}, mIoU {result.miou:.3f}",
                )
        summary["metrics"] = metrics
    timer("total_s", t0)
    write_json(out / "summary.json", summary)
    return summary


def _versions() -> dict[str, str]:
    import lightning
    import torchgeo

    from .. import __version__

    return {
        "torchgeo_lsr": __version__,
        "torchgeo": torchgeo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "rasterio": rasterio.__version__,
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr map [REGION_DIR] --out OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(
        prog="torchgeo-lsr map",
        description="Map a region from its weak sources: prior, training, prediction, outputs. "
        "Without REGION_DIR, the generated sample city is mapped.",
    )
    add_region_arguments(parser, optional=True)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--config", type=Path, help="YAML file with MapConfig keys")
    fields = {f.name: f for f in dataclasses.fields(MapConfig)}
    for name, f in fields.items():
        flag = "--" + name.replace("_", "-")
        if f.type in ("bool",):
            parser.add_argument(
                flag, action="store_true", default=None, help=f"(default {f.default})"
            )
            continue
        types = {"int": int, "int | None": int, "float": float, "float | None": float}
        kind: Any = types.get(str(f.type), str)
        parser.add_argument(flag, type=kind, default=None, help=f"(default {f.default})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in fields}
    try:
        with graceful_signals():
            if args.config:
                config = MapConfig.from_yaml(args.config, **overrides)
            else:
                config = MapConfig(**{k: v for k, v in overrides.items() if v is not None})
            region = open_region_from_args(args)
            progress = False if args.no_progress else None
            summary = map_region(region, args.out, config, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        print(f"torchgeo-lsr map: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a write that failed (full disk, I/O error): not bad input
        print(f"torchgeo-lsr map: {err}", file=sys.stderr)
        return 1
    except Interrupted as stop:
        print(f"torchgeo-lsr map: {stop}; rerun the same command to resume", file=sys.stderr)
        return stop.exit_code
    if not summary:  # a DDP rank other than 0
        return 0
    print(f"map of {summary['region']} in {args.out}: q.vrt, r.vrt, quicklook.png, summary.json")
    for name, m in summary.get("metrics", {}).items():
        print(f"  {name:<13} accuracy {m['accuracy']:.3f}  mIoU {m['miou']:.3f}")
    return 0
