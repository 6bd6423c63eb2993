#!/usr/bin/env python3
"""Generate a mini Chesapeake CVPR release (seeded; run from anywhere).

The layout of the CVPR 2019 Chesapeake Land Cover release that TorchGeo's
``ChesapeakeCVPR`` reads, with the prior extension merged in::

    cvpr_chesapeake_landcover/{state}_1m_{year}_extended-debuffered-{split}_tiles/{tile}_{layer}.tif

Three 64 x 64 px tiles at 1 m: two touching West Virginia test tiles in NAD83 / UTM 17N
(EPSG:26917) and one Maryland train tile in UTM 18N (EPSG:26918). Layers as in the release:
``naip-new`` (4 bands uint8), ``lc`` (Chesapeake codes 1-6 and 15 no data), ``nlcd`` (raw
NLCD codes on the 1 m grid, in 32 px blocks like 30 m cells), ``buildings`` (0/1) and, for
the first tile only, the authors' 4-band prior (``uint8(255 p)``). The imagery follows the
labels (each class its own mean colour plus noise), so a network can learn from it; the
NLCD blocks agree with the labels only in part, as real NLCD does. No band is flagged alpha.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

SIZE = 64
#: (folder, tile id, EPSG, west, north)
TILES = (
    (
        "wv_1m_2014_extended-debuffered-test_tiles",
        "m_3708035_ne_17_1",
        26917,
        500_000.0,
        4_100_064.0,
    ),
    (
        "wv_1m_2014_extended-debuffered-test_tiles",
        "m_3708035_nw_17_1",
        26917,
        500_064.0,
        4_100_064.0,
    ),
    (
        "md_1m_2013_extended-debuffered-train_tiles",
        "m_3907822_nw_18_1",
        26918,
        300_000.0,
        4_330_064.0,
    ),
)
#: NLCD code -> lc code it mostly holds (41 forest -> trees, 81 pasture -> low vegetation,
#: 21 developed open space -> impervious, 11 water -> water).
NLCD_TO_LC = {41: 2, 81: 3, 21: 5, 11: 1}
#: Mean NAIP colour (R, G, B, NIR) per lc code.
COLOURS = {
    1: (40, 60, 90, 20),
    2: (60, 90, 60, 140),
    3: (130, 160, 100, 180),
    4: (180, 160, 140, 120),
    5: (170, 170, 170, 90),
    6: (90, 90, 90, 60),
    15: (0, 0, 0, 0),
}


def write_tif(path: Path, array: np.ndarray, epsg: int, west: float, north: float) -> None:
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
        crs=CRS.from_epsg(epsg),
        transform=from_origin(west, north, 1.0, 1.0),
        compress="deflate",
    ) as dst:
        dst.colorinterp = [ColorInterp.gray] + [ColorInterp.undefined] * (array.shape[0] - 1)
        dst.write(array)
    os.replace(tmp, path)


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(2019)
    root = out / "cvpr_chesapeake_landcover"
    codes = np.array(list(NLCD_TO_LC))
    for i, (folder, tile, epsg, west, north) in enumerate(TILES):
        directory = root / folder
        directory.mkdir(parents=True, exist_ok=True)
        blocks = rng.choice(codes, size=(2, 2), p=[0.4, 0.3, 0.2, 0.1])
        nlcd = np.kron(blocks, np.ones((32, 32), dtype=np.int64)).astype(np.uint8)
        lc = np.vectorize(NLCD_TO_LC.get)(nlcd).astype(np.uint8)
        flip = rng.random((SIZE, SIZE)) < 0.25  # NLCD is wrong on a quarter of the pixels
        lc[flip] = rng.choice([1, 2, 3, 4, 5, 6], size=int(flip.sum()))
        lc[:2, :2] = 15  # a little no data
        buildings = np.zeros((SIZE, SIZE), dtype=np.uint8)
        buildings[(lc == 5) & (rng.random((SIZE, SIZE)) < 0.6)] = 1
        naip = np.stack([np.vectorize(lambda c, b=b: COLOURS[int(c)][b])(lc) for b in range(4)])
        naip = np.clip(naip + rng.normal(0, 12, naip.shape), 0, 255).astype(np.uint8)
        layers = {
            "naip-new": naip,
            "lc": lc[None],
            "nlcd": nlcd[None],
            "buildings": buildings[None],
        }
        if i == 0:
            logits = rng.normal(size=(4, SIZE, SIZE))
            p = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
            layers["prior_from_cooccurrences_101_31_no_osm_no_buildings"] = (p * 255).astype(
                np.uint8
            )
        for name, array in layers.items():
            write_tif(directory / f"{tile}_{name}.tif", array, epsg, west, north)


if __name__ == "__main__":
    main()
