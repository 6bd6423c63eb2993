"""``map``'s prediction stage: q for every tile, then the class maps of q and r.

Pass 1 predicts q for every tile through ``Trainer.predict`` (:mod:`.engine`); pass 2
takes the region mean of q, the implicit posterior's denominator, and writes the maps
(and, as configured, the probabilities and the uncertainty rasters) from the same q and r.
Each output carries the maps' key, so a rerun writes only what is missing or stale.
Tile-level inference (windows, the posterior of one tile) is in :mod:`.predict`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import rasterio
import torch

from ..classes import ClassScheme
from ..datasets.grid import Grid
from ..formats import MAP_KEY_TAG, read_prior, stored_key
from ..losses import DEFAULT_SMOOTHING
from ..progress import Progress, lightning_progress, quiet_libraries
from ..region import Region
from .config import MapConfig, Normalization, output_key, prior_files
from .io import (
    NODATA,
    UNCERTAINTY_LAYERS,
    Quantity,
    uncertainty_codes,
    write_class_map,
    write_probabilities,
    write_uncertainty,
)
from .predict import implicit_posterior_map

__all__ = ["load_model", "predict_region", "prior_argmax_maps"]


def load_model(checkpoint: Path) -> Any:
    """The :class:`~torchgeo_lsr.trainers.LabelSuperResolutionTask` of ``checkpoint`` (eval)."""
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


class _Output(NamedTuple):
    """One file pass 2 writes for a tile: where, from q or r, and what."""

    path: Path
    source: Literal["q", "r"]
    kind: Literal["classes", "probs", "uncertainty"]
    layer: str = ""  # an UNCERTAINTY_LAYERS key, for kind "uncertainty"
    quantity: Quantity = "entropy"


def _tile_outputs(out: Path, stem: str, config: MapConfig) -> list[_Output]:
    """The files of one tile: class maps, then probabilities and uncertainty as configured."""
    name = f"{stem}.tif"
    files = [_Output(out / "q" / name, "q", "classes"), _Output(out / "r" / name, "r", "classes")]
    if config.save_probs:
        files += [_Output(out / "probs" / s / name, s, "probs") for s in ("q", "r")]
    if config.save_uncertainty:
        files += [
            _Output(out / "uncertainty" / layer / name, source, "uncertainty", layer, quantity)
            for layer, (source, quantity) in UNCERTAINTY_LAYERS.items()
        ]
    return files


@quiet_libraries()
def predict_region(
    region: Region | str | os.PathLike[str],
    priors: Path,
    out: Path,
    checkpoint: Path,
    config: MapConfig,
    progress: bool | None,
    norm: Normalization | None = None,
) -> dict[str, list[Path]] | None:
    """Write q and r class maps (and probabilities, uncertainty) for every tile.

    Pass 1 predicts q for every tile through ``Trainer.predict`` (see :mod:`.engine`:
    under a DDP strategy each rank predicts and writes its own tiles). Pass 2, on the
    global rank 0 only, takes the region mean of q and writes the class maps of q and r,
    with ``save_probs`` their probabilities (``probs/q|r/``) and with ``save_uncertainty``
    the :data:`~torchgeo_lsr.mapping.io.UNCERTAINTY_LAYERS` (``uncertainty/<layer>/``),
    all from the same q and r. Every file carries the maps' key
    (:data:`~torchgeo_lsr.formats.MAP_KEY_TAG`); a file whose key matches is kept, so a
    rerun that adds an output writes only that. Other ranks return None. ``norm`` is that
    of training (default: the one the checkpoint records, else as :func:`train`).

    Returns:
        ``"q"`` and ``"r"`` -> the class maps, tile by tile, and with ``save_uncertainty``
        each uncertainty layer -> its rasters; None on ranks other than 0.
    ``progress`` as in :mod:`torchgeo_lsr.progress`: tiles predicted (``prediction``), then
    tiles mapped (``maps``), each done/total with an ETA, reused tiles said so.
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
    task = load_model(checkpoint)
    margin = (task.model.receptive_field - 1) // 2
    tiles = list(region.images)
    ckpt_key = output_key(_weights_digest(task), config.window, norm)
    work = out / "work" / "q"
    grids = {tile.stem: Grid.of_raster(tile) for tile in tiles}

    # Pass 1: q for every tile. One process keeps q in memory when the region fits in
    # Q_MEMORY_BYTES; otherwise (or under DDP) each tile goes to a uint16 work file,
    # which a rerun after an interruption reuses.
    trainer = config.trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,  # the progress callback below, once the work is known
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
    reused = len(tiles) - len(todo)
    if not todo:
        Progress("prediction", len(tiles), reused=reused, progress=progress).close()
    if todo:
        trainer.callbacks.extend(
            lightning_progress("prediction", progress, unit="tiles", reused=reused)
        )
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

    # Pass 2: class maps of q and r (r with the region-level denominator), and the
    # probabilities and uncertainty of the same q and r; only files without this key.
    map_key = output_key(ckpt_key, q_mean.tolist())
    tags = {MAP_KEY_TAG: map_key}
    written: dict[str, list[Path]] = {"q": [], "r": []}
    bar = Progress("maps", len(tiles), progress=progress)
    for tile in tiles:
        grid = grids[tile.stem]
        files = _tile_outputs(out, tile.stem, config)
        for f in files:
            if f.kind != "probs":
                written.setdefault(f.layer or f.source, []).append(f.path)
        stale = [f for f in files if stored_key(f.path, MAP_KEY_TAG) != map_key]
        if not stale:
            bar.skip()
            continue
        codes = held[tile.stem] if in_memory else read_q_tile(work / f"{tile.stem}.tif")
        probs = {"q": dequantize(codes)}
        if any(f.source == "r" for f in stale):
            with rasterio.open(priors / f"{tile.stem}.tif") as src:
                prior = torch.from_numpy(read_prior(src))
            probs["r"], _ = implicit_posterior_map(probs["q"], prior, q_mean, DEFAULT_SMOOTHING)
        for f in stale:
            p = probs[f.source]
            if f.kind == "classes":
                # numpy's argmax over the leading axis is ~3x faster than torch's here
                classes = np.argmax(p.numpy(), axis=0).astype(np.uint8)
                write_class_map(f.path, classes, grid, scheme, tags=tags)
            elif f.kind == "probs":
                write_probabilities(f.path, p.numpy(), grid, scheme, tags=tags)
            else:
                layer = uncertainty_codes(p, f.quantity)  # window by window
                write_uncertainty(f.path, layer, grid, f.layer, scheme, tags=tags)
        bar.update(item=tile.stem)
    bar.close()
    return written


def prior_argmax_maps(region: Region, priors: Path, out: Path, scheme: ClassScheme) -> list[Path]:
    """Class maps of each prior's argmax (``out/prior_argmax/<tile>.tif``), a baseline."""
    paths = []
    for prior in prior_files(region, priors):
        grid = Grid.of_raster(prior)
        target = out / "prior_argmax" / prior.name
        with rasterio.open(prior) as src:
            p = src.read()
        classes_ = np.where(p.sum(0) > 0, p.argmax(0), NODATA).astype(np.uint8)
        paths.append(write_class_map(target, classes_, grid, scheme))
    return paths
