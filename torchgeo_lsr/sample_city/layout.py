"""Where the sample city lies: the sources' CRSs, the tiled area, the canvas, tile names.

:class:`Layout` is the grid of NAIP tiles (``rows`` x ``cols`` tiles of ``size`` px at 1 m,
north-west corner at :data:`ORIGIN` in EPSG:26917) and the canvas the scene is drawn on:
the tiles plus :data:`MARGIN` metres on every side. :func:`naip_names` gives the tiles
their NAIP quarter-quad file names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin

#: NAIP in North Carolina: NAD83 / UTM zone 17N.
NAIP_CRS = CRS.from_epsg(26917)
#: NLCD: NAD83 / Conus Albers.
NLCD_CRS = CRS.from_epsg(5070)
WGS84 = CRS.from_epsg(4326)

#: North-west corner of the tiled area (EPSG:26917), in Durham, NC.
ORIGIN = (688_000.0, 3_985_000.0)
#: Scene drawn this far beyond the tiles (m), so 30 m NLCD cells at the edges are whole.
MARGIN = 64
#: Acquisition date in the NAIP file names.
NAIP_DATE = "20220615"


@dataclass
class Layout:
    """The tiled area and the 1 m canvas (tiles + margin) in EPSG:26917."""

    rows: int
    cols: int
    size: int
    west: float
    north: float

    @classmethod
    def grid(cls, tiles: int, size: int) -> Layout:
        """``tiles`` tiles of ``size`` px on ``ceil(sqrt(tiles))`` columns, filled row by row."""
        cols = math.ceil(math.sqrt(tiles))
        return cls(
            rows=math.ceil(tiles / cols), cols=cols, size=size, west=ORIGIN[0], north=ORIGIN[1]
        )

    @property
    def width(self) -> int:
        """East-west extent of the tiled area (m, = px)."""
        return self.cols * self.size

    @property
    def height(self) -> int:
        """North-south extent of the tiled area (m, = px)."""
        return self.rows * self.size

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the tiled area in EPSG:26917."""
        return self.west, self.north - self.height, self.west + self.width, self.north

    @property
    def canvas_bounds(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the canvas (the tiles and the margin)."""
        return (
            self.west - MARGIN,
            self.north - self.height - MARGIN,
            self.west + self.width + MARGIN,
            self.north + MARGIN,
        )

    @property
    def canvas_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the canvas: the tiles and :data:`MARGIN` px on every side."""
        return self.height + 2 * MARGIN, self.width + 2 * MARGIN

    @property
    def canvas_transform(self) -> Affine:
        """Pixel-to-EPSG:26917 transform of the canvas (1 m pixels)."""
        return from_origin(self.west - MARGIN, self.north + MARGIN, 1.0, 1.0)

    def point(self, fx: float, fy: float) -> tuple[float, float]:
        """UTM coordinates of a point given as fractions of the tiled area (fy from the top)."""
        return self.west + fx * self.width, self.north - fy * self.height

    def tile_window(self, index: int) -> tuple[slice, slice]:
        """Canvas rows and columns of tile ``index``."""
        r, c = divmod(index, self.cols)
        top, left = MARGIN + r * self.size, MARGIN + c * self.size
        return slice(top, top + self.size), slice(left, left + self.size)

    def tile_transform(self, index: int) -> Affine:
        """Pixel-to-EPSG:26917 transform of tile ``index`` (tiles numbered row by row)."""
        r, c = divmod(index, self.cols)
        return from_origin(self.west + c * self.size, self.north - r * self.size, 1.0, 1.0)


def naip_names(layout: Layout, tiles: int) -> list[str]:
    """NAIP quarter-quad names: the real one of the area's centre, then the next ones."""
    lon, lat = Transformer.from_crs(NAIP_CRS, WGS84, always_xy=True).transform(
        layout.west + layout.width / 2, layout.north - layout.height / 2
    )
    lat_deg, lon_deg = math.floor(lat), math.floor(-lon)
    row = int((lat_deg + 1 - lat) / 0.125)
    col = int((lon_deg + 1 + lon) / 0.125)
    q_row = int((lat_deg + 1 - lat - row * 0.125) / 0.0625)
    q_col = int((lon_deg + 1 + lon - col * 0.125) / 0.0625)
    start = (row * 8 + col) * 4 + q_row * 2 + q_col
    names = []
    for i in range(tiles):
        q = (start + i) % 256
        quad, quarter = q // 4 + 1, ("nw", "ne", "sw", "se")[q % 4]
        names.append(f"m_{lat_deg:02d}{lon_deg:03d}{quad:02d}_{quarter}_17_060_{NAIP_DATE}")
    return names
