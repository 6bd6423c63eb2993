"""National Agriculture Imagery Program (NAIP) tiles, queried by :class:`~.grid.Grid`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import datetime
import os
import re
from typing import TypedDict

import pandas as pd
from torchgeo.datasets.utils import disambiguate_timestamp

from .base import RasterSource
from .grid import PathLike

__all__ = ["NAIP", "NAIPTile"]


class NAIPTile(TypedDict):
    """Metadata of one NAIP file, parsed from its name.

    Attributes:
        path: the file.
        quadrangle: USGS 7.5' quadrangle id (``"3807511"``: 38° N, 75° W, cell 11).
        quadrant: quarter quadrangle (``"ne"``, ``"nw"``, ``"se"`` or ``"sw"``).
        zone: UTM zone of the file's CRS.
        resolution: nominal ground sample distance in metres, from the name.
        date: acquisition date.
        processing_date: processing date when the name carries one, else None.
    """

    path: str
    quadrangle: str
    quadrant: str
    zone: int
    resolution: float
    date: datetime.date
    processing_date: datetime.date | None


#: File names of NAIP tiles. Current: ``m_3807511_ne_18_060_20181104.tif`` (resolution in
#: cm, three digits) with an optional processing date, ``..._20181104_20190211.tif``; older:
#: ``m_3807511_ne_18_1_20130711.tif`` (resolution in metres, one digit).
NAIP_REGEX = r"""
    ^m
    _(?P<quadrangle>\d{7})
    _(?P<quadrant>ne|nw|se|sw)
    _(?P<zone>\d{2})
    _(?P<resolution>\d{3}|\d)
    _(?P<date>\d{8})
    (?:_(?P<processing_date>\d{8}))?
    \.tif$
"""
_NAIP_PATTERN = re.compile(NAIP_REGEX, re.VERBOSE)


def _parse_date(text: str, name: str, what: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError as err:
        raise ValueError(f"NAIP tile {name}: {what} {text} is not a YYYYMMDD date") from err


class NAIP(RasterSource):
    """National Agriculture Imagery Program (NAIP) aerial imagery.

    `NAIP <https://naip-usdaonline.hub.arcgis.com/>`_ (USDA Farm Service Agency) acquires
    leaf-on aerial imagery of the conterminous US every two to three years, distributed as
    GeoTIFF tiles of a quarter USGS 7.5' quadrangle in the tile's UTM zone (NAD83): four
    uint8 bands (red, green, blue, near-infrared) at 1 m (before 2018 in most states),
    0.6 m or 0.3 m. Tiles are on the Microsoft Planetary Computer
    (https://planetarycomputer.microsoft.com/dataset/naip) and USGS EarthExplorer.

    File names follow ``m_{quadrangle}_{quadrant}_{zone}_{resolution}_{date}.tif``, e.g.
    ``m_3807511_ne_18_060_20181104.tif`` (resolution ``060`` = 60 cm), optionally with a
    processing date (``..._20181104_20190211.tif``); older tiles write the resolution in
    metres (``m_3807511_ne_18_1_20130711.tif``). :attr:`tiles` holds what the names say.

    A query returns ``image`` (float32 ``(C, H, W)``, raw digital numbers 0-255, bilinear
    onto the grid) and ``valid`` (bool ``(H, W)``, covered by some tile). Where tiles
    overlap, the first file in path order wins. As a TorchGeo ``GeoDataset`` each file
    spans its acquisition day in :attr:`index`, as in TorchGeo's ``NAIP``.

    If you use this dataset in your research, please cite it using the following format:

    * USDA Farm Production and Conservation Business Center, National Agriculture Imagery
      Program, https://www.fisheries.noaa.gov/inport/item/49508/citation

    Args:
        paths: NAIP files or directories (searched recursively for ``m_*.tif``).
        bands: subset of ``("R", "G", "B", "NIR")``, in the order wanted.
        **kwargs: ``crs``, ``res``, ``transforms``, ``cache``, ``download`` and
            ``checksum`` as for :class:`~.base.RasterSource`. NAIP is not downloaded by
            this class (``download`` must be False).

    Raises:
        DatasetNotFoundError: if no NAIP file is found.
        ValueError: if a file name carries an impossible date, or on unknown bands.

    Example:
        >>> NAIP.parse_name("m_3807511_ne_18_060_20181104_20190211.tif")["resolution"]
        0.6
        >>> NAIP.parse_name("m_3807511_ne_18_1_20130711.tif")["date"]
        datetime.date(2013, 7, 11)
        >>> NAIP.parse_name("m_3807511_ne_18_060_2018110.tif") is None
        True

    .. versionadded:: 0.1
    """

    what = "NAIP tile"
    filename_glob = "m_*.tif"
    filename_regex = NAIP_REGEX
    is_image = True
    all_bands = ("R", "G", "B", "NIR")
    rgb_bands = ("R", "G", "B")

    _tiles: list[NAIPTile]

    def _build_index(self) -> None:
        # Names are checked before any file is opened.
        tiles = [self.parse_name(path) for path in self.files]
        self._tiles = [tile for tile in tiles if tile is not None]
        super()._build_index()

    def interval(self, path: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The acquisition day of ``path`` (as TorchGeo's ``NAIP`` indexes it)."""
        tile = self.parse_name(path)
        assert tile is not None  # only matching names are listed
        start, stop = disambiguate_timestamp(tile["date"].strftime("%Y%m%d"), "%Y%m%d")
        return pd.Timestamp(start), pd.Timestamp(stop)

    @property
    def tiles(self) -> list[NAIPTile]:
        """Metadata of every file, in :attr:`files` order (see :class:`NAIPTile`)."""
        return list(self._tiles)

    @staticmethod
    def parse_name(path: PathLike) -> NAIPTile | None:
        """Metadata from a NAIP file name, or None if the name is not a NAIP tile's.

        Args:
            path: file path or name.

        Returns:
            The parsed :class:`NAIPTile`, or None.

        Raises:
            ValueError: if the name matches but a date in it does not exist.
        """
        name = os.path.basename(os.fspath(path))
        match = _NAIP_PATTERN.match(name)
        if match is None:
            return None
        digits = match["resolution"]
        resolution = int(digits) / 100 if len(digits) == 3 else float(digits)
        processing = match["processing_date"]
        return NAIPTile(
            path=os.fspath(path),
            quadrangle=match["quadrangle"],
            quadrant=match["quadrant"],
            zone=int(match["zone"]),
            resolution=resolution,
            date=_parse_date(match["date"], name, "date"),
            processing_date=(
                None if processing is None else _parse_date(processing, name, "processing date")
            ),
        )
