"""Lightning data module for label super-resolution on a region's tiles.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import rasterio
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchgeo.datamodules import BaseDataModule

from ..checks import check_choice
from ..classes import get_scheme
from ..datasets import AlignedTile, PatchDataset, list_rasters, match_by_stem, read_aligned_tile
from ..samplers import (
    GridPatchSampler,
    MixedTileBatchSampler,
    RandomPatchSampler,
    TileQuotaSampler,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LSRDataModule", "ResumableLoader", "band_statistics", "dihedral_augment"]

#: How training patches are drawn: uniformly over all tiles' patches, a fixed number per
#: tile, or batches that mix tiles (:class:`~torchgeo_lsr.samplers.MixedTileBatchSampler`).
TrainSampler = Literal["random", "per_tile", "mixed_batch"]

PathList = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]

#: Batch keys that hold rasters on the imagery grid (augmented together).
SPATIAL_KEYS = ("image", "prior", "mask", "valid")


def band_statistics(images: PathList, max_pixels: int = 1 << 22) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of imagery tiles, all tiles pooled.

    What :class:`LSRDataModule`'s ``mean`` and ``std`` want for imagery that is not
    scaled like uint8 NAIP, and what ``torchgeo-lsr map`` uses by default: real NAIP
    divided by 255 has so little spread that the networks predict the majority class
    everywhere (``benchmarks/FINDINGS.md``). Each tile is read decimated (nearest) to at
    most ``max_pixels`` pixels, each read pixel standing for the pixels it was decimated
    from; pixels at the file's declared nodata value in every band are left out (a tile
    counts by its valid area). A band without spread gets std 1.

    Args:
        images: imagery GeoTIFFs or directories.
        max_pixels: pixels read per tile at most.

    Returns:
        ``(mean, std)``, one float per band.

    Raises:
        ValueError: if the tiles differ in band count or hold no valid pixel.
    """
    paths = list_rasters(images, "images")
    sums: list[np.ndarray] = []  # per tile: weighted (sum, sum of squares, count) per band
    for path in paths:
        with rasterio.open(path) as src:
            step = max(1, math.ceil(math.sqrt(src.width * src.height / max_pixels)))
            shape = (max(1, src.height // step), max(1, src.width // step))
            data = src.read(out_shape=(src.count, *shape)).astype(np.float64)
            # declared nodata only: GDAL's dataset mask would take a 4th uint8 band (NIR) for alpha
            ok = np.ones(shape, dtype=bool) if src.nodata is None else (data != src.nodata).any(0)
            weight = src.width * src.height / (shape[0] * shape[1])  # pixels per read pixel
        values = data[:, ok]
        if sums and len(values) != sums[0].shape[1]:
            raise ValueError(f"imagery {path}: {len(values)} bands, other tiles {sums[0].shape[1]}")
        sums.append(
            weight
            * np.stack(
                [values.sum(axis=1), (values**2).sum(axis=1), np.full(len(values), values.shape[1])]
            )
        )
    total, squares, count = np.sum(sums, axis=0)
    if not count.all():
        raise ValueError(f"imagery {[str(p) for p in paths[:3]]}: no valid pixel")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return [float(m) for m in mean], [float(s) for s in std]


def dihedral_augment(
    batch: dict[str, Tensor], generator: torch.Generator | None = None
) -> dict[str, Tensor]:
    """Apply one random flip and 90° rotation per sample, the same to every spatial key.

    Args:
        batch: tensors ``(B, ..., H, W)`` under :data:`SPATIAL_KEYS`; other keys pass
            through. ``H == W`` is required for rotations.
        generator: optional random generator (on the CPU).

    Returns:
        A new dict with the augmented tensors.
    """
    keys = [k for k in SPATIAL_KEYS if k in batch]
    size = batch["image"].shape[0]
    draws = torch.randint(0, 8, (size,), generator=generator).tolist()
    out = dict(batch)
    for key in keys:
        parts = []
        for i, d in enumerate(draws):
            x = batch[key][i]
            if d >= 4:
                x = x.flip(-1)
            parts.append(torch.rot90(x, d % 4, dims=(-2, -1)))
        out[key] = torch.stack(parts)
    return out


class ResumableLoader(DataLoader[dict[str, Tensor]]):
    """A training loader that Lightning resumes mid-epoch exactly.

    Lightning saves a loader's :meth:`state_dict` in every checkpoint and gives it back
    with :meth:`load_state_dict` on resume. The state is ``(epoch, batches trained this
    epoch)``, read from the attached trainer's progress (not from the batches this loader
    handed out, which run one ahead of training because Lightning prefetches); on resume
    the sampler redraws that epoch and skips the batches already trained on, so a run
    killed at any step and resumed trains on exactly the batches of an uninterrupted one.

    Args:
        *args: :class:`~torch.utils.data.DataLoader` arguments.
        progress: returns ``(epoch, batches trained this epoch)``, or None outside a
            trainer (then the sampler counts its own epochs and ``(0, 0)`` is saved).
        **kwargs: :class:`~torch.utils.data.DataLoader` keyword arguments; its sampler
            (or batch sampler) must have ``resume_at`` (this package's samplers do).
    """

    def __init__(
        self,
        *args: Any,
        progress: Callable[[], tuple[int, int] | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def __iter__(self) -> Any:
        """Iterate the trainer's current epoch.

        The epoch is set on the sampler and on the batch sampler here, from the trainer's
        progress: Lightning sets it only on ``loader.sampler`` (not on a batch sampler of
        our own), and a sampler's own count advances only when an iteration is exhausted,
        which Lightning does not always do.
        """
        progress = self.progress() if self.progress is not None else None
        if progress is not None:  # under a trainer
            epoch, _ = progress
            for sampler in {id(s): s for s in (self.sampler, self.batch_sampler)}.values():
                set_epoch = getattr(sampler, "set_epoch", None)
                if callable(set_epoch):
                    set_epoch(epoch)
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "batches": n}``: n batches of epoch e are trained on."""
        progress = self.progress() if self.progress is not None else None
        epoch, batches = progress if progress is not None else (0, 0)
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Make the next iteration of ``state["epoch"]`` skip its trained batches."""
        batch_sampler = getattr(self.batch_sampler, "resume_at", None)
        if batch_sampler is not None:  # a batch sampler of our own: skip whole batches
            batch_sampler(state["epoch"], state["batches"])
            return
        resume = getattr(self.sampler, "resume_at", None)
        if resume is None:
            raise TypeError(f"{type(self.sampler).__name__} cannot resume mid-epoch")
        resume(state["epoch"], state["batches"] * int(self.batch_size or 1))


class LSRDataModule(BaseDataModule):
    """Imagery + prior (+ optional hi-res labels) of a region, as random and grid patches.

    Each imagery tile defines a grid; the prior and labels (any CRS, any resolution; one
    file per tile with the same stem, or one file for the whole region) are warped onto
    it once in :meth:`setup`, after which patches are plain array slices.

    Training draws ``train_length`` random patches per epoch, mixing tiles in every
    batch. Validation and test cover their tiles with a grid of patches. Prediction
    covers every tile with a grid of ``patch_size`` and ``predict_stride``. Images are
    normalised as ``(x - mean) / std`` and training batches get a random flip and 90°
    rotation, applied identically to image, prior and labels.

    Without ``val_tiles``, training is transductive (paper §4.3): every tile is used for
    training and validation, and labels, if any, only score.

    Args:
        images: imagery GeoTIFFs or directories.
        priors: prior GeoTIFFs or directories (one band per class).
        labels: optional hi-res label GeoTIFFs or directories.
        patch_size: side of the square patches in pixels.
        batch_size: patches per batch.
        num_workers: data-loading worker processes.
        train_length: random patches per training epoch (``random`` and
            ``mixed_batch`` samplers).
        train_sampler: ``random`` (independent draws, tiles in proportion to area),
            ``per_tile`` (``patches_per_tile`` from every tile, the paper's quota) or
            ``mixed_batch`` (every batch drawn from as many distinct tiles as possible).
        patches_per_tile: patches per tile per epoch for ``per_tile`` (paper: 400).
        val_tiles: imagery stems held out for validation (and test, unless
            ``test_tiles``); None for transductive training.
        test_tiles: imagery stems for testing; defaults to the validation tiles.
        label_map: mapping from stored label codes to class indices; other codes are
            ignored.
        ignore_index: label index that metrics ignore (nodata).
        mean: per-band mean (or one value) subtracted from the imagery, or ``"auto"``:
            the per-band statistics of every imagery tile (train, validation and test
            alike: transductive), :func:`band_statistics`, computed in :meth:`setup`.
        std: per-band scale (or one value) dividing the imagery, or ``"auto"`` (with
            ``mean="auto"``). The defaults (0, 255) keep uint8 in [0, 1]; inputs of small
            spread make the networks predict the majority class: Landsat reflectances
            (``benchmarks/raleigh.py``) and real NAIP (``benchmarks/chesapeake.py``) want
            ``"auto"`` or per-band statistics (``torchgeo-lsr map`` standardises by default).
        augment: random flips and rotations of training patches.
        predict_stride: grid step for prediction (overlap = patch_size - stride).
        seed: seed of the training patch sampler.
        classes: class scheme (name or YAML file) whose colours and names :meth:`plot`
            uses; None draws a default palette.
    """

    def __init__(
        self,
        images: PathList,
        priors: PathList,
        labels: PathList | None = None,
        patch_size: int = 128,
        batch_size: int = 16,
        num_workers: int = 0,
        train_length: int = 1024,
        train_sampler: TrainSampler = "random",
        patches_per_tile: int = 400,
        val_tiles: list[str] | None = None,
        test_tiles: list[str] | None = None,
        label_map: dict[int, int] | None = None,
        ignore_index: int = 255,
        mean: float | list[float] | Literal["auto"] = 0.0,
        std: float | list[float] | Literal["auto"] = 255.0,
        augment: bool = True,
        predict_stride: int | None = None,
        seed: int = 0,
        classes: str | None = None,
    ) -> None:
        super().__init__(PatchDataset, batch_size, num_workers)
        self.images, self.priors, self.labels = images, priors, labels
        self.patch_size = patch_size
        self.train_length = train_length
        check_choice("train_sampler", train_sampler, TrainSampler)
        self.train_sampler = train_sampler
        self.patches_per_tile = patches_per_tile
        self.val_tiles = val_tiles
        self.test_tiles = test_tiles
        self.label_map = label_map
        self.ignore_index = ignore_index
        if (mean == "auto") != (std == "auto"):
            raise ValueError(f"mean and std are both 'auto' or both numbers, got {mean!r}, {std!r}")
        #: Per-band statistics from the imagery at :meth:`setup` (``mean="auto"``).
        self.auto_normalize = mean == "auto"
        self.mean = torch.as_tensor(0.0 if mean == "auto" else mean, dtype=torch.float32)
        self.std = torch.as_tensor(1.0 if std == "auto" else std, dtype=torch.float32)
        if (self.std == 0).any():
            raise ValueError(f"std must be non-zero, got {std}")
        self.augment = augment
        self.predict_stride = predict_stride
        self.seed = seed
        #: Colours and names of :meth:`plot` (None: a default palette).
        self.scheme = None if classes is None else get_scheme(classes)
        self.tiles: list[AlignedTile] = []

    # ------------------------------------------------------------- setup
    def setup(self, stage: str) -> None:
        """Read and align every tile once (later calls reuse them)."""
        if not self.tiles:
            self.tiles = self._read_tiles()
        names = [t.name for t in self.tiles]
        for option, value in (("val_tiles", self.val_tiles), ("test_tiles", self.test_tiles)):
            unknown = sorted(set(value or []) - set(names))
            if unknown:
                raise ValueError(f"{option}: no imagery tile named {unknown}; tiles are {names}")
        held_out = set(self.val_tiles or [])
        train = [t for t in self.tiles if t.name not in held_out] if held_out else self.tiles
        if not train:
            raise ValueError("val_tiles holds out every tile; nothing is left to train on")
        val = [t for t in self.tiles if t.name in held_out] if held_out else self.tiles
        test_names = set(self.test_tiles or []) or held_out
        test = [t for t in self.tiles if t.name in test_names] if test_names else self.tiles
        self.train_dataset, self.val_dataset = PatchDataset(train), PatchDataset(val)
        self.test_dataset, self.predict_dataset = PatchDataset(test), PatchDataset(self.tiles)

    def _read_tiles(self) -> list[AlignedTile]:
        images = list_rasters(self.images, "images")
        priors = match_by_stem(images, list_rasters(self.priors, "priors"), "priors")
        labels: Sequence[Path | None] = [None] * len(images)
        if self.labels is not None:
            labels = match_by_stem(images, list_rasters(self.labels, "labels"), "labels")
        tiles = [
            read_aligned_tile(
                img, pri, lab, label_map=self.label_map, ignore_index=self.ignore_index
            )
            for img, pri, lab in zip(images, priors, labels, strict=True)
        ]
        bands = {t.image.shape[0] for t in tiles}
        classes = {t.prior.shape[0] for t in tiles if t.prior is not None}
        if len(bands) > 1 or len(classes) > 1:
            raise ValueError(
                f"tiles disagree: image bands {sorted(bands)}, prior classes {sorted(classes)}"
            )
        if self.auto_normalize:
            mean, std = band_statistics(images)
            self.mean, self.std = torch.tensor(mean), torch.tensor(std)
        if self.mean.numel() not in (1, *bands) or self.std.numel() not in (1, *bands):
            raise ValueError(
                f"mean/std need 1 or {bands.pop()} values, "
                f"got {self.mean.numel()}/{self.std.numel()}"
            )
        return tiles

    # ------------------------------------------------------- dataloaders
    @staticmethod
    def _dataset(dataset: object) -> PatchDataset:
        if not isinstance(dataset, PatchDataset):
            raise RuntimeError("call setup() before asking for a dataloader")
        return dataset

    def _loader(
        self, dataset: PatchDataset, sampler: Any, resumable: bool = False
    ) -> DataLoader[dict[str, Tensor]]:
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size,
            "sampler": sampler,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
        }
        if resumable:
            return ResumableLoader(dataset, progress=self._progress, **kwargs)
        return DataLoader(dataset, **kwargs)

    def _progress(self) -> tuple[int, int] | None:
        """``(epoch, batches trained on this epoch)`` of the attached trainer, if any."""
        trainer = self.trainer
        loop = getattr(trainer, "fit_loop", None)
        if trainer is None or loop is None:
            return None
        current = loop.epoch_loop.batch_progress.current
        return trainer.current_epoch, int(getattr(current, "processed", current.completed))

    @staticmethod
    def _shapes(dataset: PatchDataset) -> list[tuple[int, int]]:
        return [t.shape for t in dataset.tiles]

    def _distributed(self) -> tuple[int, int]:
        """``(global rank, world size)`` of the attached trainer; ``(0, 1)`` without one."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or trainer.world_size == 1:
            return 0, 1
        connector = getattr(trainer, "_accelerator_connector", None)
        if getattr(connector, "use_distributed_sampler", False):
            raise ValueError(
                "LSRDataModule shards its own samplers under a distributed strategy: set "
                "Trainer(use_distributed_sampler=False) (trainer.use_distributed_sampler: false "
                "in a config)"
            )
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Random patches from the training tiles, drawn by ``train_sampler``.

        Under a distributed strategy, rank ``k`` of ``n`` draws its own stream (seed
        ``seed + 7919 k``) of ``1/n`` of the patches, so an epoch holds as many patches
        as on one process.
        """
        ds = self._dataset(self.train_dataset)
        shapes, size = self._shapes(ds), self.patch_size
        rank, world = self._distributed()
        seed = self.seed + 7919 * rank
        match self.train_sampler:
            case "per_tile":
                quota = math.ceil(self.patches_per_tile / world)
                return self._loader(ds, TileQuotaSampler(shapes, size, quota, seed), True)
            case "mixed_batch":
                batches = max(1, math.ceil(self.train_length / self.batch_size / world))
                batch_sampler = MixedTileBatchSampler(
                    shapes, size, self.batch_size, batches, seed=seed
                )
                return ResumableLoader(
                    ds,
                    batch_sampler=batch_sampler,
                    num_workers=self.num_workers,
                    persistent_workers=self.num_workers > 0,
                    progress=self._progress,
                )
            case _:
                length = math.ceil(self.train_length / world)
                return self._loader(ds, RandomPatchSampler(shapes, size, length, seed), True)

    def _grid_loader(
        self, dataset: object, stride: int | None = None
    ) -> DataLoader[dict[str, Tensor]]:
        ds = self._dataset(dataset)
        rank, world = self._distributed()
        sampler = GridPatchSampler(self._shapes(ds), self.patch_size, stride, rank, world)
        return self._loader(ds, sampler)

    def val_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Grid patches over the validation tiles."""
        return self._grid_loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Grid patches over the test tiles."""
        return self._grid_loader(self.test_dataset)

    def predict_dataloader(self) -> DataLoader[dict[str, Tensor]]:
        """Grid patches (with ``predict_stride``) over every tile."""
        return self._grid_loader(self.predict_dataset, self.predict_stride)

    # ----------------------------------------------------- batch transforms
    def on_after_batch_transfer(
        self, batch: dict[str, Tensor], dataloader_idx: int
    ) -> dict[str, Tensor]:
        """Normalise the imagery; in training, augment image, prior and labels together."""
        batch = dict(batch)
        image = batch["image"].float()
        view = (1, -1, 1, 1) if self.mean.numel() > 1 or self.std.numel() > 1 else (1, 1, 1, 1)
        mean = self.mean.to(image.device).reshape(view)
        std = self.std.to(image.device).reshape(view)
        batch["image"] = (image - mean) / std
        if self.augment and self.trainer is not None and self.trainer.training:
            # drawn from (seed, rank, step), not the global stream: a resumed run draws
            # the same flips as an uninterrupted one
            rank = getattr(self.trainer, "global_rank", 0)
            step = getattr(self.trainer, "global_step", 0)
            generator = torch.Generator().manual_seed(
                (self.seed * 1_000_003 + rank * 7919 + step) % (2**63)
            )
            batch = dihedral_augment(batch, generator)
        return batch

    # ------------------------------------------------------------- figures
    def plot(self, sample: dict[str, Tensor], **kwargs: Any) -> Figure:
        """Draw one (unbatched) sample: image | prior | q | r | labels, whichever it has.

        The image is drawn as stored (de-normalise a batch's first with
        :func:`torchgeo_lsr.plot.denormalize`); keyword arguments go to
        :func:`torchgeo_lsr.plot.plot_sample` (``show_titles``, ``suptitle``, ...).
        """
        from ..plot import plot_sample

        if self.scheme is not None:
            return plot_sample(sample, self.scheme, **kwargs)
        probs = sample.get("prior", sample.get("q"))
        return plot_sample(sample, int(probs.shape[0]) if probs is not None else 2, **kwargs)
