"""National Land Cover Database (NLCD), queried by :class:`~.grid.Grid`.

.. versionadded:: 0.1
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Unpack

import numpy as np

from ..classes import NLCD as NLCD_CLASSES
from ..classes import NLCD_FILL
from .base import RasterSource, SourceOptions
from .grid import Grid, PathLike
from .warping import Remap

__all__ = ["NLCD", "nlcd_codes_to_index"]

#: File names of NLCD land cover: Annual NLCD (CONUS mosaics and ARD tiles, any collection
#: and version) and the legacy epochal releases (``nlcd_{year}_land_cover_l48_{release}``,
#: as distributed and as exported by the MRLC viewer, which appends an id).
NLCD_REGEX = r"""(?i)
    ^(?:
        annual_nlcd_(?:h\d{2}v\d{2}_)?lndcov_(?P<annual_year>\d{4})_cu_c\dv\d\.tiff?
      | nlcd_(?P<legacy_year>\d{4})_land_cover_l48_(?P<release>\d{8})(?:_[a-z0-9]+)?\.(?:tiff?|img)
    )$
"""
_NLCD_PATTERN = re.compile(NLCD_REGEX, re.VERBOSE)


class NLCD(RasterSource):
    """National Land Cover Database (NLCD) land cover, as our 17-index ordinal.

    `NLCD <https://www.mrlc.gov/>`_ (USGS and the MRLC consortium) maps the conterminous
    US at 30 m in 16 land-cover classes (codes 11 open water ... 95 emergent herbaceous
    wetlands) in NAD83 / Conus Albers (EPSG:5070). Two families of files are read:

    * `Annual NLCD <https://www.usgs.gov/centers/eros/science/annual-national-land-cover-database>`_
      (1985 onwards): ``Annual_NLCD_LndCov_2021_CU_C1V1.tif`` and ARD tiles
      ``Annual_NLCD_H05V02_LndCov_2021_CU_C1V0.tif`` (any collection/version);
    * legacy epochal releases: ``nlcd_2019_land_cover_l48_20210604.tif`` / ``.img``, and the
      MRLC viewer's exports ``NLCD_2019_Land_Cover_L48_20210604_<id>.tif``.

    Only CONUS (``CU``/``L48``) files are matched: Alaska adds classes outside the table.
    The year comes from the name; ``years`` picks files by it. Queries are purely
    spatial: as a TorchGeo ``GeoDataset`` every file spans all time in :attr:`index`
    (TorchGeo's ``NLCD`` gives each file its year, so ``NAIP & NLCD`` of a 2018 tile and
    the 2019 map has no temporal intersection on 0.8.1). Where files overlap, the newest
    year wins (then path order).

    A query returns ``mask`` (int64 ``(H, W)``): the index of the raw code in
    :data:`torchgeo_lsr.classes.NLCD` order (0 nodata, 11 -> 1, 12 -> 2, 21 -> 3, ...,
    41 -> 8, ..., 95 -> 16), nearest-neighbour onto the grid, and ``valid`` (bool): raw 0,
    the fill value 250 (outside CONUS; TorchGeo 0.8.1 fails on it with an IndexError),
    declared nodata and pixels outside every file read as index 0 with ``valid`` False.
    Any other code outside the legend raises one ValueError naming the file and codes.

    If you use this dataset in your research, please cite:

    * Annual NLCD: U.S. Geological Survey, Annual NLCD Collection 1 Science Products,
      https://doi.org/10.5066/P94UXNTS
    * NLCD 2019: Dewitz, J., and U.S. Geological Survey, National Land Cover Database
      (NLCD) 2019 Products (ver. 2.0, June 2021), https://doi.org/10.5066/P9KZCM54

    Args:
        paths: NLCD files or directories (searched recursively).
        years: keep only files of these years (default: all).
        **kwargs: ``crs``, ``res``, ``transforms``, ``cache``, ``download`` and
            ``checksum`` as for :class:`~.base.RasterSource`. NLCD is not downloaded by
            this class (``download`` must be False); it has no ``bands``.

    Raises:
        DatasetNotFoundError: if no NLCD file is found.
        ValueError: if files exist but none is of ``years``.

    Example:
        >>> NLCD.parse_year("Annual_NLCD_LndCov_2021_CU_C1V1.tif")
        2021
        >>> NLCD.parse_year("NLCD_2019_Land_Cover_L48_20210604_Xy12.img")
        2019
        >>> NLCD.parse_year("Annual_NLCD_FctImp_2021_CU_C1V1.tif") is None
        True

    .. versionadded:: 0.1
    """

    what = "NLCD"
    filename_glob = ("Annual_NLCD_*LndCov_*", "nlcd_*", "NLCD_*")
    filename_regex = NLCD_REGEX
    is_image = False
    cmap = NLCD_CLASSES.cmap

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        years: Sequence[int] | None = None,
        **kwargs: Unpack[SourceOptions],
    ) -> None:
        if "bands" in kwargs:  # RasterSource takes it; NLCD, like TorchGeo's, does not
            raise TypeError("NLCD() got an unexpected keyword argument 'bands' (one band only)")
        self.years = None if years is None else tuple(int(y) for y in years)
        super().__init__(paths, **kwargs)

    @staticmethod
    def parse_year(path: PathLike) -> int | None:
        """The year of an NLCD land-cover file, from its name; None if not an NLCD name."""
        match = _NLCD_PATTERN.match(os.path.basename(os.fspath(path)))
        if match is None:
            return None
        return int(match["annual_year"] or match["legacy_year"])

    @property
    def available_years(self) -> list[int]:
        """Years of the files in use, ascending."""
        return sorted({self._year(f) for f in self.files})

    def _year(self, path: str) -> int:
        year = self.parse_year(path)
        assert year is not None  # only matching names are listed
        return year

    def _list_files(self, patterns: Sequence[str]) -> list[str]:
        files = [f for f in super()._list_files(patterns) if self.parse_year(f) is not None]
        if self.years is not None and files:
            found = sorted({self._year(f) for f in files})
            files = [f for f in files if self._year(f) in self.years]
            if not files:
                raise ValueError(
                    f"NLCD: no file of years {list(self.years)} in {self.paths!r}; "
                    f"found years {found}"
                )
        # Newest year first: earlier files win where files overlap.
        return sorted(files, key=lambda f: (-self._year(f), f))

    def read_file(
        self, path: str, grid: Grid, remap: Remap | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file on ``grid`` as NLCD indices: ``(index (1, H, W), valid (H, W))``.

        Codes become indices on the source window, once per 30 m cell; 0 and 250 are
        invalid. ``remap`` is applied after that, to the indices.

        Raises:
            ValueError: naming ``path`` and the codes, if the window holds codes that are
                neither NLCD classes, 0 nor 250.
        """

        def to_index(raw: np.ndarray) -> np.ndarray:
            out = nlcd_codes_to_index(raw, f"NLCD {path}")
            return out if remap is None else remap(out)

        data, valid = super().read_file(path, grid, to_index)
        return np.maximum(data, 0, out=data), valid


def nlcd_codes_to_index(raw: np.ndarray, what: str = "NLCD") -> np.ndarray:
    """Raw NLCD codes -> indices of :data:`torchgeo_lsr.classes.NLCD`; 0 and 250 -> -1.

    Args:
        raw: integer codes as stored (11 ... 95, 0 nodata, 250 fill).
        what: the source, for the error message.

    Returns:
        Indices 1-16, or -1 (invalid), in ``raw``'s dtype (signed where needed).

    Raises:
        ValueError: naming ``what`` and the codes, on codes outside the legend.

    Example:
        >>> nlcd_codes_to_index(np.array([0, 11, 41, 95, 250], dtype=np.int32)).tolist()
        [-1, 1, 8, 16, -1]
    """
    invalid = (raw <= 0) | (raw == NLCD_FILL)
    index = NLCD_CLASSES.code_to_index(np.where(invalid, 0, raw), what=what)
    return np.where(invalid, -1, index.astype(np.int32)).astype(np.result_type(raw, np.int16))
