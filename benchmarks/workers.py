#!/usr/bin/env python3
"""Many tiles on one machine: ``build_region_priors`` with 1 worker against 2, in one run.

A generated region (:func:`torchgeo_lsr.sample_city.make_sample_city`, seed 0; 8 tiles of
1,024 px, ``--quick`` 4 tiles of 512 px), written once into a cache directory. The priors
(default :class:`~torchgeo_lsr.priors.PriorConfig`) are built ``--repeats`` times at
``workers=1`` and ``workers=2``, interleaved (1, 2, 1, 2, ...), each into a fresh output
directory, so both see the same machine; the times are medians of wall seconds of
everything a caller waits for: opening the region, planning, the pool, writing and
checking the files. A warm-up run at 2 workers comes first: it starts the forkserver the
workers are forked from (once per process; a fresh ``torchgeo-lsr prior --workers 2``
pays it every time), reported apart as ``pool_start_s``. The outputs of every run are
compared byte for byte with the warm-up's.

Usage: ``python benchmarks/workers.py [--quick] [--repeats N] [--out FILE.json]
[--cache DIR]``. Writes JSON: ``prior_s`` (``{"1": s, "2": s}``, medians),
``prior_runs_s`` (every run), ``prior_speedup`` (1-worker time / 2-worker time),
``warmup_s`` (the first 2-worker run) and ``pool_start_s`` (it less the 2-worker median:
what starting the forkserver costs), ``identical`` (every run's files are the same
bytes), ``tiles``, ``tile_size_px``, ``pixels``, ``cpus`` (usable by this process),
``load_avg`` (the 1-minute load when the script started) and ``contended`` (it was 1 or
more: other work shared the CPUs, every figure is slower and noisier, and the speed-up
smaller), ``versions`` and the settings. On 2 cores the speed-up
is at most 2, less what one process already runs in parallel (torch threads, GDAL's
compression threads). Then, unless ``--skip-prediction``, the prediction of the same region
(:func:`prediction_times`): ``predict_s`` (``{"1": s, "2": s}``: one process, two CPU
ranks of Lightning's ``ddp_spawn``), ``predict_runs_s``, ``predict_speedup`` and
``predict_same_maps`` (the class maps of every run agree).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torchgeo

import torchgeo_lsr
from torchgeo_lsr.priors import PriorConfig, build_region_priors
from torchgeo_lsr.sample_city import make_sample_city

#: (tiles, side in px) of the full run and of ``--quick``.
FULL, QUICK = (8, 1024), (4, 512)
#: Worker counts compared.
WORKERS = (1, 2)


def make_region(cache: Path, tiles: int, size: int) -> Path:
    """The generated region of ``tiles`` tiles of ``size`` px (written once, then reused)."""
    root = cache / f"workers_city_{tiles}x{size}"
    if not (root / "naip").is_dir():
        make_sample_city(root, seed=0, tiles=tiles, size=size, overwrite=True, progress=False)
    return root


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.tif"))}


def prior_times(
    region: Path, scratch: Path, repeats: int, config: PriorConfig
) -> tuple[dict[str, list[float]], float, bool]:
    """Wall seconds of each ``build_region_priors`` run per worker count, interleaved.

    Returns:
        ``{"1": [...], "2": [...]}``, the warm-up run's seconds (it starts the pool's
        server) and whether every run's files are byte-identical to the first one's.
    """
    start = time.perf_counter()
    build_region_priors(region, scratch / "warmup", config, progress=False, workers=max(WORKERS))
    warmup = time.perf_counter() - start
    reference = _files(scratch / "warmup")
    runs: dict[str, list[float]] = {str(w): [] for w in WORKERS}
    identical = True
    for repeat in range(repeats):
        for workers in WORKERS:
            out = scratch / f"w{workers}_r{repeat}"  # fresh: nothing to resume
            start = time.perf_counter()
            report = build_region_priors(region, out, config, progress=False, workers=workers)
            runs[str(workers)].append(time.perf_counter() - start)
            assert not report.skipped
            identical &= _files(out) == reference
            shutil.rmtree(out)
    return runs, warmup, identical


def _maps(out: Path) -> dict[str, np.ndarray]:
    """The q and r class maps of a prediction, ``"q/<tile>"`` -> its classes."""
    maps = {}
    for folder in ("q", "r"):
        for path in sorted((out / folder).glob("*.tif")):
            with rasterio.open(path) as src:
                maps[f"{folder}/{path.stem}"] = src.read(1)
    return maps


def prediction_times(
    region: Path, scratch: Path, repeats: int
) -> tuple[dict[str, list[float]], bool]:
    """Wall seconds of ``predict_region`` on 1 process and on 2 (CPU DDP), interleaved.

    One network (the demo's architecture, trained 20 steps: the speed of prediction does
    not depend on how well it is trained) predicts the whole region; ``"1"`` is one process
    (torch's threads over every core), ``"2"`` two ranks of ``ddp_spawn`` on the CPU, each
    predicting and writing its own tiles (rank 0 then writes the maps). Every run goes to a
    fresh output directory.

    Returns:
        ``{"1": [...], "2": [...]}`` and whether every run's q and r class maps hold the
        same classes as the first one-process run's (their files' tags carry the region
        mean of q, whose last digits depend on how many threads ran the network).
    """
    from torchgeo_lsr.mapping import MapConfig, map_region
    from torchgeo_lsr.mapping.prediction import predict_region

    with rasterio.open(next((region / "naip").glob("*.tif"))) as src:
        patch = min(MapConfig.patch_size, src.height, src.width)  # a miniature test region
    base = MapConfig(steps=20, warmup_epochs=0, patch_size=patch, accelerator="cpu")
    trained = scratch / "trained"
    map_region(region, trained, base, progress=False)
    checkpoint = trained / "checkpoints" / "final.ckpt"
    configs = {"1": base, "2": dataclasses.replace(base, devices=2, strategy="ddp_spawn")}
    runs: dict[str, list[float]] = {k: [] for k in configs}
    reference: dict[str, np.ndarray] | None = None
    identical = True
    for repeat in range(repeats):
        for name, config in configs.items():
            out = scratch / f"predict{name}_r{repeat}"
            start = time.perf_counter()
            predict_region(region, trained / "prior", out, checkpoint, config, progress=False)
            runs[name].append(time.perf_counter() - start)
            maps = _maps(out)
            reference = reference if reference is not None else maps
            identical &= maps.keys() == reference.keys() and all(
                np.array_equal(maps[k], reference[k]) for k in maps
            )
            shutil.rmtree(out)
    return runs, identical


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the prior at 1 and 2 workers; print and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]} tiles of {QUICK[1]} px")
    parser.add_argument("--repeats", type=int, default=3, help="runs per worker count (median)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "workers.json"
    )
    parser.add_argument("--cache", type=Path, default=None, help="where the region is kept")
    parser.add_argument(
        "--skip-prediction", action="store_true", help="time the prior only (no DDP runs)"
    )
    args = parser.parse_args(argv)
    tiles, size = QUICK if args.quick else FULL
    cache = args.cache or Path(tempfile.gettempdir()) / "torchgeo_lsr_bench"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # before our work
    region = make_region(cache, tiles, size)
    config = PriorConfig()
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        runs, warmup, identical = prior_times(region, Path(scratch), args.repeats, config)
        predicted = None
        if not args.skip_prediction:
            predicted = prediction_times(region, Path(scratch), args.repeats)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    result: dict[str, Any] = {
        "benchmark": "workers",
        "quick": args.quick,
        "region": f"make_sample_city(seed=0, tiles={tiles}, size={size})",
        "tiles": tiles,
        "tile_size_px": size,
        "pixels": tiles * size * size,
        "repeats": args.repeats,
        "prior": (
            "build_region_priors, default PriorConfig (blur 'fast', kernel 101, sigma 31, "
            f"window {config.window}, {config.dtype}), fresh output directory per run, "
            "workers 1 and 2 interleaved; wall seconds, medians"
        ),
        "prior_s": medians,
        "prior_runs_s": runs,
        "prior_speedup": medians["1"] / medians["2"],
        "warmup_s": warmup,
        "pool_start_s": max(0.0, warmup - medians["2"]),
        "identical": identical,
        "cpus": _cpus(),
        "load_avg": load,
        "contended": load is not None and load >= 1.0,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchgeo": torchgeo.__version__,
            "torchgeo_lsr": torchgeo_lsr.__version__,
            "rasterio": rasterio.__version__,
            "gdal": rasterio.__gdal_version__,
        },
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
    }
    if predicted is not None:
        pruns, same = predicted
        pmed = {k: statistics.median(v) for k, v in pruns.items()}
        result |= {
            "predict": (
                "predict_region of the demo's network (FCN 5 x 16) on the same region: one "
                "process (torch threads over every core) against two CPU ranks of ddp_spawn "
                "(each its own tiles); wall seconds, medians, interleaved"
            ),
            "predict_s": pmed,
            "predict_runs_s": pruns,
            "predict_speedup": pmed["1"] / pmed["2"],
            "predict_same_maps": same,
        }
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
