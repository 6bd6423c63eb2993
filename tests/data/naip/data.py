#!/usr/bin/env python3
"""Generate the NAIP fixture tiles (seeded; run from anywhere).

Three 4-band uint8 tiles in NAD83 / UTM 17N (EPSG:26917), named the NAIP way:

* ``m_3508001_ne_17_060_20191109.tif``: 0.6 m, 40 x 40 px, west edge 500000, north 3880024;
* ``m_3508001_nw_17_060_20191109_20200207.tif``: 0.6 m, 40 x 40 px, touching the first on
  its east side (with a processing date in the name);
* ``m_3508001_se_17_1_20130711.tif``: the older naming (resolution in metres), 1 m,
  24 x 24 px, touching the first on its south side.

Pixel values are seeded random digital numbers, so each tile's values identify it. Band
colour interpretations are red, green, blue, undefined, as in NAIP files: GDAL's default
for 4-band uint8 would flag NIR as alpha, and warps would then mask pixels with NIR = 0.
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
#: name -> (west, north, pixel size, size in px)
TILES = {
    "m_3508001_ne_17_060_20191109.tif": (500_000.0, 3_880_024.0, 0.6, 40),
    "m_3508001_nw_17_060_20191109_20200207.tif": (500_024.0, 3_880_024.0, 0.6, 40),
    "m_3508001_se_17_1_20130711.tif": (500_000.0, 3_880_000.0, 1.0, 24),
}


def write_tif(path: Path, array: np.ndarray, **profile: object) -> None:
    """Write ``(C, H, W)`` to a temporary name, then rename onto ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        count=array.shape[0],
        height=array.shape[1],
        width=array.shape[2],
        dtype=array.dtype.name,
        **profile,
    ) as dst:
        # Set before writing: GDAL fixes the TIFF tags once pixel data is written.
        dst.colorinterp = [
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        ]
        dst.write(array)
    os.replace(tmp, path)


def main(out: Path = Path(__file__).parent) -> None:
    rng = np.random.default_rng(2019)
    for name, (west, north, res, size) in TILES.items():
        image = rng.integers(0, 256, size=(4, size, size), dtype=np.uint8)
        write_tif(out / name, image, crs=CRS_UTM, transform=from_origin(west, north, res, res))


if __name__ == "__main__":
    main()
