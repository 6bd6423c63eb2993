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
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

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
    RasterOutput,
    class_map_output,
    probabilities_output,
    uncertainty_codes,
    uncertainty_output,
)
from .predict import implicit_posterior_map

__all__ = [
    "BAND_PIXELS",
    "Q_MEMORY_BYTES",
    "load_model",
    "predict_region",
    "prior_argmax_maps",
    "row_bands",
]


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
#: passes when prediction runs in this process; larger ones write it to work files
#: window by window, so memory does not grow with the tile or the region.
Q_MEMORY_BYTES = 256 * 1024**2


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
        q_sum,
        read_q_sum,
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
        # first: the writer computes the tile (TileWindows is lazy), then progress counts it
        trainer.callbacks.insert(0, writer)
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
        files = _tile_outputs(out, tile.stem, config)
        for f in files:
            if f.kind != "probs":
                written.setdefault(f.layer or f.source, []).append(f.path)
        stale = [f for f in files if stored_key(f.path, MAP_KEY_TAG) != map_key]
        if not stale:
            bar.skip()
            continue
        q_codes = held[tile.stem] if in_memory else work / f"{tile.stem}.tif"
        prior = priors / f"{tile.stem}.tif"
        _write_tile(stale, q_codes, prior, grids[tile.stem], q_mean, scheme, tags)
        bar.update(item=tile.stem)
    bar.close()
    return written


#: Pass 2 works through a tile in bands of whole rows of about this many pixels (a
#: multiple of 256 rows, the block height of the rasters it reads and writes).
BAND_PIXELS = 1 << 21


def row_bands(grid: Grid, pixels: int = BAND_PIXELS) -> list[Window]:
    """Windows of whole rows covering ``grid``, about ``pixels`` each, 256-row aligned.

    Example:
        >>> from rasterio.transform import from_origin
        >>> grid = Grid("EPSG:26917", from_origin(0, 0, 1, 1), 600, 1000)
        >>> [(w.row_off, w.height) for w in row_bands(grid, 300_000)]
        [(0, 256), (256, 256), (512, 88)]
    """
    rows = max(256, pixels // max(1, grid.width) // 256 * 256)
    return [
        Window(0, top, grid.width, min(rows, grid.height - top))
        for top in range(0, grid.height, rows)
    ]


def _write_tile(
    files: list[_Output],
    q_codes: torch.Tensor | Path,
    prior_path: Path,
    grid: Grid,
    q_mean: torch.Tensor,
    scheme: ClassScheme,
    tags: dict[str, str],
) -> None:
    """Write ``files`` of one tile a band of rows at a time (see :func:`row_bands`).

    ``q_codes``: the tile's uint16 q, held in memory or its work file. Every output is
    open at once and published, one after the other, when the last band is written; an
    error before then leaves none (a failed check while publishing may leave the ones
    published before it, which a rerun keeps: they are complete and keyed).
    """
    from .engine import dequantize

    need_r = any(f.source == "r" for f in files)
    with ExitStack() as stack:
        sinks = [(f, stack.enter_context(_open_output(f, grid, scheme, tags))) for f in files]
        held = isinstance(q_codes, torch.Tensor)
        work = None if held else stack.enter_context(rasterio.open(q_codes))
        prior_src = stack.enter_context(rasterio.open(prior_path)) if need_r else None
        for window in row_bands(grid):
            if work is None:
                assert isinstance(q_codes, torch.Tensor)
                rows = slice(window.row_off, window.row_off + window.height)
                codes = q_codes[:, rows]
            else:
                codes = torch.from_numpy(work.read(window=window).astype(np.uint16, copy=False))
            probs = {"q": dequantize(codes)}
            if prior_src is not None:
                prior = torch.from_numpy(read_prior(prior_src, window))
                probs["r"], _ = implicit_posterior_map(probs["q"], prior, q_mean, DEFAULT_SMOOTHING)
            for f, sink in sinks:
                p = probs[f.source]
                if f.kind == "classes":
                    # numpy's argmax over the leading axis is ~3x faster than torch's here
                    sink.write(np.argmax(p.numpy(), axis=0).astype(np.uint8), window)
                elif f.kind == "probs":
                    sink.write(p.numpy(), window)
                else:
                    sink.write(uncertainty_codes(p, f.quantity), window)


def _open_output(
    f: _Output, grid: Grid, scheme: ClassScheme, tags: dict[str, str]
) -> AbstractContextManager[RasterOutput]:
    if f.kind == "classes":
        return class_map_output(f.path, grid, scheme, tags)
    if f.kind == "probs":
        return probabilities_output(f.path, grid, scheme, tags)
    return uncertainty_output(f.path, grid, f.layer, scheme, tags)


def prior_argmax_maps(region: Region, priors: Path, out: Path, scheme: ClassScheme) -> list[Path]:
    """Class maps of each prior's argmax (``out/prior_argmax/<tile>.tif``), a baseline.

    Read and written a band of rows at a time (:func:`row_bands`).
    """
    paths = []
    for prior in prior_files(region, priors):
        grid = Grid.of_raster(prior)
        target = out / "prior_argmax" / prior.name
        with rasterio.open(prior) as src, class_map_output(target, grid, scheme) as sink:
            for window in row_bands(grid):
                p = src.read(window=window)
                sink.write(np.where(p.sum(0) > 0, p.argmax(0), NODATA).astype(np.uint8), window)
        paths.append(target)
    return paths
