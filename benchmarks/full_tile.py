#!/usr/bin/env python3
"""One full NAIP tile through ``torchgeo-lsr map``: time per stage, peak memory, output sizes.

A real NAIP quarter quad is about 7,000 x 6,000 px at 1 m. This benchmark generates a
region of one tile of that size in the real formats (the sample city's generator:
4-band uint8 tiled GeoTIFF in UTM, 30 m NLCD in CONUS Albers, OSM XML, building
footprints GeoJSON, labels; the NAIP and labels cropped to ``--height`` rows), maps it
with the demo budget (``configs/map/demo.yaml``) in a child process, and reports:

* ``stages_s``: wall time of each stage of ``map`` (its ``summary.json`` timings:
  ``normalization``, ``prior``, ``train``, ``predict`` = pass 1, the network over every
  window, plus pass 2, the class maps; ``outputs`` = what follows: VRTs, quicklook,
  the prior-argmax baseline and the scores against the labels);
* ``area_stages_s``: the stages whose cost grows with the area (normalization + prior +
  predict + outputs; training runs a fixed number of steps whatever the area);
  goal on 2 cores: <= 180 s;
* ``peak_rss_gib``: the child's peak resident memory (``ru_maxrss``; goal <= 4 GiB), and
  ``stage_peak_rss_gib``: the highest RSS sampled (every 0.1 s) during each stage;
* ``output_mib``: the size of each output folder (``prior``, ``q``, ``r``, ``work`` ...);
* ``prediction_mpx_s`` (pixels / ``predict_s``) against ``forward_mpx_s``: the trained
  network alone over the same tile, window by window as ``map`` runs it
  (:func:`~torchgeo_lsr.mapping.predict.predict_windows`, outputs discarded), the floor;
  ``predict_over_forward`` is their ratio of times.

The generated region is cached in ``--cache`` (default ``benchmarks/.cache``), keyed by
its size and seed; generating it once takes minutes and several GiB. ``--quick`` maps a
3,500 x 3,000 px tile (a quarter of the area). Usage:
``python benchmarks/full_tile.py [--quick] [--out FILE.json] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from torchgeo_lsr.outputs import write_json

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "configs" / "map" / "demo.yaml"
#: A NAIP quarter quad at 1 m: rows x columns.
FULL = (6000, 7000)
QUICK = (3000, 3500)
#: The stages of ``map``'s ``summary.json`` timings, in order.
STAGES = ("normalization", "prior", "train", "predict", "outputs")
#: The stages whose cost grows with the area mapped.
AREA_STAGES = ("normalization", "prior", "predict", "outputs")


def make_region(cache: Path, height: int, width: int, seed: int = 0) -> Path:
    """A generated region of one ``height`` x ``width`` px tile (cached; see the docstring)."""
    from torchgeo_lsr.sample_city import make_sample_city

    root = cache / f"full_tile_{height}x{width}_seed{seed}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    staging = cache / f".staging_{height}x{width}_seed{seed}"
    shutil.rmtree(staging, ignore_errors=True)
    make_sample_city(staging, seed=seed, tiles=1, size=max(height, width), progress=False)
    crop_region(staging, height, width)
    (staging / "done").write_text("ok\n")
    staging.rename(root)
    return root


def crop_region(root: Path, height: int, width: int) -> None:
    """Crop a generated region's imagery and labels to their top-left ``height`` x ``width``."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    for folder in ("naip", "labels"):
        for path in sorted((root / folder).glob("*.tif")):
            with rasterio.open(path) as src:
                profile = src.profile | {"height": height, "width": width}
                window = Window(0, 0, width, height)
                data = src.read(window=window)
                profile["transform"] = src.window_transform(window)
                colormap = src.colormap(1) if folder == "labels" else None
                tags = src.tags()
            cropped = path.with_suffix(".crop.tif")
            with rasterio.open(cropped, "w", **profile) as dst:
                dst.write(data)
                dst.update_tags(**tags)
                if colormap:
                    dst.write_colormap(1, colormap)
            with rasterio.open(cropped) as check:
                assert np.array_equal(check.read(), data), f"{cropped}: read back differs"
            cropped.replace(path)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(region: Path, out: Path, result_path: Path, steps: int | None = None) -> None:
    """Map ``region`` into ``out`` with the demo budget; write the measurements as JSON.

    ``steps``: train this many steps without warm-up instead (a smoke run of the script).
    """
    import torch

    from torchgeo_lsr.mapping import MapConfig, map_region
    from torchgeo_lsr.mapping.predict import predict_windows
    from torchgeo_lsr.mapping.prediction import load_model

    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), _rss_kib()))
            stop.wait(0.1)

    config = dataclasses.replace(MapConfig.from_yaml(DEMO_CONFIG), accelerator="cpu")
    if steps is not None:
        config = dataclasses.replace(config, steps=steps, warmup_epochs=0)
    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    sampler.start()
    summary = map_region(region, out, config, progress=False)
    stop.set()
    sampler.join()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timings = summary["timings_s"]
    stages = {name: float(timings.get(f"{name}_s", 0.0)) for name in STAGES[:-1]}
    stages["outputs"] = round(float(timings["total_s"]) - sum(stages.values()), 2)
    # the stages in the order they ran, and the highest RSS sampled in each
    stage_peak: dict[str, float] = {}
    start = t0 + float(timings.get("sample_city_s", 0.0))
    for name in STAGES:
        end = start + stages[name]
        inside = [kib for t, kib in samples if start <= t <= end]
        stage_peak[name] = round(max(inside, default=0) / 2**20, 3)
        start = end

    # the network alone over the same tile, window by window, outputs discarded
    task = load_model(out / "checkpoints" / "final.ckpt")
    model = task.model
    margin = (model.receptive_field - 1) // 2
    norm = summary["normalization"]
    mean = torch.tensor(norm["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).reshape(1, -1, 1, 1)
    import rasterio

    tile = sorted((region / "naip").glob("*.tif"))[0]
    with rasterio.open(tile) as src:
        image = torch.from_numpy(src.read())
        pixels = src.height * src.width
    start_f = time.perf_counter()
    for _ in predict_windows(
        model, image, margin, config.window, transform=lambda x: (x.float() - mean) / std
    ):
        pass
    forward_s = time.perf_counter() - start_f
    result = {
        "stages_s": stages,
        "stage_peak_rss_gib": stage_peak,
        "peak_rss_gib": round(peak_kib / 2**20, 3),
        "pixels": pixels,
        "forward_s": round(forward_s, 2),
        "metrics": summary.get("metrics"),
        "config": summary["config"],
        "versions": summary["versions"],
        "threads": torch.get_num_threads(),
    }
    result_path.write_text(json.dumps(result))


def _folder_mib(path: Path) -> float:
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(size / 2**20, 2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="3,500 x 3,000 px (else 7,000 x 6,000)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache")
    parser.add_argument(
        "--size", type=int, nargs=2, metavar=("ROWS", "COLS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--steps", type=int, help="training steps, no warm-up (a smoke run)")
    parser.add_argument("--child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        region, out, result_path = args.child
        child(region, out, result_path, steps=args.steps)
        return {}
    height, width = args.size or (QUICK if args.quick else FULL)
    start = time.perf_counter()
    region = make_region(args.cache, height, width)
    generate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out, result_path = Path(tmp) / "map", Path(tmp) / "result.json"
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        command = [sys.executable, __file__, "--child", str(region), str(out), str(result_path)]
        subprocess.run(
            command + (["--steps", str(args.steps)] if args.steps is not None else []),
            check=True,
            env=env,
        )
        measured = json.loads(result_path.read_text())
        outputs = {p.name: _folder_mib(p) for p in sorted(out.iterdir()) if p.is_dir()}
    stages = measured["stages_s"]
    pixels = measured["pixels"]
    mpx = pixels / 1e6
    result = {
        "benchmark": "full_tile",
        "quick": args.quick,
        "smoke_steps": args.steps,
        "tile_px": [height, width],
        "pixels": pixels,
        "generate_s": round(generate_s, 1),
        "stages_s": stages,
        "area_stages_s": round(sum(stages[name] for name in AREA_STAGES), 2),
        "goal_area_stages_s": 180,
        "peak_rss_gib": measured["peak_rss_gib"],
        "goal_peak_rss_gib": 4,
        "stage_peak_rss_gib": measured["stage_peak_rss_gib"],
        "output_mib": outputs,
        "forward_s": measured["forward_s"],
        "forward_mpx_s": round(mpx / measured["forward_s"], 3),
        "prediction_mpx_s": round(mpx / stages["predict"], 3),
        "predict_over_forward": round(stages["predict"] / measured["forward_s"], 3),
        "metrics": measured["metrics"],
        "config": measured["config"],
        "versions": measured["versions"] | {"python": platform.python_version()},
        "threads": measured["threads"],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)  # atomic, read back
    return result


if __name__ == "__main__":
    main()
