"""Microsoft US Building Footprints, read once and rasterised per grid query.

Malkin et al. (2022) use building footprints as weak evidence for the impervious class.
:class:`BuildingFootprints` reads footprint polygons once, indexes them spatially and burns
them onto each queried :class:`~torchgeo_lsr.datasets.grid.Grid`.

Source: https://github.com/microsoft/USBuildingFootprints (about 130 million footprints
derived from Bing imagery, one file per US state; ODbL). Release 2 files are
``https://usbuildingdata.blob.core.windows.net/usbuildings-v2/{State}.geojson.zip``, each a
zipped GeoJSON FeatureCollection in EPSG:4326 with state names in CamelCase
(``NorthCarolina``, ``DistrictofColumbia``). Microsoft's later global releases are
GeoJSON-lines (one feature per line); GeoPackage and GeoParquet conversions are common.

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Unpack

import geopandas as gpd
import pandas as pd
import shapely

from ..outputs import atomic_output
from .base import VectorOptions, VectorSource
from .grid import PathLike

__all__ = ["MS_BUILDINGS_URL", "US_STATES", "BuildingFootprints", "read_footprints", "state_stem"]

#: URL pattern of Microsoft's US Building Footprints release 2, per state.
MS_BUILDINGS_URL = "https://usbuildingdata.blob.core.windows.net/usbuildings-v2/{state}.geojson.zip"

#: US state (and DC) names -> the CamelCase file stem Microsoft uses.
US_STATES: dict[str, str] = {
    name: name.replace(" of ", "of").replace(" ", "")
    for name in (
        "Alabama",
        "Alaska",
        "Arizona",
        "Arkansas",
        "California",
        "Colorado",
        "Connecticut",
        "Delaware",
        "District of Columbia",
        "Florida",
        "Georgia",
        "Hawaii",
        "Idaho",
        "Illinois",
        "Indiana",
        "Iowa",
        "Kansas",
        "Kentucky",
        "Louisiana",
        "Maine",
        "Maryland",
        "Massachusetts",
        "Michigan",
        "Minnesota",
        "Mississippi",
        "Missouri",
        "Montana",
        "Nebraska",
        "Nevada",
        "New Hampshire",
        "New Jersey",
        "New Mexico",
        "New York",
        "North Carolina",
        "North Dakota",
        "Ohio",
        "Oklahoma",
        "Oregon",
        "Pennsylvania",
        "Rhode Island",
        "South Carolina",
        "South Dakota",
        "Tennessee",
        "Texas",
        "Utah",
        "Vermont",
        "Virginia",
        "Washington",
        "West Virginia",
        "Wisconsin",
        "Wyoming",
    )
}

_POSTAL = dict(
    zip(
        (
            "AL",
            "AK",
            "AZ",
            "AR",
            "CA",
            "CO",
            "CT",
            "DE",
            "DC",
            "FL",
            "GA",
            "HI",
            "ID",
            "IL",
            "IN",
            "IA",
            "KS",
            "KY",
            "LA",
            "ME",
            "MD",
            "MA",
            "MI",
            "MN",
            "MS",
            "MO",
            "MT",
            "NE",
            "NV",
            "NH",
            "NJ",
            "NM",
            "NY",
            "NC",
            "ND",
            "OH",
            "OK",
            "OR",
            "PA",
            "RI",
            "SC",
            "SD",
            "TN",
            "TX",
            "UT",
            "VT",
            "VA",
            "WA",
            "WV",
            "WI",
            "WY",
        ),
        US_STATES.values(),
        strict=True,
    )
)

_SUFFIXES = (".geojson", ".json", ".geojsonl", ".geojsonseq", ".gpkg", ".parquet", ".geoparquet")


def state_stem(state: str) -> str:
    """Microsoft's file stem for a US state: a name in any case/spacing, or a postal code.

    Example:
        >>> state_stem("north carolina"), state_stem("DC"), state_stem("Delaware")
        ('NorthCarolina', 'DistrictofColumbia', 'Delaware')
    """
    if state.upper() in _POSTAL:
        return _POSTAL[state.upper()]
    squashed = {v.lower(): v for v in US_STATES.values()}
    key = state.replace(" ", "").replace("_", "").replace("-", "").lower()
    if key in squashed:
        return squashed[key]
    raise ValueError(
        f"unknown US state {state!r}; expected one of {sorted(US_STATES)} or a postal code"
    )


def _fetch_url(url: str, dest: str) -> None:
    """Download ``url`` to ``dest`` (a seam the tests monkeypatch)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def _module_available(name: str) -> bool:
    """Whether ``name`` can be imported (a seam the tests monkeypatch)."""
    return importlib.util.find_spec(name) is not None


def _read_geojsonl(path: str) -> gpd.GeoDataFrame:
    """GeoJSON-lines / RFC 8142 sequences: one Feature per line (EPSG:4326 by spec)."""
    geometries = []
    properties: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip().lstrip("\x1e").strip()
            if not line:
                continue
            try:
                feature = json.loads(line)
                geometry = shapely.geometry.shape(feature["geometry"])
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise ValueError(
                    f"buildings {path}: line {number} is not a GeoJSON Feature ({err}); "
                    "expected one Feature per line"
                ) from err
            geometries.append(geometry)
            properties.append(feature.get("properties") or {})
    return gpd.GeoDataFrame(pd.DataFrame(properties), geometry=geometries, crs="EPSG:4326")


def _read_parquet(path: str) -> gpd.GeoDataFrame:
    if not _module_available("pyarrow"):
        raise ImportError(
            f"buildings {path}: reading GeoParquet needs pyarrow (`pip install pyarrow`); "
            "or convert it to GeoPackage or GeoJSON"
        )
    return gpd.read_parquet(path)


def _read_one(path: str) -> gpd.GeoDataFrame:
    name = path.lower()
    if not name.endswith(_SUFFIXES):
        raise ValueError(
            f"buildings {path}: unsupported file type; expected one of {', '.join(_SUFFIXES)}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"buildings {path}: no such file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"buildings {path}: is empty; expected building footprint polygons")
    if name.endswith((".geojsonl", ".geojsonseq")):
        frame = _read_geojsonl(path)
    elif name.endswith((".parquet", ".geoparquet")):
        frame = _read_parquet(path)
    else:
        try:
            frame = gpd.read_file(path)
        except Exception as err:  # pyogrio DataSourceError, fiona DriverError, ...
            raise ValueError(f"buildings {path}: not a readable vector file ({err})") from err
    if frame.crs is None:
        raise ValueError(
            f"buildings {path}: has no CRS; expected a georeferenced file (e.g. EPSG:4326)"
        )
    polygons = frame[frame.geometry.notna()]
    polygons = polygons[polygons.geometry.geom_type.isin(("Polygon", "MultiPolygon"))]
    if polygons.empty:
        raise ValueError(
            f"buildings {path}: has no polygon features; expected building footprint polygons"
        )
    return gpd.GeoDataFrame(geometry=polygons.geometry.values, crs=frame.crs)


def read_footprints(files: str | PathLike | Sequence[PathLike]) -> gpd.GeoDataFrame:
    """Read footprint polygons from GeoJSON, GeoJSON-lines, GeoPackage or GeoParquet.

    Args:
        files: one or more files; ``.geojson``/``.json`` (FeatureCollection),
            ``.geojsonl``/``.geojsonseq`` (one Feature per line), ``.gpkg``,
            ``.parquet``/``.geoparquet`` (needs pyarrow).

    Returns:
        A GeoDataFrame with only a ``geometry`` column of (Multi)Polygons, in the CRS of
        the first file.

    Raises:
        ValueError: for an unsupported extension, an empty or unreadable file, a file
            without CRS or without polygons, naming the file.
        ImportError: for GeoParquet without pyarrow.
    """
    paths = [os.fspath(files)] if isinstance(files, str | os.PathLike) else list(files)
    if not paths:
        raise ValueError("read_footprints: no files given")
    frames = [_read_one(os.fspath(p)) for p in paths]
    crs = frames[0].crs
    merged = pd.concat([f.to_crs(crs) for f in frames], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=crs)


class BuildingFootprints(VectorSource):
    """Building footprint polygons burnt as 1 onto each queried grid.

    Files are read once (:func:`read_footprints`), spatially indexed and rasterised per
    :class:`~torchgeo_lsr.datasets.grid.Grid` query; ``all_touched=True`` burns every pixel
    a footprint touches instead of only pixels whose centre falls inside.

    Microsoft US Building Footprints, release 2: https://github.com/microsoft/USBuildingFootprints
    (ODbL). With ``download=True`` and ``state`` set, ``{State}.geojson.zip`` is fetched
    from :data:`MS_BUILDINGS_URL` into ``paths`` (a directory) under a temporary name,
    extracted to ``{State}.geojson`` and the zip removed; an existing
    ``{State}.geojson`` is reused without fetching.

    Args:
        paths: footprint files or directories of them.
        state: US state to download (name such as ``"Delaware"`` or ``"North Carolina"``,
            or postal code).
        **kwargs: ``crs``, ``res`` (unused), ``transforms``, ``all_touched`` and
            ``cache`` as for :class:`~.base.VectorSource`; ``download`` fetches
            ``state`` when its file is missing (without ``state`` it needs files to be
            there); ``checksum`` tests the downloaded zip's CRCs before extracting.

    Raises:
        DatasetNotFoundError: if no file is found and ``download=False``.

    .. versionadded:: 0.1
    """

    what: ClassVar[str] = "buildings"
    filename_glob: str | tuple[str, ...] = tuple(f"*{s}" for s in _SUFFIXES)

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        state: str | None = None,
        **kwargs: Unpack[VectorOptions],
    ) -> None:
        self.state = None if state is None else state_stem(state)
        super().__init__(paths, **kwargs)

    def _download(self) -> None:
        """Fetch :attr:`state` unless its file is there; without ``state``, need files."""
        if self.state is not None:
            self._fetch_state(self.paths, self.state, self.checksum)
        elif not self._list_files(self.filename_glob):
            raise ValueError(
                f"{type(self).__name__}: download=True needs `state` (e.g. 'Delaware') "
                "to know which file to fetch"
            )

    @staticmethod
    def _fetch_state(paths: PathLike | Iterable[PathLike], stem: str, checksum: bool) -> str:
        if not isinstance(paths, str | os.PathLike) or os.path.isfile(paths):
            raise ValueError("download=True needs `paths` to be one directory")
        root = os.fspath(paths)
        os.makedirs(root, exist_ok=True)
        target = os.path.join(root, f"{stem}.geojson")
        if os.path.isfile(target):
            return target
        url = MS_BUILDINGS_URL.format(state=stem)
        fd, archive = tempfile.mkstemp(prefix=f".{stem}-", suffix=".zip", dir=root)
        os.close(fd)
        try:
            _fetch_url(url, archive)
            try:
                with zipfile.ZipFile(archive) as zf:
                    if checksum and zf.testzip() is not None:
                        raise ValueError(f"buildings {url}: corrupt download (CRC mismatch)")
                    members = [m for m in zf.namelist() if m.lower().endswith(".geojson")]
                    if len(members) != 1:
                        raise ValueError(
                            f"buildings {url}: expected one .geojson in the zip, "
                            f"found {zf.namelist()}"
                        )
                    with (
                        atomic_output(target) as extracted,
                        zf.open(members[0]) as src,
                        open(extracted, "wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst)
            except zipfile.BadZipFile as err:
                raise ValueError(f"buildings {url}: download is not a zip file ({err})") from err
        finally:
            if os.path.exists(archive):  # the scratch zip, never an output
                os.remove(archive)
        return target

    def load(self, files: Sequence[str]) -> gpd.GeoDataFrame:
        """Read every footprint file once (:func:`read_footprints`)."""
        return read_footprints(files)
