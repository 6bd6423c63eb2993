"""Lightning data module for training the learned prior (paper §4.4) on labelled tiles.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ..classes import LabelScheme
from ..datasets import AlignedTile
from ..losses import DEFAULT_SMOOTHING
from ..priors.blur import BlurMethod
from ..priors.builder import PriorConfig
from ..priors.learned import LearnedPriorInputs, prior_config_from_hparams, read_tile_labels
from .lsr import LSRDataModule

__all__ = ["LearnedPriorDataModule"]


class LearnedPriorDataModule(LSRDataModule):
    """Input stacks and hi-res labels of a few labelled tiles of a region, as patches.

    For every tile in ``train_tiles`` and ``val_tiles`` (imagery stems of
    ``region/naip``), :meth:`setup` builds the learned prior's input stack once
    (:class:`~torchgeo_lsr.priors.learned.LearnedPriorInputs`: the hand-made NLCD-only
    prior, then building, road, water-body and waterway masks) and reads
    ``region/labels/<stem>.tif`` remapped to ``classes`` (255 = no label). Batches hold
    ``image`` (the stack, float32, not normalised) and ``mask``. Sampling, validation grids
    and flips/rotations are those of :class:`~torchgeo_lsr.datamodules.LSRDataModule`.

    The hand-made-prior settings (``classes`` ... ``label_scheme``, see
    :data:`~torchgeo_lsr.priors.learned.HPARAM_TO_CONFIG`) are saved in the
    checkpoint, so :func:`~torchgeo_lsr.priors.learned.apply_learned_prior` rebuilds the
    same inputs for the other tiles.

    Args:
        region: region directory (``naip/``, ``nlcd/``, ``osm/``, ``buildings/``,
            ``labels/``).
        train_tiles: imagery stems to train on (labelled; paper: a few tiles).
        val_tiles: imagery stems to validate on; None or empty validates on the
            training tiles.
        classes: target class scheme.
        cooccurrence: co-occurrence matrix of the hand-made input prior (see
            :class:`~torchgeo_lsr.priors.builder.PriorConfig`; ``estimate`` uses the
            labels of every tile of the region).
        sigma: blur sigma of the hand-made input prior (px).
        blur_kernel_size: blur kernel size of the hand-made input prior.
        blur: blur method of the hand-made input prior.
        prior_eps: additive smoothing of the hand-made input prior.
        label_scheme: how ``labels/`` are coded: ``enviroatlas``, ``chesapeake`` or
            ``index``; None (default) for the region's own (``enviroatlas``).
        patch_size: side of the square patches in pixels.
        batch_size: patches per batch.
        num_workers: data-loading worker processes.
        train_length: random patches per training epoch.
        train_sampler: ``random``, ``per_tile`` or ``mixed_batch`` (see
            :class:`~torchgeo_lsr.datamodules.LSRDataModule`).
        patches_per_tile: patches per tile per epoch for ``per_tile``.
        augment: random flips and 90° rotations of training patches.
        seed: seed of the training patch sampler.

    Raises:
        ValueError: if ``train_tiles`` is empty or overlaps ``val_tiles``.
    """

    def __init__(
        self,
        region: str | os.PathLike[str],
        train_tiles: list[str],
        val_tiles: list[str] | None = None,
        classes: str = "enviroatlas5",
        cooccurrence: str = "pittsburgh",
        sigma: float = 31.0,
        blur_kernel_size: int | None = 101,
        blur: BlurMethod = "fast",
        prior_eps: float = DEFAULT_SMOOTHING,
        label_scheme: LabelScheme | None = None,
        patch_size: int = 128,
        batch_size: int = 16,
        num_workers: int = 0,
        train_length: int = 1024,
        train_sampler: Literal["random", "per_tile", "mixed_batch"] = "random",
        patches_per_tile: int = 400,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        if not train_tiles:
            raise ValueError("train_tiles must name at least one labelled tile")
        both = sorted(set(train_tiles) & set(val_tiles or []))
        if both:
            raise ValueError(f"tiles {both} are in both train_tiles and val_tiles")
        self.region = Path(region)
        super().__init__(
            images=self.region / "naip",
            priors=self.region / "naip",  # unused: the stacks replace imagery and prior
            labels=self.region / "labels",
            patch_size=patch_size,
            batch_size=batch_size,
            num_workers=num_workers,
            train_length=train_length,
            train_sampler=train_sampler,
            patches_per_tile=patches_per_tile,
            val_tiles=list(val_tiles) if val_tiles else None,
            mean=0.0,
            std=1.0,  # the stack holds probabilities and 0/1 masks: no normalisation
            augment=augment,
            seed=seed,
        )
        self.train_tiles = list(train_tiles)
        self.save_hyperparameters()
        self.hparams["region"] = os.fspath(region)  # a str, so checkpoints load weights-only
        #: Settings of the hand-made input prior.
        self.prior_config: PriorConfig = prior_config_from_hparams(self.hparams)

    def _read_tiles(self) -> list[AlignedTile]:
        """Build the input stack and read the labels of each train and validation tile."""
        inputs = LearnedPriorInputs(self.region, self.prior_config)
        tiles = []
        for name in self.train_tiles + list(self.val_tiles or []):
            grid = inputs.grid(name)
            tiles.append(
                AlignedTile(
                    name=name,
                    image=inputs.stack(grid).numpy(),
                    prior=None,
                    mask=read_tile_labels(inputs.source, grid, name, self.prior_config),
                    crs=grid.crs,
                    transform=grid.transform,
                )
            )
        return tiles
