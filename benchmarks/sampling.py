#!/usr/bin/env python3
"""Patch throughput: LSRDataModule against TorchGeo's own path on the same files.

Both sides read the same NAIP-like 4-band uint8 tiles and 5-class float32 prior tiles
(written once into a cache directory) and produce 128 x 128 image + prior patches in one
process (``num_workers=0``), batch size 16:

* ours: ``LSRDataModule`` (aligns each tile's prior once in ``setup``, then slices
  arrays); ``ours_per_s`` is the steady state after setup, ``ours_setup_s`` the one-off
  setup, ``ours_per_s_incl_setup`` both together for this many patches;
* TorchGeo: ``RasterDataset`` (imagery) ``&`` ``RasterDataset`` (prior), sampled by
  ``RandomGeoSampler`` (``RandomPatchSampler`` from 0.10) and collated with ``stack_samples``;
* composed: what a TorchGeo user of our datasets pays to build the prior on the fly:
  our ``NAIP & NLCD & BuildingFootprints`` (NLCD 30 m in EPSG:5070, footprints in
  EPSG:4326, both reprojected per query) with ``PriorTransform`` (co-occurrence column,
  blur, fusion; no margin crop) as the intersection's transform, the same TorchGeo
  sampler and ``stack_samples``. It reads fewer patches (a quarter), reported per second.

Usage: ``python benchmarks/sampling.py [--quick] [--out FILE.json]``. Writes JSON with
``ours_per_s``, ``torchgeo_per_s``, ``speedup`` (and ``*_incl_setup``),
``composed_per_s`` and the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
import torchgeo
import torchgeo.samplers
from rasterio.transform import from_origin
from torch.utils.data import DataLoader
from torchgeo.datasets import IntersectionDataset, RasterDataset, stack_samples

from torchgeo_lsr.datamodules import LSRDataModule
from torchgeo_lsr.datasets import NAIP, NLCD, BuildingFootprints
from torchgeo_lsr.priors import PriorConfig, PriorTransform

# TorchGeo's own recommended random sampler on each line (renamed in 0.10).
TorchGeoRandomSampler = getattr(
    torchgeo.samplers, "RandomPatchSampler", getattr(torchgeo.samplers, "RandomGeoSampler", None)
)

PATCH = 128
BATCH = 16


class Imagery(RasterDataset):  # type: ignore[misc]
    """NAIP-like tiles for TorchGeo's path."""

    filename_glob = "m_*.tif"
    is_image = True
    all_bands = ("R", "G", "B", "N")


class Prior(RasterDataset):  # type: ignore[misc]
    """Prior tiles (float32 probabilities) for TorchGeo's path."""

    filename_glob = "m_*.tif"
    is_image = True
    dtype = torch.float32


def write_tiles(root: Path, tiles: int, size: int, classes: int = 5, seed: int = 0) -> None:
    """Write ``tiles`` side-by-side imagery + prior tile pairs (UTM 17N, 1 m)."""
    rng = np.random.default_rng(seed)
    (root / "naip").mkdir(parents=True, exist_ok=True)
    (root / "prior").mkdir(parents=True, exist_ok=True)
    for t in range(tiles):
        name = f"m_35080{t:02d}_ne_17_060_20220615.tif"
        transform = from_origin(500_000 + t * size, 3_900_000, 1.0, 1.0)
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "crs": "EPSG:26917",
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        image = rng.integers(0, 256, (4, size, size), dtype=np.uint8)
        with rasterio.open(root / "naip" / name, "w", count=4, dtype="uint8", **profile) as dst:
            dst.write(image)
        logits = rng.normal(size=(classes, size // 16, size // 16)).repeat(16, 1).repeat(16, 2)
        prior = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)
        with rasterio.open(
            root / "prior" / name, "w", count=classes, dtype="float32", **profile
        ) as dst:
            dst.write(prior.astype(np.float32))


def write_weak_sources(root: Path, tiles: int, size: int, seed: int = 0) -> None:
    """NLCD (30 m, EPSG:5070, blocks of random codes) and footprints (EPSG:4326) over the tiles."""
    import geopandas as gpd
    import shapely
    from rasterio.warp import transform_bounds

    from torchgeo_lsr.classes import NLCD as NLCD_CLASSES

    rng = np.random.default_rng(seed)
    w, s, e, n = transform_bounds(
        "EPSG:26917", "EPSG:5070", 500_000, 3_900_000 - size, 500_000 + tiles * size, 3_900_000
    )
    w, s, e, n = w - 300, s - 300, e + 300, n + 300
    width, height = int((e - w) // 30) + 1, int((n - s) // 30) + 1
    assert NLCD_CLASSES.codes is not None
    codes = np.array([c for c in NLCD_CLASSES.codes if c > 0], dtype=np.uint8)
    blocks = rng.choice(codes, size=(height // 4 + 1, width // 4 + 1))
    nlcd = blocks.repeat(4, 0).repeat(4, 1)[:height, :width]
    (root / "nlcd").mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        root / "nlcd" / "Annual_NLCD_LndCov_2021_CU_C1V1.tif",
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs="EPSG:5070",
        transform=from_origin(w, n, 30, 30),
    ) as dst:
        dst.write(nlcd[None])
    x = rng.uniform(500_000, 500_000 + tiles * size - 20, 400 * tiles)
    y = rng.uniform(3_900_000 - size, 3_900_000 - 20, 400 * tiles)
    sides = rng.uniform(6, 20, (len(x), 2))
    boxes = [shapely.box(a, b, a + dx, b + dy) for a, b, (dx, dy) in zip(x, y, sides, strict=True)]
    (root / "buildings").mkdir(parents=True, exist_ok=True)
    frame = gpd.GeoDataFrame(geometry=boxes, crs="EPSG:26917").to_crs("EPSG:4326")
    frame.to_file(root / "buildings" / "footprints.geojson", driver="GeoJSON")


def time_composed(root: Path, patches: int) -> dict[str, float]:
    start = time.perf_counter()
    config = PriorConfig(aux=("buildings",))
    dataset = IntersectionDataset(
        NAIP(root / "naip") & NLCD(root / "nlcd"),
        BuildingFootprints(root / "buildings", sample_key="buildings"),
        transforms=PriorTransform(config, aux={"buildings": "buildings"}),
    )
    sampler = TorchGeoRandomSampler(dataset, size=PATCH, length=patches)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, collate_fn=stack_samples)
    setup = time.perf_counter() - start
    n = 0
    for batch in loader:
        assert batch["image"].shape[-2:] == (PATCH, PATCH)
        assert batch["prior"].shape[-3:] == (5, PATCH, PATCH)
        n += batch["image"].shape[0]
    return {"seconds": time.perf_counter() - start - setup, "setup_s": setup, "patches": n}


def time_ours(root: Path, patches: int) -> dict[str, float]:
    start = time.perf_counter()
    dm = LSRDataModule(
        root / "naip",
        root / "prior",
        patch_size=PATCH,
        batch_size=BATCH,
        train_length=patches,
        augment=False,
    )
    dm.setup("fit")
    setup = time.perf_counter() - start
    n = 0
    for batch in dm.train_dataloader():
        assert batch["image"].shape[-2:] == (PATCH, PATCH)
        assert "prior" in batch
        n += batch["image"].shape[0]
    total = time.perf_counter() - start
    return {"seconds": total - setup, "setup_s": setup, "patches": n}


def time_torchgeo(root: Path, patches: int) -> dict[str, float]:
    start = time.perf_counter()
    dataset = Imagery(paths=str(root / "naip")) & Prior(paths=str(root / "prior"))
    sampler = TorchGeoRandomSampler(dataset, size=PATCH, length=patches)
    loader = DataLoader(dataset, batch_size=BATCH, sampler=sampler, collate_fn=stack_samples)
    n = 0
    for batch in loader:
        assert batch["image"].shape[-2:] == (PATCH, PATCH)
        n += batch["image"].shape[0]
    return {"seconds": time.perf_counter() - start, "patches": n}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small tiles, few patches")
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--cache", type=Path, help="where to write the tiles (default: temp)")
    args = parser.parse_args(argv)
    tiles, size, patches = (4, 1024, 512) if args.quick else (4, 3000, 4096)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.cache or Path(tmp)) / f"sampling_{tiles}x{size}"
        if not (root / "prior").exists():
            write_tiles(root, tiles, size)
        if not (root / "buildings").exists():
            write_weak_sources(root, tiles, size)
        ours = time_ours(root, patches)
        theirs = time_torchgeo(root, patches)
        composed = time_composed(root, max(BATCH, patches // 4))
    result = {
        "benchmark": "sampling",
        "quick": args.quick,
        "tiles": tiles,
        "tile_size_px": size,
        "patch_px": PATCH,
        "batch_size": BATCH,
        "patches": patches,
        "num_workers": 0,
        # Steady state: patches per second once each side is set up. Ours reads and
        # aligns every tile once in setup (reported separately, and in the *_incl_setup
        # figures); TorchGeo's path opens and warps files on every sample instead.
        "ours_per_s": ours["patches"] / ours["seconds"],
        "ours_setup_s": ours["setup_s"],
        "ours_per_s_incl_setup": ours["patches"] / (ours["seconds"] + ours["setup_s"]),
        "torchgeo_per_s": theirs["patches"] / theirs["seconds"],
        "speedup": (ours["patches"] / ours["seconds"]) / (theirs["patches"] / theirs["seconds"]),
        "speedup_incl_setup": (ours["patches"] / (ours["seconds"] + ours["setup_s"]))
        / (theirs["patches"] / theirs["seconds"]),
        # A TorchGeo user composing our sources and building the prior per sample.
        "composed_per_s": composed["patches"] / composed["seconds"],
        "composed_setup_s": composed["setup_s"],
        "composed_patches": composed["patches"],
        "versions": {
            "torch": torch.__version__,
            "torchgeo": torchgeo.__version__,
            "python": platform.python_version(),
        },
        "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp_out.write_text(text + "\n")
        tmp_out.replace(args.out)
    return result


if __name__ == "__main__":
    main()
