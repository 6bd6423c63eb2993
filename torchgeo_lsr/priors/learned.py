"""The learned prior (paper §4.4): inputs, scoring, and applying a trained network.

A small FCN (:class:`~torchgeo_lsr.models.LearnedPriorFCN`) reads a stack of weak sources
on a tile's 1 m grid and is trained on a few labelled tiles
(:class:`~torchgeo_lsr.trainers.learned_prior.LearnedPriorTask`); its softmax output is
then a prior for the other tiles. The input stack, in :func:`input_channel_names` order:

1. the hand-made NLCD-only prior of :mod:`torchgeo_lsr.priors.builder` (NLCD -> co-occurrence
   remap -> Gaussian blur -> smoothing), one channel per target class;
2. binary masks of building footprints, OSM roads, OSM water bodies and OSM waterways
   (:data:`AUX_CHANNELS`), rasterised on the grid as drawn (no dilation or blur).

:func:`apply_learned_prior` writes the trained network's prior for every tile of a
region, like :func:`~torchgeo_lsr.priors.builder.build_region_priors` (same grid, band
descriptions, written atomically, skip when the key matches).

.. versionadded:: 0.1
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio
import torch
from torch import Tensor

from ..checkpoints import read_checkpoint
from ..classes import get_scheme
from ..datasets.base import GeoSource
from ..datasets.grid import Grid
from ..datasets.warping import warp_to_grid
from ..formats import prior_scale, prior_writer
from ..losses import DEFAULT_SMOOTHING, prior_nll
from ..progress import Progress, quiet_libraries
from ..region import Region, fingerprint, read_label_file
from .builder import (
    PriorConfig,
    PriorReport,
    plan_tiles,
    prior_window,
    resolve_cooccurrence,
)

__all__ = [
    "AUX_CHANNELS",
    "HPARAM_TO_CONFIG",
    "INPUT_CONFIG_KEYS",
    "LEARNED_PRIOR_CHANNELS",
    "LearnedPriorInputs",
    "PriorScore",
    "apply_learned_prior",
    "input_channel_names",
    "learned_prior_inputs",
    "prior_config_from_hparams",
    "read_tile_labels",
    "score_prior",
    "score_prior_dir",
]

#: Auxiliary input channels, after the class channels of the hand-made prior. Names are
#: the keys of :data:`torchgeo_lsr.priors.fusion.ENVIROATLAS5_FUSION`.
AUX_CHANNELS = ("buildings", "roads", "water_bodies", "waterways")

#: :class:`~torchgeo_lsr.priors.builder.PriorConfig` fields that shape the input stack
#: (and so must be the same when training and when applying a network).
INPUT_CONFIG_KEYS = ("classes", "cooccurrence", "sigma", "kernel_size", "blur", "eps")

#: Labels outside the target classes.
IGNORE_INDEX = 255


def input_channel_names(classes: str = "enviroatlas5") -> tuple[str, ...]:
    """Names of the input channels, in order: ``prior_<class>`` per class, then aux masks.

    Example:
        >>> input_channel_names("enviroatlas5")[:2], len(input_channel_names())
        (('prior_water', 'prior_impervious'), 9)
    """
    return tuple(f"prior_{n}" for n in get_scheme(classes).names) + AUX_CHANNELS


#: Input channels for the paper's 5 classes: 5 prior channels, then :data:`AUX_CHANNELS`.
LEARNED_PRIOR_CHANNELS = input_channel_names("enviroatlas5")


#: Data-module hyperparameter -> :class:`PriorConfig` field, for the input stack's settings
#: (names that cannot clash with the task's own hyperparameters in a checkpoint).
HPARAM_TO_CONFIG = {
    "classes": "classes",
    "cooccurrence": "cooccurrence",
    "sigma": "sigma",
    "blur_kernel_size": "kernel_size",
    "blur": "blur",
    "prior_eps": "eps",
    "label_scheme": "label_scheme",
}


def prior_config_from_hparams(hparams: Mapping[str, Any]) -> PriorConfig:
    """The :class:`PriorConfig` of the input stack from data-module hyperparameters.

    Keys of :data:`HPARAM_TO_CONFIG` override the defaults; others are ignored.

    Example:
        >>> prior_config_from_hparams({"blur_kernel_size": 51, "lr": 0.1}).kernel_size
        51
    """
    return PriorConfig(**{f: hparams[k] for k, f in HPARAM_TO_CONFIG.items() if k in hparams})


class LearnedPriorInputs:
    """The input stack of the learned prior, on any grid of a region.

    Sources (NLCD, OSM, footprints) are opened once; :meth:`stack` rasterises them on a
    grid. The hand-made part is :func:`~torchgeo_lsr.priors.builder.prior_window` with
    ``config`` and no fusion (NLCD only); NLCD is read with a margin of the blur radius
    around the grid, so windows of a tile agree with the whole tile.

    Args:
        region: region directory with ``naip/``, ``nlcd/``, ``osm/`` and ``buildings/``.
        config: co-occurrence, blur and smoothing of the hand-made prior (its ``aux`` and
            ``fusion`` are ignored).

    Raises:
        FileNotFoundError: if a source directory is missing.

    Example::

        inputs = LearnedPriorInputs("REGION")
        x = inputs.stack(inputs.grid("m_3507801_ne_17_060_20220615"))  # (9, H, W)
    """

    def __init__(
        self, region: Region | str | os.PathLike[str], config: PriorConfig | None = None
    ) -> None:
        self.source = Region.open(region)
        self.region = self.source.root
        self.config = dataclasses.replace(config or PriorConfig(), aux=())
        self.nlcd = self.source.nlcd()
        aux = self.source.aux_sources(("osm", "buildings"))
        self.aux: dict[str, GeoSource] = {name: aux[name] for name in AUX_CHANNELS}
        self.tiles = {p.stem: p for p in self.source.images}
        self.matrix = torch.from_numpy(resolve_cooccurrence(self.config, self.source)).float()
        self.channels = input_channel_names(self.config.classes)

    def tile_path(self, tile: str | os.PathLike[str]) -> Path:
        """The imagery file of ``tile`` (a path, or the stem of a file in ``naip/``)."""
        path = Path(tile)
        if path.is_file():
            return path
        if str(tile) not in self.tiles:
            raise ValueError(
                f"region {self.region}: no imagery tile named {str(tile)!r}; "
                f"tiles are {sorted(self.tiles)}"
            )
        return self.tiles[str(tile)]

    def grid(self, tile: str | os.PathLike[str]) -> Grid:
        """The pixel grid of ``tile``."""
        return Grid.of_raster(self.tile_path(tile))

    def _stack_window(self, grid: Grid) -> Tensor:
        margin = self.config.margin
        padded = grid.window(-margin, -margin, grid.height + 2 * margin, grid.width + 2 * margin)
        nlcd = self.nlcd[padded]
        prior, _ = prior_window(nlcd["mask"], nlcd["valid"], self.matrix, self.config, crop=margin)
        masks = [(self.aux[name][grid]["mask"] > 0)[None].float() for name in AUX_CHANNELS]
        return torch.cat([prior.float(), *masks])

    def stack(self, grid: Grid) -> Tensor:
        """The ``(C_in, H, W)`` float32 input stack on ``grid`` (in ``config.window`` pieces)."""
        win = self.config.window
        if grid.height <= win and grid.width <= win:
            return self._stack_window(grid)
        out = torch.empty(len(self.channels), grid.height, grid.width)
        for window, part in grid.windows(win):
            r0, c0 = int(window.row_off), int(window.col_off)
            out[:, r0 : r0 + part.height, c0 : c0 + part.width] = self._stack_window(part)
        return out


def learned_prior_inputs(
    region: Region | str | os.PathLike[str],
    tile: str | os.PathLike[str],
    config: PriorConfig | None = None,
) -> Tensor:
    """The learned prior's input stack ``(C_in, H, W)`` on one tile's grid.

    Channels are :func:`input_channel_names` of ``config.classes``
    (:data:`LEARNED_PRIOR_CHANNELS` for the default 5 classes): the hand-made NLCD-only
    prior (``K`` channels on the simplex, all zero where NLCD has no information), then
    buildings, roads, water bodies and waterways as 0/1 masks. For many tiles, open the
    sources once with :class:`LearnedPriorInputs`.

    Args:
        region: region directory.
        tile: imagery file, or the stem of a file in ``region/naip``.
        config: hand-made prior settings (default :class:`PriorConfig`).
    """
    inputs = LearnedPriorInputs(region, config)
    return inputs.stack(inputs.grid(tile))


def read_tile_labels(
    region: Region | str | os.PathLike[str],
    grid: Grid,
    name: str,
    config: PriorConfig | None = None,
) -> np.ndarray:
    """Hi-res labels of imagery tile ``name`` as class indices on ``grid``.

    Labels are remapped to ``config.classes`` as the builder does (by
    ``config.label_scheme``, default the region's own); other codes and nodata become 255.

    Returns:
        ``(H, W)`` int64 array.

    Raises:
        FileNotFoundError: if the region has no labels.
    """
    config = config or PriorConfig()
    region = Region.open(region)
    label_scheme = config.label_scheme or region.label_scheme
    scheme = config.scheme
    classes = read_label_file(region.label_path(name), grid, scheme, label_scheme)
    return np.where(classes == 255, IGNORE_INDEX, classes).astype(np.int64)


# ---------------------------------------------------------------------------- scoring
class PriorScore(NamedTuple):
    """Negative log-likelihood and accuracy of a prior against labels.

    Attributes:
        nll: mean over valid labelled pixels of ``-log P(true class)``.
        acc: fraction of those pixels where the prior's argmax is the true class.
        pixels: number of such pixels.
    """

    nll: float
    acc: float
    pixels: int


def score_prior(
    prior: Tensor, target: Tensor, eps: float = DEFAULT_SMOOTHING, ignore_index: int = IGNORE_INDEX
) -> PriorScore:
    """NLL and accuracy of a ``(K, H, W)`` prior against ``(H, W)`` labels.

    Pixels whose prior is all zero (no information) are left out, as are unlabelled ones.
    """
    informative = prior.sum(dim=0) > 0
    target = torch.where(informative, target, ignore_index)
    total, count = prior_nll(prior[None], target[None], eps, ignore_index)
    valid = (target != ignore_index) & (target < prior.shape[0])
    correct = ((prior.argmax(dim=0) == target) & valid).sum()
    n = int(count)
    return PriorScore(float(total) / max(n, 1), float(correct) / max(n, 1), n)


def score_prior_dir(
    region: Region | str | os.PathLike[str],
    prior_dir: str | os.PathLike[str],
    tiles: Sequence[str],
    config: PriorConfig | None = None,
    eps: float = DEFAULT_SMOOTHING,
) -> PriorScore:
    """Score prior GeoTIFFs (``prior_dir/<tile>.tif``) against the region's labels.

    Pixel-weighted over ``tiles``; each prior is read on its tile's grid (uint8 priors are
    divided by 255).
    """
    region = Region.open(region)
    images = {p.stem: p for p in region.images}
    nll, correct, pixels = 0.0, 0.0, 0
    for name in tiles:
        grid = Grid.of_raster(images[name])
        with rasterio.open(Path(prior_dir) / f"{name}.tif") as src:
            data = warp_to_grid(src, grid, dtype="float32", fill=0.0, what="prior")
            data /= prior_scale(src)
        labels = torch.from_numpy(read_tile_labels(region, grid, name, config))
        score = score_prior(torch.from_numpy(data), labels, eps)
        nll += score.nll * score.pixels
        correct += score.acc * score.pixels
        pixels += score.pixels
    return PriorScore(nll / max(pixels, 1), correct / max(pixels, 1), pixels)


# ---------------------------------------------------------------------------- applying
def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_tile(
    task: Any,
    inputs: LearnedPriorInputs,
    tile: Path,
    out: Path,
    key: str,
    window: int,
    eps: float,
    device: torch.device,
) -> None:
    scheme = inputs.config.scheme
    grid = Grid.of_raster(tile)
    margin = (task.model.receptive_field - 1) // 2
    tags = {"LSR_PRIOR": "learned"}
    with prior_writer(out, grid, scheme, key=key, tags=tags) as dst:
        for win, padded in grid.windows(window, margin):
            h, w = int(win.height), int(win.width)
            x = inputs.stack(padded)[None].to(device)
            with torch.inference_mode():
                probs = task.predict_prior(x, eps)[0, :, margin : margin + h, margin : margin + w]
            dst.write(probs.float().cpu().numpy(), win)


@quiet_libraries()
def apply_learned_prior(
    checkpoint: str | os.PathLike[str],
    region: Region | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    tiles: Sequence[str] | None = None,
    config: PriorConfig | None = None,
    *,
    eps: float = DEFAULT_SMOOTHING,
    window: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> PriorReport:
    """Write the learned prior of a trained checkpoint for tiles of ``region``.

    One float32 GeoTIFF per tile, named like the imagery, on exactly its grid, with one
    band per class (descriptions = class names): the network's softmax, smoothed as
    ``(p + eps) / (1 + K eps)``. Tiles are processed in windows of ``window`` px, each
    read with a margin of half the network's receptive field, so a window's edge sees the
    same context as its interior. Files are written atomically (read back, renamed); a tile
    whose output carries the same key (checkpoint bytes, input settings, source files,
    ``eps``) is skipped.

    Args:
        checkpoint: Lightning checkpoint of a
            :class:`~torchgeo_lsr.trainers.learned_prior.LearnedPriorTask`.
        region: region directory (``naip/``, ``nlcd/``, ``osm/``, ``buildings/``).
        out_dir: where to write the priors.
        tiles: imagery stems to process (paper: the tiles without labels); None = all.
        config: input settings; None takes them from the checkpoint's data-module
            hyperparameters (:func:`prior_config_from_hparams`), else the defaults.
        eps: additive smoothing of the output (paper: 1e-4).
        window: processing window side in pixels.
        device: where to run the network.
        progress: False shows no progress, True shows it, None decides from the
            verbosity (:mod:`torchgeo_lsr.progress`).

    Returns:
        :class:`~torchgeo_lsr.priors.builder.PriorReport` of written and skipped files.

    Raises:
        ValueError: on an unknown tile, or a network whose input channels or classes do
            not match the input stack.
    """
    from ..trainers.learned_prior import LearnedPriorTask

    checkpoint, region, out_dir = Path(checkpoint), Region.open(region), Path(out_dir)
    if window < 16:
        raise ValueError(f"window must be >= 16 px, got {window}")
    state = read_checkpoint(checkpoint, "learned prior")
    if config is None:
        config = prior_config_from_hparams(state.get("datamodule_hyper_parameters", {}))
    device = torch.device(device)
    try:
        task = LearnedPriorTask.load_from_checkpoint(
            checkpoint, map_location=device, weights_only=True
        )
    except (TypeError, KeyError, RuntimeError) as err:
        raise ValueError(
            f"learned prior {checkpoint}: not a LearnedPriorTask checkpoint "
            f"({str(err).splitlines()[0][:120]})"
        ) from None
    task.eval()
    inputs = LearnedPriorInputs(region, config)
    hp = task.hparams
    if hp["in_channels"] != len(inputs.channels) or hp["num_classes"] != len(inputs.matrix):
        raise ValueError(
            f"checkpoint {checkpoint.name} has in_channels={hp['in_channels']}, "
            f"num_classes={hp['num_classes']}; the input stack of classes "
            f"{inputs.config.classes!r} has {len(inputs.channels)} channels "
            f"({', '.join(inputs.channels)}) and {len(inputs.matrix)} classes"
        )
    names = sorted(inputs.tiles) if tiles is None else list(tiles)
    paths = [inputs.tile_path(name) for name in names]
    params = {k: getattr(inputs.config, k) for k in INPUT_CONFIG_KEYS}
    params |= {"output_eps": eps, "checkpoint": _file_sha256(checkpoint), "prior": "learned"}
    aux_config = dataclasses.replace(inputs.config, aux=("osm", "buildings"))
    sources = fingerprint(region.input_files(aux_config.aux, aux_config.cooccurrence == "estimate"))
    report = PriorReport(matrix=inputs.matrix.double().numpy())
    todo = plan_tiles(paths, Path(out_dir), [params, sources], report)
    done = len(report.skipped)
    with Progress(
        "learned prior", done + len(todo), "tiles", reused=done, progress=progress
    ) as bar:
        for tile, out, key in todo:
            _write_tile(task, inputs, tile, out, key, window, eps, device)
            report.written.append(out)
            bar.update(item=tile.name)
    return report
