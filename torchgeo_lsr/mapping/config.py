"""What ``torchgeo-lsr map`` is told and what it keys its outputs by.

:class:`MapConfig` (the options, also the keys of ``--config`` YAML), the imagery
:class:`Normalization` a network is trained and applied with, and the keys the stages
compare to reuse finished work (:func:`output_key`, :func:`prior_files`).

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..checks import (
    DEFAULT_SMOOTHING,
    AuxName,
    BlurMethod,
    LossName,
    LRSchedule,
    WarmupLoss,
    check_choice,
)
from ..classes import ClassScheme, LabelScheme, get_scheme
from ..options import read_config

if TYPE_CHECKING:
    from ..priors.config import PriorConfig
    from ..region import Region

__all__ = [
    "BUDGETS",
    "BUDGET_FIELDS",
    "NORMALIZATION_KEY",
    "Budget",
    "EvaluateConfig",
    "MapConfig",
    "Normalization",
    "choose_budget",
    "output_key",
    "prior_files",
]

PriorKind = Literal["nlcd", "handmade", "learned", "labels"]
Normalize = Literal["standardize", "scale"]
TrainSampler = Literal["random", "per_tile", "mixed_batch"]
#: Lightning's built-in accelerators.
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"]
#: Lightning's precisions.
Precision = Literal["32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true"]

#: MapConfig fields that change prediction only (a change does not retrain).
PREDICT_ONLY = frozenset({"window", "save_probs", "save_uncertainty", "workers"})

#: The :class:`MapConfig` fields a training budget sets (:data:`BUDGETS`).
BUDGET_FIELDS = (
    "steps",
    "patch_size",
    "batch_size",
    "num_filters",
    "num_layers",
    "lr",
    "lr_schedule",
    "warmup_epochs",
)

#: ``map``'s training budgets, by accelerator: the settings of :data:`BUDGET_FIELDS` that
#: neither the command line nor a ``--config`` file sets come from the budget of the
#: accelerator the run finds (:meth:`MapConfig.for_accelerator`). ``cpu`` is
#: :class:`MapConfig`'s own defaults, the training settings of ``configs/map/demo.yaml``:
#: the sample city in under a minute on 2 cores, the budget of the real-NAIP figures of
#: ``benchmarks/chesapeake.py`` (demo.yaml's ``warmup_epochs: 1`` is what the default
#: ``None`` resolves to at 250 steps; the two differ at other step counts); ``gpu`` is
#: the paper's (``configs/map/paper.yaml``: FCN 5 x 128, 10,000 steps of 64 patches of
#: 128 px, TorchGeo's plateau schedule, no warm-up). Filled in below the class.
BUDGETS: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Budget:
    """The training budget :meth:`MapConfig.for_accelerator` chose, and why.

    Attributes:
        name: a :data:`BUDGETS` key (``cpu`` or ``gpu``).
        reason: why that one (the accelerator asked for or found).
        applied: the budget's settings used (those the user did not set), name -> value.
    """

    name: str
    reason: str
    applied: dict[str, Any]

    def describe(self) -> str:
        """One line: which budget, why, and what it set."""
        if not self.applied:
            return f"{self.name} ({self.reason}) not used: every setting it holds was given"
        values = ", ".join(f"{k} {'auto' if v is None else v}" for k, v in self.applied.items())
        other = (
            "GPU budget: --accelerator gpu" if self.name == "cpu" else "CPU one: --accelerator cpu"
        )
        return f"{self.name} ({self.reason}): {values}; the {other}"


def choose_budget(accelerator: str) -> tuple[str, str]:
    """``(name, reason)`` of the :data:`BUDGETS` entry for a Lightning ``accelerator``.

    ``auto`` resolves as Lightning's ``Trainer(accelerator="auto")`` does (TPU, then Apple
    MPS, then CUDA, else the CPU), through the accelerators' own ``is_available``, which
    counts CUDA devices without initialising CUDA in this process (a later ``ddp_fork``
    still works). ``cpu`` is the CPU budget; any other accelerator (``gpu``, ``cuda``,
    ``mps``, ``tpu``) the GPU one.
    """
    if accelerator == "cpu":
        return "cpu", "--accelerator cpu"
    if accelerator != "auto":
        return "gpu", f"--accelerator {accelerator}"
    from lightning.fabric.accelerators.cuda import CUDAAccelerator, num_cuda_devices
    from lightning.fabric.accelerators.mps import MPSAccelerator
    from lightning.fabric.accelerators.xla import XLAAccelerator

    if XLAAccelerator.is_available():
        return "gpu", "--accelerator auto found a TPU"
    if MPSAccelerator.is_available():
        return "gpu", "--accelerator auto found Apple MPS"
    if CUDAAccelerator.is_available():
        n = num_cuda_devices()
        return "gpu", f"--accelerator auto found {n} CUDA device{'s' if n != 1 else ''}"
    return "cpu", "--accelerator auto found no GPU"


@dataclass(frozen=True)
class MapConfig:
    """Parameters of ``torchgeo-lsr map`` (also the keys of its ``--config`` YAML).

    The first line of each attribute's description below is its ``--help`` text.

    Attributes:
        loss: training objective: QR (the paper's, ``qr``; ``qr_kl`` its KL form), RQ
            (``rq``), EM, or a baseline (``ce_soft``, ``ce_hard``, ``nll_union``); see
            :mod:`torchgeo_lsr.losses`.
        prior: ``nlcd`` (NLCD through the co-occurrence matrix), ``handmade`` (plus
            OSM roads/water and building footprints, when the region has them),
            ``learned`` (a trained ``LearnedPriorTask`` checkpoint, ``learned_prior``) or
            ``labels`` (one-hot of the region's own hi-res labels: supervised training,
            the upper bound benchmarks compare with; not weak supervision).
        learned_prior: a LearnedPriorTask checkpoint, for ``prior="learned"``.
        classes: class scheme: a name (``enviroatlas5``, ``chesapeake4``, ...) or a YAML file.
        cooccurrence: P(class | NLCD) for the prior: ``pittsburgh``, ``durham``,
            ``austin``, ``phoenix``, a ``.npy`` file, ``scheme`` or ``estimate`` (see
            :class:`~torchgeo_lsr.priors.PriorConfig`).
        sigma: prior blur sigma in pixels (paper: 31 at 1 m).
        kernel_size: prior blur kernel size in pixels (paper: 101); None truncates at
            4 sigma.
        blur: prior blur method: ``fast`` (coarse canvas, default), ``fft`` or ``exact``
            (see :mod:`torchgeo_lsr.priors.blur`).
        aux: auxiliary sources fused into a ``handmade`` prior (``osm``, ``buildings``;
            comma-separated on the command line, ``none`` for neither); None (default)
            fuses every one the region has.
        prior_eps: additive smoothing of the prior onto the simplex (paper: 1e-4).
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
        train_sampler: how training patches are drawn: ``random`` (anywhere),
            ``per_tile`` (equal quotas per tile) or ``mixed_batch`` (every batch mixes
            tiles).
        normalize: how imagery is scaled for the network: ``standardize`` (default:
            per band, ``(x - mean) / std`` with the mean and standard deviation of the
            region's own imagery, see :func:`~torchgeo_lsr.datamodules.band_statistics`;
            with ``init_from``, those the checkpoint was trained with when it records them,
            as every checkpoint ``map`` writes does) or ``scale`` (``x / 255``, for uint8
            imagery; on real NAIP the network then predicts the majority class
            everywhere, ``benchmarks/FINDINGS.md``).
        init_from: a checkpoint to start training from: a ``LabelSuperResolutionTask``
            checkpoint or a plain state dict of a network of the same shape (the paper's
            "pretrained" protocol); None = random initialisation. The shape is
            ``num_layers`` x ``num_filters``, which the budget sets when not given (5 x 16
            on a CPU, 5 x 128 on a GPU): give them for a checkpoint from another machine.
        window: prediction window side in pixels.
        accelerator: Lightning accelerator (``auto`` picks a GPU when there is one); it
            also picks the training budget (:data:`BUDGETS`) for the options not given.
        devices: Lightning devices per node: a number (``-1``: all), a list of device
            indices (``[0, 2]``) or ``auto``.
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``, ...); under DDP
            training is data-parallel and each rank predicts and writes its own tiles.
        num_nodes: Lightning nodes.
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ...).
        seed: seed of initialisation and sampling.
        save_probs: also write probability rasters.
        save_uncertainty: also write uncertainty maps: entropy of q and of r, r's max probability.
        workers: processes building the recipe priors, whole tiles each (as ``prior
            --workers``; the same files for any number); the network's training and
            prediction spread over processes with ``devices`` and ``strategy``.
    """

    loss: LossName = "qr"
    prior: PriorKind = "handmade"
    learned_prior: str | None = None
    classes: str = "enviroatlas5"
    cooccurrence: str = "pittsburgh"
    sigma: float = 31.0
    kernel_size: int | None = 101
    blur: BlurMethod = "fast"
    aux: tuple[AuxName, ...] | None = None
    prior_eps: float = DEFAULT_SMOOTHING
    steps: int = 250
    patch_size: int = 96
    batch_size: int = 8
    num_filters: int = 16
    num_layers: int = 5
    lr: float = 1e-3
    lr_schedule: LRSchedule = "cosine"
    warmup_epochs: int | None = None
    warmup_loss: WarmupLoss = "em"
    denominator_momentum: float | None = None
    train_sampler: TrainSampler = "mixed_batch"
    normalize: Normalize = "standardize"
    init_from: str | None = None
    window: int = 1024
    accelerator: Accelerator = "auto"
    devices: int | list[int] | Literal["auto"] = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: Precision = "32-true"
    seed: int = 0
    save_probs: bool = False
    save_uncertainty: bool = False
    workers: int = 1

    @classmethod
    def for_accelerator(cls, given: dict[str, Any] | None = None) -> tuple[MapConfig, Budget]:
        """The config of ``given`` options, the rest of the training budget by accelerator.

        What ``map`` runs with: the :data:`BUDGETS` entry :func:`choose_budget` picks for
        ``given["accelerator"]`` (default ``auto``) fills each budget setting ``given``
        does not hold; every other field not given keeps its default.

        Example:
            >>> config, budget = MapConfig.for_accelerator({"accelerator": "gpu", "steps": 300})
            >>> config.steps, config.batch_size, budget.name, "steps" in budget.applied
            (300, 64, 'gpu', False)
        """
        given = dict(given or {})
        name, reason = choose_budget(str(given.get("accelerator", "auto")))
        applied = {k: v for k, v in BUDGETS[name].items() if k not in given}
        return cls(**(applied | given)), Budget(name, reason, applied)

    @property
    def scheme(self) -> ClassScheme:
        """The class scheme ``classes`` names (:func:`~torchgeo_lsr.classes.get_scheme`)."""
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
        check_choice("train_sampler", self.train_sampler, TrainSampler)
        check_choice("blur", self.blur, BlurMethod)
        if self.aux is not None:
            object.__setattr__(self, "aux", tuple(self.aux))  # a YAML list
            for source in self.aux:
                check_choice("aux", source, AuxName)
            if self.aux and self.prior != "handmade":
                raise ValueError(f"aux={list(self.aux)} is fused into prior='handmade' only")
        from ..priors.config import check_workers

        check_workers(self.workers)
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

    def prior_aux(self, region: Region) -> tuple[AuxName, ...]:
        """The auxiliary sources a ``handmade`` prior fuses: ``aux``, or all ``region`` has.

        Raises:
            ValueError: if ``aux`` names a source the region does not have.
        """
        if self.prior != "handmade":
            return ()
        have = region.available_aux()
        if self.aux is None:
            return have
        missing = [a for a in self.aux if a not in have]
        if missing:
            raise ValueError(
                f"--aux {','.join(self.aux)}: region {region.root} has no "
                f"{' or '.join(f'{m}/' for m in missing)} folder; it has "
                f"{','.join(have) or 'none'}"
            )
        return self.aux

    def prior_config(self, aux: tuple[AuxName, ...]) -> PriorConfig:
        """The :class:`~torchgeo_lsr.priors.PriorConfig` of this run's recipe prior."""
        from ..priors.config import PriorConfig

        return PriorConfig(
            classes=self.classes,
            cooccurrence=self.cooccurrence,
            sigma=self.sigma,
            kernel_size=self.kernel_size,
            blur=self.blur,
            aux=aux,
            eps=self.prior_eps,
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

    def trainer(self, **kwargs: Any) -> Any:
        """A Lightning ``Trainer`` on the configured accelerator, devices, strategy, nodes."""
        from lightning.pytorch import Trainer

        return Trainer(
            accelerator=self.accelerator,
            devices=self.devices,
            strategy=self.strategy,
            num_nodes=self.num_nodes,
            precision=self.precision,  # type: ignore[arg-type]
            enable_model_summary=False,
            **kwargs,
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> MapConfig:
        """Read a config file; ``overrides`` (non-None) win.

        Raises:
            ~torchgeo_lsr.options.OptionError: (a ``ValueError``) for a missing file, not a
                mapping, or an unknown key (with the nearest known one), as ``--config``.
        """
        data = read_config(path, [f.name for f in dataclasses.fields(cls)])
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


BUDGETS["cpu"] = {
    f.name: f.default for f in dataclasses.fields(MapConfig) if f.name in BUDGET_FIELDS
}
BUDGETS["gpu"] = {
    "steps": 10000,
    "patch_size": 128,
    "batch_size": 64,
    "num_filters": 128,
    "num_layers": 5,
    "lr": 1e-3,
    "lr_schedule": "plateau",
    "warmup_epochs": 0,
}


@dataclass(frozen=True)
class EvaluateConfig:
    """Options of ``torchgeo-lsr evaluate`` (beside the class maps it scores).

    Attributes:
        labels: label GeoTIFF or directory, or a region (its labels/, or a Chesapeake
            release's lc).
        classes: class scheme of the maps: a name (``enviroatlas5``, ``chesapeake4``, ...)
            or a YAML file.
        label_scheme: how the labels are coded: EnviroAtlas codes, Chesapeake lc codes or
            class indices (default: the region's, else enviroatlas).
        out: write metrics.json and confusion.png into this directory.
    """

    labels: str
    classes: str = "enviroatlas5"
    label_scheme: LabelScheme | None = None
    out: str | None = None


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
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        found = state.get(NORMALIZATION_KEY) if isinstance(state, dict) else None
        return None if found is None else cls(list(found["mean"]), list(found["std"]))


#: Checkpoint entry that records the :class:`Normalization` the network was trained with.
NORMALIZATION_KEY = "lsr_normalization"


def output_key(*parts: Any) -> str:
    """The 16-digit :func:`~torchgeo_lsr.formats.content_key` map outputs carry."""
    from ..formats import content_key

    return content_key(*parts, length=16)


def prior_files(region: Region, priors: Path) -> list[Path]:
    """The prior of each of the region's tiles (others in ``priors`` are not this run's)."""
    return [priors / f"{image.stem}.tif" for image in region.images]
