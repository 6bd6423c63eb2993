"""``map``'s prediction stage: q for every tile, then the class maps of q and r.

Pass 1 predicts q for every tile through ``Trainer.predict`` (:mod:`.engine`); pass 2
takes the region mean of q, the implicit posterior's denominator, and writes the maps.
Tile-level inference (windows, the posterior of one tile) is in :mod:`.predict`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

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
from .io import NODATA, write_class_map, write_probabilities
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
    """Write q and r class maps (and probabilities) for every tile; returns the paths.

    Pass 1 predicts q for every tile through ``Trainer.predict`` (see :mod:`.engine`:
    under a DDP strategy each rank predicts and writes its own tiles). Pass 2, on the
    global rank 0 only, takes the region mean of q and writes the class maps of q and r.
    Other ranks return None. ``norm`` is that of training (default: the one the
    checkpoint records, else as :func:`train`). ``progress`` as in
    :mod:`torchgeo_lsr.progress`: tiles predicted (``prediction``), then tiles mapped
    (``maps``), each done/total with an ETA, reused tiles said so.
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

    # Pass 2: class maps of q and r (r with the region-level denominator).
    map_key = output_key(ckpt_key, q_mean.tolist())
    written: dict[str, list[Path]] = {"q": [], "r": []}
    bar = Progress("maps", len(tiles), progress=progress)
    for tile in tiles:
        grid = grids[tile.stem]
        q_map, r_map = out / "q" / f"{tile.stem}.tif", out / "r" / f"{tile.stem}.tif"
        written["q"].append(q_map)
        written["r"].append(r_map)
        if all(p.exists() and stored_key(p, MAP_KEY_TAG) == map_key for p in (q_map, r_map)) and (
            not config.save_probs or (out / "probs" / "r" / f"{tile.stem}.tif").exists()
        ):
            bar.skip()
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
