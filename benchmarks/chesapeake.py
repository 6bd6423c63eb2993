#!/usr/bin/env python3
"""Real 1 m NAIP: label super-resolution on 8 Chesapeake Land Cover patches (West Virginia).

Data: ``../shared/data/chesapeake_wv/`` (read from there, never copied into the project):
eight 256 x 256 px patches of NAIP quarter quad ``m_3708020_sw`` (2014, R, G, B, NIR) with
the Chesapeake Conservancy land cover, NLCD 2011 on the 1 m grid and Microsoft building
footprints, from the CVPR 2019 code of Robinson et al., "Large Scale High-Resolution Land
Cover Mapping with Multi-Resolution Data" (CVPR 2019; Chesapeake Land Cover on LILA).

Protocol (the paper's, on a small scale):

* the patches become a Chesapeake CVPR release of their own in a cache directory (EPSG:26917,
  1 m, each patch placed at its pixel offset in its NAIP tile, as ``patches.csv`` gives it),
  so every run goes through ``torchgeo-lsr map``'s own code path (:func:`map_region`);
* k folds over patches (patch ``i`` in fold ``i % k``), so every patch is scored once: the
  co-occurrence P(class | NLCD) is estimated on the labelled patches of the *other* folds
  (NLCD classes they never show back off to Pittsburgh's EnviroAtlas matrix), and mapping is
  transductive on the scored fold's imagery, NLCD and building footprints, as in the paper;
* methods, all with the same network and step budget: ``recipe`` (map's default: QR after
  the EM warm-up), ``qr`` (QR alone), ``rq``, ``em``, ``hard_naive`` (cross-entropy on the
  prior's argmax), ``soft_ce``; ``oracle``: the same FCN trained on the true land cover of
  the other folds, applied to the scored fold (the upper bound of what 1 m labels from
  elsewhere give); ``qr_init_oracle``: the recipe without warm-up, initialised from that
  oracle (the paper's "pretrained" rows, Table D.1);
* baselines without training: ``nlcd_argmax`` (each pixel's NLCD class through the fold's
  matrix, no blur), ``prior_argmax`` (the blurred prior ``map`` trains on) and ``majority``
  (every pixel tree canopy);
* scores pool the confusion matrices of all 8 patches (each scored once): accuracy, mIoU
  over the classes present in labels or map, per-class IoU; also the mean over folds of
  each fold's mIoU and per-patch figures. Four patches are all tree canopy: on them a
  perfect map has mIoU 1 and one stray pixel of another class halves it, so per-fold and
  per-patch means swing with them; the pooled figure weights every pixel once.

Budgets: ``demo`` (``configs/map/demo.yaml``, the CPU budget, ``map``'s default on a CPU)
and ``default`` (the larger budget that was ``map``'s default before issue 18: 600 steps of
16 patches of 128 px, FCN 5 x 32); ``--quick`` runs the demo budget for 150 steps with 2
folds and 2 seeds.

Usage: ``python benchmarks/chesapeake.py [--quick] [--out FILE.json] [--budgets demo default]
[--methods ...] [--seeds 0 1 2] [--folds 4] [--work DIR] [--quicklook PNG]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from torchgeo_lsr.classes import CHESAPEAKE4, NLCD, reference_cooccurrence
from torchgeo_lsr.mapping import MapConfig, evaluate_maps, map_region
from torchgeo_lsr.mapping.evaluate import confusion_matrix, scores
from torchgeo_lsr.mapping.io import quicklook, write_class_map
from torchgeo_lsr.outputs import write_json
from torchgeo_lsr.priors import PriorConfig, fill_unseen
from torchgeo_lsr.priors.builder import estimate_region_cooccurrence
from torchgeo_lsr.region import Region

ROOT = Path(__file__).parents[1]
#: The real patches: $TORCHGEO_LSR_CHESAPEAKE, else beside the project (read in place).
DATA = Path(
    os.environ.get("TORCHGEO_LSR_CHESAPEAKE") or ROOT.parent / "shared" / "data" / "chesapeake_wv"
)
DEMO_CONFIG = ROOT / "configs" / "map" / "demo.yaml"
FOLDER = "wv_1m_2014_extended-debuffered-test_tiles"
#: An origin for the patches' NAIP tile (EPSG:26917): an assumed one, the patches carry none.
ORIGIN = (560_000.0, 4_140_000.0)
K = len(CHESAPEAKE4)
TREE = CHESAPEAKE4.names.index("tree canopy")

#: method -> MapConfig overrides (the recipe is the budget's config itself).
METHODS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "qr": {"warmup_epochs": 0},
    "rq": {"loss": "rq", "warmup_epochs": 0},
    "em": {"loss": "em", "warmup_epochs": 0},
    "hard_naive": {"loss": "ce_hard", "warmup_epochs": 0},
    "soft_ce": {"loss": "ce_soft", "warmup_epochs": 0},
    "oracle": {"loss": "ce_hard", "warmup_epochs": 0, "prior": "labels"},
    "qr_init_oracle": {"warmup_epochs": 0},
}


# ------------------------------------------------------------------------ the data
def patch_id(name: str) -> str:
    """``wv_1m_2014-m_3708020_sw_17_1-3.npz`` -> ``m_3708020_sw_17_1-p3``."""
    stem = name.removesuffix(".npz").split("-", 1)[1]
    tile, number = stem.rsplit("-", 1)
    return f"{tile}-p{number}"


def write_release(data: Path, root: Path) -> list[str]:
    """The patches as a Chesapeake CVPR release under ``root``; returns the patch ids."""
    with open(data / "patches.csv") as f:
        rows = list(csv.DictReader(f))
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ids, boxes = [], []
    for row in rows:
        patch = np.load(data / row["patch_fn"])["patch"]
        pid = patch_id(row["patch_fn"])
        west, north = ORIGIN[0] + int(row["x_coord"]), ORIGIN[1] - int(row["y_coord"])
        size = patch.shape[-1]
        for other in boxes:  # overlapping patches would read each other's NLCD
            if abs(other[0] - west) < size and abs(other[1] - north) < size:
                raise ValueError(f"{row['patch_fn']} overlaps another patch")
        boxes.append((west, north))
        layers = {"naip-new": patch[:4], "lc": patch[4:5], "nlcd": patch[5:6]}
        layers["buildings"] = patch[6:7]
        for layer, array in layers.items():
            target = folder / f"{pid}_{layer}.tif"
            if target.exists():
                continue
            partial = target.with_name(target.name + ".partial")
            with rasterio.open(
                partial,
                "w",
                driver="GTiff",
                count=array.shape[0],
                height=size,
                width=size,
                dtype="uint8",
                crs=CRS.from_epsg(26917),
                transform=from_origin(west, north, 1.0, 1.0),
            ) as dst:
                dst.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (len(array) - 1)
                dst.write(array)
            os.replace(partial, target)
        ids.append(pid)
    return ids


def fold_matrix(release: Path, train: list[str], out: Path) -> tuple[Path, list[int]]:
    """P(class | NLCD) from the training patches, unseen NLCD classes from Pittsburgh."""
    estimate = estimate_region_cooccurrence(
        Region.open(release, tiles=train), PriorConfig(classes="chesapeake4")
    )
    unseen = [NLCD.codes[i] for i in np.flatnonzero(estimate.sum(axis=0) == 0) if i > 0]  # type: ignore[index]
    matrix = fill_unseen(estimate, reference_cooccurrence("pittsburgh", "chesapeake4"))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, matrix)
    return out, unseen


# ------------------------------------------------------------------------ scoring
def patch_confusions(maps: Path, region: Region) -> dict[str, list[list[int]]]:
    """Stem -> confusion matrix of each class map in ``maps`` against the region's labels."""
    out = {}
    for path in sorted(maps.glob("*.tif")):
        out[path.stem] = evaluate_maps([path], region, CHESAPEAKE4).confusion
    return out


def nlcd_argmax(region: Region, matrix: np.ndarray) -> dict[str, list[list[int]]]:
    """Confusions of each pixel's NLCD column argmax (no blur) against the labels."""
    nlcd = region.nlcd()
    best = matrix.argmax(axis=0)
    out = {}
    for image in region.images:
        from torchgeo_lsr.datasets import Grid

        grid = Grid.of_raster(image)
        sample = nlcd[grid]
        pred = np.where(sample["valid"].numpy(), best[sample["mask"].numpy()], 255)
        target = region.read_labels(image.stem, grid, CHESAPEAKE4)
        out[image.stem] = confusion_matrix(target, pred, K).tolist()
    return out


def majority(region: Region) -> dict[str, list[list[int]]]:
    """Confusions of the all-tree-canopy map."""
    from torchgeo_lsr.datasets import Grid

    out = {}
    for image in region.images:
        grid = Grid.of_raster(image)
        target = region.read_labels(image.stem, grid, CHESAPEAKE4)
        out[image.stem] = confusion_matrix(target, np.full_like(target, TREE), K).tolist()
    return out


def summarise(per_patch: dict[str, list[list[int]]], folds: list[list[str]]) -> dict[str, Any]:
    """Pooled accuracy / mIoU / per-class IoU, the mean of fold mIoUs, per-patch figures."""
    total = np.sum([np.array(c) for c in per_patch.values()], axis=0)
    pooled = scores(total, CHESAPEAKE4.names)
    fold_miou = []
    for fold in folds:
        stems = [s for s in per_patch if any(s.startswith(f"{p}_") for p in fold)]
        fold_miou.append(
            scores(np.sum([np.array(per_patch[s]) for s in stems], axis=0), CHESAPEAKE4.names).miou
        )
    patches = {}
    for stem, c in per_patch.items():
        s = scores(np.array(c), CHESAPEAKE4.names)
        patches[stem.removesuffix("_naip-new")] = {"acc": s.accuracy, "miou": s.miou}
    return {
        "acc": pooled.accuracy,
        "miou": pooled.miou,
        "iou": pooled.iou,
        "miou_fold_mean": statistics.fmean(fold_miou),
        "per_patch": patches,
        "confusion": pooled.confusion,
    }


def _stat(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


# ------------------------------------------------------------------------- running
def budget_config(name: str, quick: bool) -> MapConfig:
    """``demo`` (configs/map/demo.yaml, MapConfig's defaults) or ``default``, for chesapeake4.

    ``default`` is MapConfig's defaults before issue 18 made them the demo's (600 steps of
    16 patches of 128 px, FCN 5 x 32), the budget of ``results/chesapeake_default.json``.
    """
    larger = {"steps": 600, "patch_size": 128, "batch_size": 16, "num_filters": 32}
    base = MapConfig.from_yaml(DEMO_CONFIG) if name == "demo" else MapConfig(**larger)
    base = dataclasses.replace(base, classes="chesapeake4", accelerator="cpu")
    if quick:  # 150 steps: one epoch of EM warm-up, then 50 of QR
        base = dataclasses.replace(base, steps=150, warmup_epochs=min(base.warmup(), 1))
    return base


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    release = work / "release"
    ids = write_release(args.data, release)
    folds = [[p for i, p in enumerate(ids) if i % args.folds == f] for f in range(args.folds)]
    matrices, unseen = {}, {}
    for f, scored in enumerate(folds):
        train = [p for p in ids if p not in scored]
        matrices[f], unseen[f] = fold_matrix(release, train, work / f"fold{f}" / "matrix.npy")

    result: dict[str, Any] = {"budgets": {}, "timings_s": {}}
    baselines: dict[str, dict[str, list[list[int]]]] = {"nlcd_argmax": {}, "majority": {}}
    for f, scored in enumerate(folds):
        region = Region.open(release, tiles=scored)
        baselines["nlcd_argmax"] |= nlcd_argmax(region, np.load(matrices[f]))
        baselines["majority"] |= majority(region)
    result["baselines"] = {k: summarise(v, folds) for k, v in baselines.items()}

    for budget in args.budgets:
        base = budget_config(budget, args.quick)
        if args.config_overrides:
            base = dataclasses.replace(base, **json.loads(args.config_overrides))
        rows: dict[str, dict[str, list[Any]]] = {}
        prior_argmax: dict[str, list[list[int]]] = {}
        for method in args.methods:
            rows[method] = {"q": [], "r": []}
            for seed in args.seeds:
                per: dict[str, dict[str, list[list[int]]]] = {"q": {}, "r": {}}
                start = time.perf_counter()
                for f, scored in enumerate(folds):
                    config = dataclasses.replace(
                        base, **METHODS[method], seed=seed, cooccurrence=str(matrices[f])
                    )
                    out = work / budget / method / f"seed{seed}" / f"fold{f}"
                    region = Region.open(release, tiles=scored)
                    prior_cache = work / budget / "prior" / f"fold{f}"
                    if method in ("oracle", "qr_init_oracle"):
                        ckpt = oracle(release, folds, f, base, seed, matrices[f], work / budget)
                        config = dataclasses.replace(config, init_from=str(ckpt), prior="handmade")
                        if method == "oracle":
                            config = dataclasses.replace(config, steps=0)
                    if prior_cache.exists() and not (out / "prior").exists():
                        shutil.copytree(prior_cache, out / "prior")  # same prior, built once
                    map_region(region, out, config, progress=False)
                    if not prior_cache.exists():
                        shutil.copytree(out / "prior", prior_cache)
                    if not any(s.startswith(scored[0]) for s in prior_argmax):
                        prior_argmax |= patch_confusions(out / "prior_argmax", region)
                    for which in ("q", "r"):
                        per[which] |= patch_confusions(out / which, region)
                    if args.quicklook and (budget, method, seed, f) == args.quicklook_run:
                        draw_quicklook(region, out, args.quicklook)
                for which in ("q", "r"):
                    rows[method][which].append(summarise(per[which], folds))
                key = f"{budget}/{method}/seed{seed}"
                result["timings_s"][key] = round(time.perf_counter() - start, 1)
                q, r = rows[method]["q"][-1], rows[method]["r"][-1]
                print(
                    f"{key}: q {q['acc']:.3f} / {q['miou']:.3f}, r {r['acc']:.3f} / "
                    f"{r['miou']:.3f} ({result['timings_s'][key]} s)",
                    flush=True,
                )
        result["budgets"][budget] = {
            "config": dataclasses.asdict(base),
            "prior_argmax": summarise(prior_argmax, folds),
            "methods": {m: _collect(row) for m, row in rows.items()},
        }
    result |= {
        "benchmark": "chesapeake",
        "quick": args.quick,
        "data": str(args.data),
        "patches": ids,
        "folds": folds,
        "unseen_nlcd_per_fold": unseen,
        "seeds": args.seeds,
        "overrides": json.loads(args.config_overrides or "{}"),
        "classes": list(CHESAPEAKE4.names),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    return result


def _collect(row: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean and sd over seeds of the pooled figures; per-class IoU and per-patch per seed."""
    out: dict[str, Any] = {}
    for which, runs in row.items():
        for key in ("acc", "miou", "miou_fold_mean"):
            out[f"{key}_{which}"] = _stat([r[key] for r in runs])
        out[f"iou_{which}_per_seed"] = [r["iou"] for r in runs]
        out[f"per_patch_{which}"] = {
            p: {k: [r["per_patch"][p][k] for r in runs] for k in ("acc", "miou")}
            for p in runs[0]["per_patch"]
        }
    return out


def oracle(
    release: Path,
    folds: list[list[str]],
    f: int,
    base: MapConfig,
    seed: int,
    matrix: Path,
    work: Path,
) -> Path:
    """The FCN trained on the true land cover of every fold but ``f`` (cached per seed)."""
    train = [p for i, fold in enumerate(folds) if i != f for p in fold]
    out = work / "oracle_train" / f"seed{seed}" / f"fold{f}"
    config = dataclasses.replace(base, **METHODS["oracle"], seed=seed, cooccurrence=str(matrix))
    final = out / "checkpoints" / "final.ckpt"
    if not final.exists():
        map_region(Region.open(release, tiles=train), out, config, progress=False)
    return final


def draw_quicklook(region: Region, out: Path, png: Path) -> None:
    """NAIP | NLCD prior | q | r | labels of the region's most mixed patch."""
    from torchgeo_lsr.datasets import Grid

    best, spread = region.images[0], -1.0
    for image in region.images:
        grid = Grid.of_raster(image)
        labels = region.read_labels(image.stem, grid, CHESAPEAKE4)
        counts = np.bincount(labels[labels < K].ravel(), minlength=K) / max(labels.size, 1)
        if 1 - counts.max() > spread:
            best, spread = image, 1 - counts.max()
    grid = Grid.of_raster(best)
    labels_map = out / "labels" / best.name
    write_class_map(
        labels_map,
        region.read_labels(best.stem, grid, CHESAPEAKE4).astype(np.uint8),
        grid,
        CHESAPEAKE4,
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    quicklook(
        best,
        out / "prior" / best.name,
        {
            "q (network)": out / "q" / best.name,
            "r (posterior)": out / "r" / best.name,
            "Chesapeake land cover (not used)": labels_map,
        },
        CHESAPEAKE4,
        png,
        title=f"real NAIP, West Virginia 2014: {best.stem.removesuffix('_naip-new')}",
    )


# --------------------------------------------------------------------------- report
def table(result: dict[str, Any]) -> str:
    """Markdown: per budget and method, pooled acc / mIoU of q and r (mean ± sd over seeds)."""
    lines = []
    for budget, data in result["budgets"].items():
        head = "| method | acc q | mIoU q | acc r | mIoU r | mIoU r (fold mean) |"
        lines += [f"budget {budget}:", head, "|---|---|---|---|---|---|"]
        for name, row in data["methods"].items():
            keys = ("acc_q", "miou_q", "acc_r", "miou_r", "miou_fold_mean_r")
            cells = [f"{row[k]['mean']:.3f} ± {row[k]['sd']:.3f}" for k in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for name, row in [("prior argmax", data["prior_argmax"])] + [
            (k.replace("_", " "), v) for k, v in result["baselines"].items()
        ]:
            lines.append(f"| {name} | {row['acc']:.3f} | {row['miou']:.3f} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="demo budget, 150 steps, 2 folds, 2 seeds"
    )
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--data", type=Path, default=DATA, help="the patches' directory")
    parser.add_argument("--budgets", nargs="+", choices=("demo", "default"), default=None)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="training seeds (default: 0 1 quick, 0 1 2 full)"
    )
    parser.add_argument("--folds", type=int, default=None, help="default 4 (quick: 2)")
    parser.add_argument("--work", type=Path, help="keep runs here (default: a temp dir)")
    parser.add_argument("--quicklook", type=Path, help="PNG of the recipe's first fold, seed 0")
    parser.add_argument(
        "--config-overrides",
        help="JSON of MapConfig fields for every budget, e.g. '{\"sigma\": 15}'",
    )
    args = parser.parse_args(argv)
    if not (args.data / "patches.csv").exists():
        print(f"chesapeake.py: no patches.csv in {args.data} (--data DIR)", file=sys.stderr)
        raise SystemExit(2)
    args.seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    args.folds = args.folds or (2 if args.quick else 4)
    with open(args.data / "patches.csv") as f:
        patches = sum(1 for _ in csv.DictReader(f))
    if not 2 <= args.folds <= patches:  # 1 fold would estimate the matrix on its own labels
        print(f"chesapeake.py: --folds {args.folds}: expected 2 to {patches}", file=sys.stderr)
        raise SystemExit(2)
    args.budgets = args.budgets or (["demo"] if args.quick else ["demo", "default"])
    args.quicklook_run = (args.budgets[0], "recipe", args.seeds[0], args.folds - 1)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, args.work or Path(tmp))
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)  # atomic, read back
    return result


if __name__ == "__main__":
    main()
