#!/usr/bin/env python3
"""Whole-region prediction time against the network's pure forward time, same pixels.

Both are measured in one run on the generated sample city with the same trained network:

* ``forward_s``: the network alone, one forward pass per tile over the whole tile, on
  tensors already in memory, channels-last as prediction runs them on a CPU (the floor);
* ``predict_s``: the real prediction stage of ``torchgeo-lsr map``
  (:func:`torchgeo_lsr.mapping.prediction.predict_region`): reading tiles, windowed inference
  with receptive-field margins, the region-level denominator, the implicit posterior,
  and writing q and r class-map COGs.

``overhead = predict_s / forward_s`` (goal <= 1.3). Usage:
``python benchmarks/mapping.py [--quick] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import rasterio
import torch

from torchgeo_lsr.mapping import MapConfig, map_region
from torchgeo_lsr.mapping.prediction import load_model, predict_region
from torchgeo_lsr.models import cpu_channels_last
from torchgeo_lsr.outputs import write_json

DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "map" / "demo.yaml"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 x 512 px tiles (else 4 x 2048)")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    args = parser.parse_args(argv)
    size = 512 if args.quick else 2048
    torch.set_num_threads(2)
    config = dataclasses.replace(
        MapConfig.from_yaml(DEMO_CONFIG), steps=20, warmup_epochs=0, accelerator="cpu"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from torchgeo_lsr.sample_city import make_sample_city

        region = make_sample_city(work / "city", tiles=4, size=size, progress=False).root
        map_region(region, work / "map", config, progress=False)  # priors + a trained model
        checkpoint = work / "map" / "checkpoints" / "final.ckpt"
        model = load_model(checkpoint).model
        tiles = sorted((region / "naip").glob("*.tif"))
        images = []
        for tile in tiles:
            with rasterio.open(tile) as src:
                image = torch.from_numpy(src.read()).float()[None] / 255
                images.append(cpu_channels_last(image))  # prediction's layout: the same floor
        pixels = sum(int(x.shape[-1] * x.shape[-2]) for x in images)

        forward, predict = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                for x in images:
                    torch.softmax(model(x), dim=1)
            forward.append(time.perf_counter() - start)

            out = work / "pred"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            predict_region(region, work / "map" / "prior", out, checkpoint, config, progress=False)
            predict.append(time.perf_counter() - start)

    result = {
        "benchmark": "mapping",
        "quick": args.quick,
        "tiles": len(tiles),
        "tile_size_px": size,
        "pixels": pixels,
        "network": {"num_filters": config.num_filters, "num_layers": config.num_layers},
        "window_px": config.window,
        "forward_s": min(forward),
        "predict_s": min(predict),
        "overhead": min(predict) / min(forward),
        "runs": {"forward_s": forward, "predict_s": predict},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "threads": torch.get_num_threads(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)  # atomic, read back
    return result


if __name__ == "__main__":
    main()
