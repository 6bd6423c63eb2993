#!/usr/bin/env python3
"""Generate the tiny region used by the unit tests (seeded; run from this folder).

Two 4-band uint8 imagery tiles in UTM 17N at 1 m, hi-res labels (class codes 1..4 with
255 nodata) on the imagery grid, and a region-wide coarse prior in EPSG:5070 (NLCD's
Albers) at 8 m: per-class fractions of 8 m blocks, so the prior is right on average but
blurry, like a real weak source. Imagery = class spectrum + texture noise, so a small
FCN can learn the classes from pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject, transform_bounds

SIZE = 64
NUM_CLASSES = 4
#: Tile origins (west, north) in EPSG:32617; the tiles touch side by side.
ORIGINS = {
    "m_3507801_ne_17_060_20200101": (700_000.0, 3_900_064.0),
    "m_3507801_nw_17_060_20200101": (700_064.0, 3_900_064.0),
}
UTM = CRS.from_epsg(32617)
ALBERS = CRS.from_epsg(5070)
#: Mean reflectance of each class in 4 bands (water, impervious, trees, grass).
SPECTRA = np.array([[40, 50, 70, 20], [150, 150, 150, 120], [50, 90, 50, 170], [100, 160, 80, 200]])


def labels_for(rng: np.random.Generator) -> np.ndarray:
    """Blobby label map: smoothed random fields, argmax over classes."""
    field = rng.normal(size=(NUM_CLASSES, SIZE // 8, SIZE // 8))
    field = field.repeat(8, axis=1).repeat(8, axis=2)
    field += 0.6 * rng.normal(size=field.shape)
    return field.argmax(axis=0).astype(np.uint8)


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(0)
    (out / "naip").mkdir(exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    (out / "prior").mkdir(exist_ok=True)
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "crs": UTM}
    all_onehot = []
    for name, (west, north) in ORIGINS.items():
        transform = from_origin(west, north, 1.0, 1.0)
        labels = labels_for(rng)
        image = SPECTRA[labels].transpose(2, 0, 1) + rng.normal(0, 12, size=(4, SIZE, SIZE))
        image = np.clip(image, 0, 255).astype(np.uint8)
        with rasterio.open(
            out / "naip" / f"{name}.tif",
            "w",
            count=4,
            dtype="uint8",
            transform=transform,
            **profile,
        ) as dst:
            dst.write(image)
        stored = labels + 1  # codes 1..4; 255 is nodata
        stored[:2, :2] = 255
        with rasterio.open(
            out / "labels" / f"{name}.tif",
            "w",
            count=1,
            dtype="uint8",
            nodata=255,
            transform=transform,
            **profile,
        ) as dst:
            dst.write(stored[None])
        all_onehot.append(
            (np.eye(NUM_CLASSES, dtype=np.float32)[labels].transpose(2, 0, 1), transform)
        )

    # Region-wide coarse prior: class fractions on an 8 m Albers grid.
    west, south, east, north = transform_bounds(UTM, ALBERS, 700_000, 3_900_000, 700_128, 3_900_064)
    west, north = np.floor(west / 8) * 8 - 16, np.ceil(north / 8) * 8 + 16
    width, height = int(np.ceil((east - west) / 8)) + 2, int(np.ceil((north - south) / 8)) + 2
    dst_transform = from_origin(west, north, 8.0, 8.0)
    fractions = np.zeros((NUM_CLASSES, height, width), dtype=np.float32)
    weights = np.zeros((1, height, width), dtype=np.float32)
    for onehot, transform in all_onehot:
        part = np.zeros_like(fractions)
        reproject(
            onehot,
            part,
            src_transform=transform,
            src_crs=UTM,
            dst_transform=dst_transform,
            dst_crs=ALBERS,
            resampling=Resampling.average,
            src_nodata=None,
            dst_nodata=0,
        )
        fractions += part
    weights = fractions.sum(axis=0, keepdims=True)
    prior = np.divide(fractions, weights, out=np.zeros_like(fractions), where=weights > 0)
    with rasterio.open(
        out / "prior" / "prior.tif",
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=NUM_CLASSES,
        dtype="float32",
        crs=ALBERS,
        transform=dst_transform,
        nodata=None,
    ) as dst:
        dst.write(prior)


if __name__ == "__main__":
    main()
