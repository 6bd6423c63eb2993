#!/usr/bin/env python3
"""Generate a mini EnviroAtlas release (seeded; run from anywhere).

The layout of the Malkin et al. (2022) release that TorchGeo's ``EnviroAtlas`` reads,
for one city split with two touching 16 x 16 px tiles at 1 m in NAD83 / UTM 17N
(EPSG:26917)::

    enviroatlas_lotp/pittsburgh_pa-2010_1m-train_tiles-debuffered/{tile}_{layer}.tif

Layers as in the release: ``a_naip`` (4 bands uint8), ``b_nlcd`` (NLCD index 0-16),
``c_roads``, ``d_water``, ``d1_waterways``, ``d2_waterbodies``, ``e_buildings`` (0/1),
``h_highres_labels`` (raw EnviroAtlas codes, every code present), the two co-occurrence
priors and the learned prior (5 bands, ``uint8(255 * p)``, truncated as the authors'
scripts write them). No band is flagged alpha (GDAL would mask pixels where it is 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

CRS_UTM = CRS.from_epsg(26917)
SIZE = 16
SPLIT = "pittsburgh_pa-2010_1m-train_tiles-debuffered"
#: tile id -> north-west corner; ``_se`` lies east of ``_sw``.
TILES = {"4007925_sw": (585_000.0, 4_477_016.0), "4007925_se": (585_016.0, 4_477_016.0)}
LABEL_CODES = np.array([0, 10, 20, 30, 40, 52, 70, 80, 82, 91, 92])
MASKS = ("c_roads", "d_water", "d1_waterways", "d2_waterbodies", "e_buildings")
PRIORS = (
    "prior_from_cooccurrences_101_31",
    "prior_from_cooccurrences_101_31_no_osm_no_buildings",
    "prior_learned_101_31",
)


def write_tif(path: Path, array: np.ndarray, west: float, north: float) -> None:
    """Write ``(C, H, W)`` uint8 to a temporary name, then rename onto ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        count=array.shape[0],
        height=SIZE,
        width=SIZE,
        dtype="uint8",
        crs=CRS_UTM,
        transform=from_origin(west, north, 1.0, 1.0),
        compress="deflate",
    ) as dst:
        # Every band is data: no band may be taken for alpha (GDAL's default for 4 x uint8).
        dst.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (array.shape[0] - 1)
        dst.write(array)
    os.replace(tmp, path)


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(2010)
    folder = out / "enviroatlas_lotp" / SPLIT
    folder.mkdir(parents=True, exist_ok=True)
    for tile, (west, north) in TILES.items():
        layers: dict[str, np.ndarray] = {}
        layers["a_naip"] = rng.integers(0, 256, size=(4, SIZE, SIZE), dtype=np.uint8)
        layers["b_nlcd"] = rng.integers(0, 17, size=(1, SIZE, SIZE), dtype=np.uint8)
        for name in MASKS:
            layers[name] = (rng.random((1, SIZE, SIZE)) < 0.3).astype(np.uint8)
        labels = rng.choice(LABEL_CODES, size=(SIZE, SIZE))
        labels.flat[: len(LABEL_CODES)] = LABEL_CODES  # every code on the first row
        layers["h_highres_labels"] = labels[None].astype(np.uint8)
        for name in PRIORS:
            logits = rng.normal(size=(5, SIZE, SIZE)) * 2
            p = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
            layers[name] = (p * 255.0).astype(np.uint8)
        for name, array in layers.items():
            write_tif(folder / f"{tile}_{name}.tif", array, west, north)


if __name__ == "__main__":
    main()
