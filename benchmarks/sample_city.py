#!/usr/bin/env python3
"""Accuracy on the generated sample city: QR, RQ and the cross-entropy baselines.

Every method goes through the same public entry point a user calls
(:func:`torchgeo_lsr.mapping.map_region`): same city, same prior, same network, same
training budget and seed; only the loss differs. The prior is built once and reused.
Scores are against the city's hi-res labels (never used in training), for the network
output q, the implicit posterior r (region-level denominator) and the prior's argmax.

Every figure is over several generated cities (``--city-seeds``, default 0 1 2): the
recipe was tuned on city 0, so one city says little.

Usage: ``python benchmarks/sample_city.py [--quick] [--out FILE.json] [--city-seeds 0 1 2]
[--seeds 0 1 2] [--methods qr hard_naive ...]``.
JSON: per method ``acc_q``, ``miou_q``, ``acc_r``, ``miou_r`` as ``{"mean", "sd",
"runs"}`` over every (city, seed) run, the same per city (``per_city``), per-class IoU of
r per run (``iou_r_per_class``), plus ``prior_argmax`` and the settings. The
cross-entropy baselines skip the config's warm-up (same step budget).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from torchgeo_lsr.classes import get_scheme
from torchgeo_lsr.mapping import MapConfig, map_region
from torchgeo_lsr.outputs import write_json
from torchgeo_lsr.sample_city import make_sample_city

DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "map" / "demo.yaml"
METHODS = {"qr": "qr", "rq": "rq", "em": "em", "hard_naive": "ce_hard", "soft_ce": "ce_soft"}
#: The cross-entropy baselines train on their own loss from the first step (no warm-up).
BASELINES = {"ce_hard", "ce_soft"}


def _stat(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "runs": values,
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # quick: the demo's settings (configs/map/demo.yaml) on the default 4 x 512 px city;
    # full: the same network trained 4x longer on a 4 x 1024 px city, with 2 warm-up
    # epochs (200 of 1,000 steps) instead of 1 (100 of 250). Every generated city
    # (--city-seeds) is mapped with every training seed (--seeds).
    tiles, size = (4, 512) if args.quick else (4, 1024)
    base = MapConfig.from_yaml(DEMO_CONFIG)
    if not args.quick:
        base = dataclasses.replace(base, steps=4 * base.steps, warmup_epochs=2 * base.warmup())
    if args.config_overrides:
        base = dataclasses.replace(base, **json.loads(args.config_overrides))
    keys = ("acc_q", "miou_q", "acc_r", "miou_r")
    rows: dict[str, dict[str, list[float]]] = {m: {k: [] for k in keys} for m in args.methods}
    per_city: dict[str, dict[str, dict[str, list[float]]]] = {}
    prior_row: dict[str, list[float]] = {"acc": [], "miou": []}
    per_class: dict[str, list[list[float | None]]] = {m: [] for m in args.methods}
    timings: dict[str, float] = {}
    for city_seed in args.city_seeds:
        region = work / f"city{city_seed}"
        if not (region / "city.json").exists():
            make_sample_city(region, seed=city_seed, tiles=tiles, size=size, progress=False)
        city = per_city.setdefault(str(city_seed), {})
        prior_dir: Path | None = None
        for method in args.methods:
            config = dataclasses.replace(base, loss=METHODS[method])
            if config.loss in BASELINES:
                config = dataclasses.replace(config, warmup_epochs=0)
            city[method] = {k: [] for k in keys}
            for seed in args.seeds:
                name = f"city{city_seed}_{method}_seed{seed}"
                out = work / name
                if prior_dir is not None and not (out / "prior").exists():
                    shutil.copytree(prior_dir, out / "prior")  # same prior, built once
                start = time.perf_counter()
                summary = map_region(
                    region, out, dataclasses.replace(config, seed=seed), progress=False
                )
                timings[name] = round(time.perf_counter() - start, 1)
                prior_dir = prior_dir or out / "prior"
                m = summary["metrics"]
                per_class[method].append(m["r"]["iou"])
                for which in ("q", "r"):
                    for target in (rows[method], city[method]):
                        target[f"acc_{which}"].append(m[which]["accuracy"])
                        target[f"miou_{which}"].append(m[which]["miou"])
                if method == args.methods[0]:
                    prior_row["acc"].append(m["prior_argmax"]["accuracy"])
                    prior_row["miou"].append(m["prior_argmax"]["miou"])
                print(
                    f"{name}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in city[method].items()),
                    flush=True,
                )
    return {
        "benchmark": "sample_city",
        "quick": args.quick,
        "city": {"tiles": tiles, "size_px": size, "seeds": args.city_seeds},
        "config": dataclasses.asdict(base),
        "seeds": args.seeds,
        "methods": {name: {k: _stat(v) for k, v in row.items()} for name, row in rows.items()},
        "per_city": {
            c: {name: {k: _stat(v) for k, v in row.items()} for name, row in methods.items()}
            for c, methods in per_city.items()
        },
        "prior_argmax": {"acc": _stat(prior_row["acc"]), "miou": _stat(prior_row["miou"])},
        "classes": list(get_scheme(base.classes).names),
        "iou_r_per_class": per_class,  # method -> per-class IoU of r per run (city, seed)
        "timings_s": timings,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }


def table(result: dict[str, Any]) -> str:
    """Markdown table: per method q and r, then the prior's argmax (and the coarse map)."""
    lines = ["| method | acc q | mIoU q | acc r | mIoU r |", "|---|---|---|---|---|"]
    for name, row in result["methods"].items():
        cells = [
            f"{row[k]['mean']:.3f} ± {row[k]['sd']:.3f}"
            for k in ("acc_q", "miou_q", "acc_r", "miou_r")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in ("prior_argmax", "coarse"):
        if name in result:
            row = result[name]
            cells = f"{row['acc']['mean']:.3f} | {row['miou']['mean']:.3f}"
            lines.append(f"| {name.replace('_', ' ')} | {cells} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 x 512 px city, demo settings")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="training seeds (default: 0 quick, 0 1 2 full)"
    )
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=list(METHODS), help="losses to run"
    )
    parser.add_argument(
        "--city-seeds", type=int, nargs="+", default=[0, 1, 2], help="generated cities to map"
    )
    parser.add_argument("--work", type=Path, help="keep runs here (default: a temp dir)")
    parser.add_argument(
        "--config-overrides", help="JSON of MapConfig fields, e.g. '{\"num_filters\": 64}'"
    )
    args = parser.parse_args(argv)
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args, args.work or Path(tmp))
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)  # atomic, read back
    return result


if __name__ == "__main__":
    main()
