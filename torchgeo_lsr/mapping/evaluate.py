"""Score class maps against hi-res labels: accuracy, mIoU, per-class IoU, confusion matrix.

``torchgeo-lsr evaluate PRED --labels LABELS [--classes enviroatlas5]`` reads each
prediction (a class-map GeoTIFF, or a directory of them), reads the labels onto the
prediction's grid (nearest; any CRS), remaps label codes to the class scheme, and writes
``metrics.json`` and ``confusion.png``.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from ..classes import ClassScheme, LabelScheme, get_scheme
from ..datasets.aligned import list_rasters, match_by_stem
from ..datasets.grid import Grid
from ..outputs import save_figure, write_json
from ..region import Region, read_label_file
from .config import EvaluateConfig

__all__ = [
    "Scores",
    "confusion_matrix",
    "evaluate_many",
    "evaluate_maps",
    "run_evaluation",
    "save_confusion",
    "scores",
]


@dataclass
class Scores:
    """Agreement of a map with labels.

    Attributes:
        accuracy: fraction of scored pixels with the right class.
        miou: mean IoU over classes present in the labels or the predictions.
        iou: IoU per class (None where the class is in neither).
        confusion: ``confusion[t][p]`` = pixels of true class ``t`` predicted ``p``.
        pixels: number of scored pixels.
        classes: class names.
        coverage: scored pixels / pixels with a class in the maps: the fraction of the
            maps' valid pixels that have a label (1.0 when the labels cover every mapped
            pixel; less when they are shifted, smaller or have gaps; never 0, which
            :func:`evaluate_maps` refuses).
        notes: what a reader of the figures should know, one line each (partial cover,
            coarser labels); ``torchgeo-lsr evaluate`` prints them as warnings.
    """

    accuracy: float
    miou: float
    iou: list[float | None]
    confusion: list[list[int]]
    pixels: int
    classes: list[str]
    coverage: float = 1.0
    notes: list[str] = field(default_factory=list)


#: :func:`confusion_matrix` counts this many pixels at a time (its work arrays stay small
#: on a full NAIP tile of 42 Mpx).
CONFUSION_CHUNK = 1 << 22


def confusion_matrix(target: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts of (true, predicted) over pixels where both are in ``[0, K)``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1, 255]), np.array([0, 1, 0, 1]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    if target.shape != pred.shape:
        raise ValueError(f"labels {target.shape} and map {pred.shape} differ in shape")
    k = num_classes
    total = np.zeros(k * k, dtype=np.int64)
    t_flat, p_flat = target.reshape(-1), pred.reshape(-1)
    for start in range(0, t_flat.size, CONFUSION_CHUNK):
        t = t_flat[start : start + CONFUSION_CHUNK]
        p = p_flat[start : start + CONFUSION_CHUNK]
        keep = (t >= 0) & (t < k) & (p >= 0) & (p < k)
        flat = t[keep].astype(np.int64) * k + p[keep].astype(np.int64)
        total += np.bincount(flat, minlength=k * k)
    return total.reshape(k, k)


def scores(confusion: np.ndarray, names: Sequence[str]) -> Scores:
    """Accuracy, per-class IoU and mIoU from a confusion matrix."""
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union, strict=True)]
    present = [v for v in iou if v is not None]
    total = int(confusion.sum())
    return Scores(
        accuracy=float(tp.sum() / total) if total else float("nan"),
        miou=float(np.mean(present)) if present else float("nan"),
        iou=iou,
        confusion=confusion.astype(int).tolist(),
        pixels=total,
        classes=list(names),
    )


def evaluate_maps(
    predictions: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    labels: Region | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    scheme: ClassScheme | str = "enviroatlas5",
    label_scheme: LabelScheme | None = None,
) -> Scores:
    """Score class maps (band 1, class indices, 255 = none) against hi-res labels.

    Args:
        predictions: class-map GeoTIFFs or directories of them.
        labels: a :class:`~torchgeo_lsr.region.Region` (each map pairs with the labels of
            the imagery tile it is named after), or label rasters / directories (paired by
            file stem, or one file for every map).
        scheme: the maps' class scheme.
        label_scheme: how the labels are coded; None = the region's own (``enviroatlas``
            for label files).

    Labels are read onto each prediction's grid (nearest), so any CRS works. Only pixels
    with a class in both the map and the labels are scored; when that is some but not all
    of the maps' valid pixels, ``coverage`` says what fraction and the first of ``notes``
    says so in one line (no exception, no ``warnings`` warning: the caller decides).

    Raises:
        ValueError: naming the files, when the maps and labels share no valid pixel (their
            footprints do not overlap, or where they do, one of them holds no class), or a
            label file cannot be read.
    """
    return evaluate_many({"": predictions}, labels, scheme, label_scheme)[""]


def evaluate_many(
    predictions: Mapping[str, str | os.PathLike[str] | Sequence[str | os.PathLike[str]]],
    labels: Region | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    scheme: ClassScheme | str = "enviroatlas5",
    label_scheme: LabelScheme | None = None,
) -> dict[str, Scores]:
    """:func:`evaluate_maps` of several sets of maps of the same tiles, labels read once.

    ``predictions``: name -> class maps (as :func:`evaluate_maps` takes them), every set
    of the same tiles (file stems) on the same grids, e.g. the q, r and prior-argmax maps
    of one ``map`` run. Each tile's labels are read onto its grid once for all the sets.

    Returns:
        name -> its :class:`Scores`, equal to :func:`evaluate_maps` of that set alone.
    """
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    sets = {name: list_rasters(paths, "predictions") for name, paths in predictions.items()}
    names = list(sets)
    preds = sets[names[0]]
    for name in names[1:]:
        if [p.stem for p in sets[name]] != [p.stem for p in preds]:
            raise ValueError(
                f"predictions {name!r}: tiles {[p.stem for p in sets[name]]} are not those "
                f"of {names[0]!r} ({[p.stem for p in preds]})"
            )
    if isinstance(labels, Region):
        labs = [labels.label_path(p.stem) for p in preds]
        coding = label_scheme or labels.label_scheme
    else:
        labs = match_by_stem(preds, list_rasters(labels, "labels"), "labels")
        coding = label_scheme or "enviroatlas"
    k = len(scheme)
    totals = {name: np.zeros((k, k), dtype=np.int64) for name in names}
    mapped = dict.fromkeys(names, 0)
    overlapping = False  # some pair's footprints intersect
    notes = []
    for i, label_path in enumerate(labs):
        grid = Grid.of_raster(preds[i])
        with rasterio.open(label_path) as src:
            overlapping = overlapping or _footprints_meet(src, grid)
            if src.crs == grid.crs and max(src.res) > 1.01 * max(
                abs(grid.transform.a), abs(grid.transform.e)
            ):
                notes.append(
                    f"{Path(label_path).name}: labels at {max(src.res):g} units/px are coarser "
                    f"than {preds[i].name} ({abs(grid.transform.a):g}); scored by nearest"
                )
        target = read_label_file(label_path, grid, scheme, coding)
        for name in names:
            path = sets[name][i]
            with rasterio.open(path) as src:
                if (src.height, src.width) != grid.shape:
                    raise ValueError(f"{path}: not on the grid of {preds[i]}")
                pred = src.read(1)
            totals[name] += confusion_matrix(target, pred, k)
            mapped[name] += int(((pred >= 0) & (pred < k)).sum())
    results = {}
    for name in names:
        result = scores(totals[name], scheme.names)
        if result.pixels == 0:
            why = (
                f"where they overlap, the maps hold no class of {scheme.name!r} or the "
                f"labels none (are they coded as label scheme {coding!r} says?)"
                if overlapping
                else "their footprints do not overlap (another place, or another CRS?)"
            )
            raise ValueError(
                f"maps {_named(sets[name])} and labels {_named(labs)} share no valid pixel: {why}"
            )
        result.coverage = result.pixels / mapped[name]
        result.notes = list(notes)
        if result.coverage < 0.999:
            result.notes.insert(
                0,
                f"the labels cover {100 * result.coverage:.1f} % of the maps' valid pixels "
                f"({result.pixels} of {mapped[name]} px; shifted, smaller or with gaps?); "
                "only the overlap is scored",
            )
        results[name] = result
    return results


def _footprints_meet(src: rasterio.io.DatasetReader, grid: Grid) -> bool:
    """Whether a label raster's footprint intersects a map's grid (in the grid's CRS)."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = src.bounds
    if src.crs is not None and grid.crs is not None and src.crs != grid.crs:
        left, bottom, right, top = transform_bounds(src.crs, grid.crs, left, bottom, right, top)
    g_left, g_bottom, g_right, g_top = rasterio.transform.array_bounds(
        grid.height, grid.width, grid.transform
    )
    return bool(left < g_right and g_left < right and bottom < g_top and g_bottom < top)


def _named(paths: Sequence[Path], most: int = 3) -> str:
    """``a.tif``, ``a.tif, b.tif`` or ``a.tif, b.tif, c.tif and 4 more`` (each file once)."""
    unique = list(dict.fromkeys(str(p) for p in paths))
    shown = ", ".join(unique[:most])
    return shown if len(unique) <= most else f"{shown} and {len(unique) - most} more"


def save_confusion(result: Scores, out: Path, title: str = "") -> Path:
    """Write the row-normalised confusion matrix of ``result`` as a PNG; returns ``out``.

    Drawn by :func:`torchgeo_lsr.plot.plot_confusion` (rate and count in each cell) and
    saved atomically; ``title`` (default: the accuracy and mIoU) over the figure.

    .. versionchanged:: 0.3
       Renamed from ``plot_confusion``, the name of :func:`torchgeo_lsr.plot.plot_confusion`
       (which draws the figure).
    """
    # No matplotlib.use("Agg"): it would switch a notebook's inline backend off.
    from ..plot import plot_confusion as draw_confusion

    fig = draw_confusion(
        np.array(result.confusion, dtype=float),
        result.classes,
        normalize=True,
        show_titles=False,
        suptitle=title or f"accuracy {result.accuracy:.3f}, mIoU {result.miou:.3f}",
    )
    return save_figure(fig, out, dpi=90)


def _strict(value: Any) -> Any:
    """NaN (a class absent from both maps) as JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def run_evaluation(predictions: str | os.PathLike[str], options: EvaluateConfig) -> int:
    """``torchgeo-lsr evaluate``'s work: score, warn, write, print; the exit status.

    Raises:
        ValueError: if the maps and the labels share no valid pixel
            (:func:`evaluate_maps`).
    """
    labels: Region | Path = Path(options.labels)
    if Region.is_region(options.labels):
        labels = Region.open(options.labels)
    result = evaluate_maps(predictions, labels, options.classes, options.label_scheme)
    for note in result.notes:
        print(f"torchgeo-lsr evaluate: warning: {note}", file=sys.stderr)
    if options.out:
        out = Path(options.out)
        metrics = {k: _strict(v) for k, v in asdict(result).items()}
        write_json(out / "metrics.json", metrics)  # strict JSON: no bare NaN
        save_confusion(result, out / "confusion.png")
    per_class = ", ".join(
        f"{n} {v:.3f}" if v is not None else f"{n} -"
        for n, v in zip(result.classes, result.iou, strict=True)
    )
    print(f"accuracy {result.accuracy:.4f}  mIoU {result.miou:.4f}  ({result.pixels} px)")
    print(f"IoU: {per_class}")
    return 0
