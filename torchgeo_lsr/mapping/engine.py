"""Whole-region prediction on Lightning: one tile per item, written per rank.

``torchgeo-lsr map`` predicts through :meth:`lightning.pytorch.Trainer.predict`, so the
same code runs on one CPU, on several GPUs, or on several nodes under the DDP
strategies: Lightning hands each rank a disjoint set of tiles (no tile is predicted
twice), :class:`TilePredictor` runs the exact windowed inference of
:func:`~torchgeo_lsr.mapping.predict.predict_windows` on it, and :class:`QTileWriter`, a
:class:`~lightning.pytorch.callbacks.BasePredictionWriter`, writes each window of q as
it is computed, from the rank that computed it: a tile's q is never whole in memory
(unless the region is small enough to be held, ``hold``).

q is stored as ``uint16`` (q x 65535, rounded) whether it is kept in memory or written to
a work file, so a run on one process and a run on many give the same bytes. Each work
file carries the key of the checkpoint that made it (``LSR_KEY``) and its per-class sum
(``LSR_QSUM``), so the region mean of q, the denominator of the implicit posterior,
needs no second read of q and a rerun skips finished tiles.

.. versionadded:: 0.1
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import rasterio
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from rasterio.windows import Window
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..datasets.grid import Grid
from ..formats import MAP_KEY_TAG
from ..outputs import RasterDigest, atomic_output
from .predict import Span, predict_windows

__all__ = [
    "Q_SCALE",
    "QTileWriter",
    "TileDataset",
    "TilePredictor",
    "TileWindows",
    "dequantize",
    "q_sum",
    "quantize",
    "read_q_sum",
]

#: q is stored as ``round(q * Q_SCALE)`` in ``uint16``.
Q_SCALE = 65535


def quantize(q: Tensor) -> Tensor:
    """``(K, H, W)`` probabilities in [0, 1] to ``uint16`` codes ``round(q * 65535)``.

    Example:
        >>> quantize(torch.tensor([0.0, 0.5, 1.0])).tolist()
        [0, 32768, 65535]
    """
    codes = torch.round(q.float().clamp(0, 1) * Q_SCALE).to(torch.int32)
    return codes.to(torch.uint16)


def dequantize(codes: Tensor) -> Tensor:
    """Inverse of :func:`quantize` (float32), exact to ``1 / 131070``."""
    return codes.to(torch.float32) / Q_SCALE


def read_q_sum(path: str | os.PathLike[str], key: str) -> tuple[Tensor, int] | None:
    """Per-class sum of q and pixel count of a finished work file, None if stale or absent.

    Args:
        path: work file.
        key: the key the file must carry (a different checkpoint or window is stale).
    """
    if not os.path.exists(path):
        return None
    with rasterio.open(path) as src:
        tags = src.tags()
        count = src.height * src.width
    if tags.get(MAP_KEY_TAG) != key or "LSR_QSUM" not in tags:
        return None
    return torch.tensor(json.loads(tags["LSR_QSUM"]), dtype=torch.float64), count


def q_sum(codes: Tensor) -> Tensor:
    """Per-class sum of the dequantised q of ``(K, H, W)`` codes, in float64."""
    return codes.to(torch.float64).sum(dim=(1, 2)) / Q_SCALE


class TileDataset(Dataset[dict[str, Tensor]]):
    """One whole imagery tile per item: ``{"image": (C, H, W), "index": ()}``.

    Samples are tensor-only; ``index`` refers to ``paths``. The image keeps its stored
    dtype (NAIP: uint8); :class:`TilePredictor` normalises it.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Initialise a new TileDataset.

        Args:
            paths: imagery tiles (GeoTIFF).
        """
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        """Number of tiles."""
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Read tile ``index``."""
        with rasterio.open(self.paths[index]) as src:
            image = torch.from_numpy(src.read())
        return {"image": image, "index": torch.tensor(index)}


class TilePredictor(LightningModule):
    """Exact windowed inference of a fully convolutional network, one tile per step.

    ``predict_step`` returns a :class:`TileWindows`: the tile's uint16 q codes
    (:func:`quantize`) window by window, on the CPU, computed as they are read.
    """

    def __init__(
        self,
        model: nn.Module,
        margin: int,
        window: int = 1024,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 255.0,
    ):
        """Initialise a new TilePredictor.

        Args:
            model: network returning logits ``(B, K, h, w)``.
            margin: half its receptive field (``(rf - 1) // 2``).
            window: input window side in pixels.
            mean: per-band mean (or one value) subtracted from the imagery, as in training.
            std: per-band scale (or one value) dividing it; the defaults are ``x / 255``.
        """
        super().__init__()
        self.model = model
        self.margin = margin
        self.window = window
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer(
            "mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def _normalise(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std

    def _forward(self, x: Tensor) -> Tensor:
        """The network on one window, under the trainer's precision (``16-mixed`` ...).

        The windows run after ``predict_step`` has returned (when the writer reads them),
        outside the autocast context Lightning holds around the step, so each window
        enters it itself; no context stays open while the generator waits.
        """
        trainer = self._trainer
        if trainer is None:
            logits: Tensor = self.model(x)
            return logits
        with trainer.precision_plugin.forward_context():
            logits = self.model(x)
        return logits

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> TileWindows:
        """The batch's tile as a :class:`TileWindows` (the loader uses ``batch_size=1``).

        The windows are computed as they are consumed (by :class:`QTileWriter`, inside
        the prediction loop), so only one window's q is in memory at a time.
        """
        if batch["image"].shape[0] != 1:
            raise ValueError("TilePredictor predicts one tile per batch (batch_size=1)")
        image = batch["image"][0]
        windows = predict_windows(
            self._forward, image, self.margin, self.window, self.device, self._normalise
        )
        codes = ((keep, quantize(q)) for keep, q in windows)
        _, height, width = image.shape
        return TileWindows(int(batch["index"][0]), height, width, codes)


class TileWindows:
    """One tile's q as :meth:`TilePredictor.predict_step` returns it: window by window.

    A plain class, not a dataclass: Lightning's ``return_predictions=True`` passes it
    through as it is (it would deep-copy a dataclass, and the iterator with it), so
    ``trainer.predict(TilePredictor(...))`` without a writer returns one per tile, each
    to :meth:`assemble` once.

    Attributes:
        index: the tile's index in the :class:`TileDataset`.
        height: the tile's rows.
        width: the tile's columns.
        windows: ``(keep, codes)`` pairs, ``keep = (row, col, h, w)`` and ``codes`` the
            ``(K, h, w)`` uint16 q there (:func:`quantize`); the parts cover the tile and
            do not overlap. An iterator: it can be read once.
    """

    __slots__ = ("height", "index", "width", "windows")

    def __init__(
        self, index: int, height: int, width: int, windows: Iterator[tuple[Span, Tensor]]
    ) -> None:
        """Initialise a new TileWindows (see the attributes)."""
        self.index = index
        self.height = height
        self.width = width
        self.windows = windows

    def __repr__(self) -> str:
        return f"TileWindows(index={self.index}, height={self.height}, width={self.width})"

    def assemble(self) -> Tensor:
        """The whole tile's ``(K, H, W)`` codes (reads :attr:`windows`)."""
        out: Tensor | None = None
        for (r, c, h, w), codes in self.windows:
            if out is None:
                out = torch.empty((codes.shape[0], self.height, self.width), dtype=codes.dtype)
            out[:, r : r + h, c : c + w] = codes
        assert out is not None
        return out


class QTileWriter(BasePredictionWriter):
    """Writes each predicted tile's q from the rank that computed it.

    With ``hold`` (one process only) the codes stay in that dict, keyed by tile stem;
    otherwise each tile goes to ``work_dir/<stem>.tif`` (uncompressed ``uint16``,
    the tile's grid, tags ``LSR_KEY`` and ``LSR_QSUM``), written atomically
    (:func:`~torchgeo_lsr.outputs.atomic_output`).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        work_dir: str | os.PathLike[str],
        key: str,
        hold: dict[str, Tensor] | None = None,
    ) -> None:
        """Initialise a new QTileWriter.

        Args:
            paths: the :class:`TileDataset`'s tiles (their grids are the outputs' grids).
            work_dir: directory of the work files.
            key: tag identifying the checkpoint and window.
            hold: keep codes in this dict instead of writing files.
        """
        super().__init__(write_interval="batch")
        self.paths = [Path(p) for p in paths]
        self.work_dir = Path(work_dir)
        self.key = key
        self.hold = hold

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Store one tile's q, window by window as :class:`TilePredictor` computes it."""
        tile_q: TileWindows = prediction
        tile = self.paths[tile_q.index]
        if self.hold is not None:
            self.hold[tile.stem] = tile_q.assemble()
            return
        target = self.work_dir / f"{tile.stem}.tif"
        windows = iter(tile_q.windows)
        first = next(windows)
        profile = Grid.of_raster(tile).profile(first[1].shape[0], "uint16", compress=None)
        # integer sums: exactly the float64 sum of the whole tile's codes, however split
        total = torch.zeros(first[1].shape[0], dtype=torch.int64)
        digest = RasterDigest(target)
        with (
            atomic_output(target, digest.check) as partial,
            rasterio.open(partial, "w", **profile) as dst,
        ):
            for (r, c, h, w), codes in itertools.chain([first], windows):
                window, data = Window(c, r, w, h), codes.numpy()
                dst.write(data, window=window)
                digest.update(window, data)
                total += codes.sum(dim=(1, 2), dtype=torch.int64)
            dst.update_tags(
                **{MAP_KEY_TAG: self.key},
                LSR_QSUM=json.dumps((total.to(torch.float64) / Q_SCALE).tolist()),
                LSR_RANK=str(trainer.global_rank),
            )


class CheckpointEntry(Callback):
    """Write ``{key: value}`` into every checkpoint the trainer saves.

    ``map`` records there (``last.ckpt``, ``final.ckpt``) the normalisation the network
    was trained with.

    Args:
        key: the checkpoint dictionary's key.
        value: a picklable, ``weights_only``-loadable value (lists, numbers, strings).
    """

    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[self.key] = self.value
