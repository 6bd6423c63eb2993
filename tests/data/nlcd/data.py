#!/usr/bin/env python3
"""Generate the NLCD fixture (seeded; run from anywhere).

Two 16 x 16 px land-cover rasters at 30 m in NAD83 / Conus Albers (EPSG:5070), on NLCD's
own pixel lattice (edges at 15 m mod 30), with the NLCD colour table, covering the NAIP
fixture area (UTM 17N around 500000, 3880000):

* ``Annual_NLCD_LndCov_2021_CU_C1V1.tif``: declares nodata 250, as Annual NLCD does; the
  last column is the fill value 250; pixel (row 5, col 7) is 41 (deciduous forest).
* ``nlcd_2019_land_cover_l48_20210604.tif``: legacy naming, no declared nodata; the last
  column is 250 and pixel (0, 0) is 0; pixel (5, 7) is 82 (cultivated crops).

Other pixels are 4 x 4 px blocks of seeded random NLCD codes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform

ALBERS = CRS.from_epsg(5070)
SIZE = 16
CODES = np.array([11, 12, 21, 22, 23, 24, 31, 41, 42, 43, 52, 71, 81, 82, 90, 95])
#: Colours of the NLCD legend (the colour table MRLC embeds in its files).
COLORS = {
    0: (0, 0, 0),
    11: (70, 107, 159),
    12: (209, 222, 248),
    21: (222, 197, 197),
    22: (217, 146, 130),
    23: (235, 0, 0),
    24: (171, 0, 0),
    31: (179, 172, 159),
    41: (104, 171, 95),
    42: (28, 95, 44),
    43: (181, 197, 143),
    52: (204, 184, 121),
    71: (223, 223, 194),
    81: (220, 217, 57),
    82: (171, 108, 40),
    90: (184, 217, 235),
    95: (108, 159, 184),
    250: (0, 0, 0),
}


def origin() -> tuple[float, float]:
    """North-west corner: the NAIP fixture's centre, snapped to NLCD's lattice, minus 8 px."""
    (x,), (y,) = transform(CRS.from_epsg(26917), ALBERS, [500_012.0], [3_880_012.0])
    west = np.floor((x - 15) / 30) * 30 + 15 - 8 * 30
    north = np.floor((y - 15) / 30) * 30 + 15 + 8 * 30
    return float(west), float(north)


def blocks(rng: np.random.Generator) -> np.ndarray:
    codes = rng.choice(CODES, size=(SIZE // 4, SIZE // 4))
    return codes.repeat(4, axis=0).repeat(4, axis=1).astype(np.uint8)


def write_nlcd(path: Path, codes: np.ndarray, nodata: int | None) -> None:
    """Write one land-cover file to a temporary name, then rename onto ``path``."""
    west, north = origin()
    tmp = path.with_name(path.name + ".tmp")
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        count=1,
        height=SIZE,
        width=SIZE,
        dtype="uint8",
        crs=ALBERS,
        transform=from_origin(west, north, 30.0, 30.0),
        nodata=nodata,
    ) as dst:
        dst.write(codes[None])
        dst.write_colormap(1, {k: (*v, 255) for k, v in COLORS.items()})
    os.replace(tmp, path)


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(30)
    annual = blocks(rng)
    annual[5, 7] = 41
    annual[:, -1] = 250
    write_nlcd(out / "Annual_NLCD_LndCov_2021_CU_C1V1.tif", annual, nodata=250)

    legacy = blocks(rng)
    legacy[5, 7] = 82
    legacy[:, -1] = 250
    legacy[0, 0] = 0
    write_nlcd(out / "nlcd_2019_land_cover_l48_20210604.tif", legacy, nodata=None)


if __name__ == "__main__":
    main()
