"""OpenStreetMap layers (roads, waterways, water bodies, buildings) rasterised per grid query.

Malkin et al. (2022) rasterise OpenStreetMap roads, waterways and water bodies onto the
1 m imagery grid as extra weak evidence for the impervious and water classes. Each layer
here is a :class:`~torchgeo_lsr.datasets.base.VectorSource`: the extract is read once,
filtered to the layer's features, buffered once by a documented width per OSM class,
spatially indexed and rasterised per :class:`~torchgeo_lsr.datasets.grid.Grid` query.

Accepted files (any number, in ``paths``):

* ``.osm`` / ``.osm.xml``: OSM XML, read with :func:`osmnx.features.features_from_xml`.
* ``.pbf`` / ``.osm.pbf``: OSM PBF, read with `pyrosm <https://pyrosm.readthedocs.io>`_ or
  `pyosmium <https://osmcode.org/pyosmium/>`_ when importable, else with GDAL's OSM
  driver through pyogrio when that driver is compiled in (it is in pyogrio's wheels).
* ``.geojson`` / ``.gpkg``: features already extracted, one column per OSM tag (as
  written by osmnx or by this module's download), or GDAL's ``other_tags`` column.

All layers read the same files through one loader (:func:`read_osm`), which keeps the
tags in :data:`OSM_TAGS` and memoises the result per file (path, size, modification
time), so building :class:`OSMRoads`, :class:`OSMWaterways` and :class:`OSMWaterBodies`
over one extract parses it once.

Data: © OpenStreetMap contributors, ODbL, https://www.openstreetmap.org/copyright.

.. versionadded:: 0.1
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import os
import re
import xml.etree.ElementTree as ET
import xml.sax
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Unpack

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio.warp import transform_bounds

from ..outputs import atomic_output
from .base import VectorOptions, VectorSource
from .grid import Grid, PathLike

__all__ = [
    "OSM_QUERY",
    "OSM_TAGS",
    "PBF_READERS",
    "ROAD_WIDTHS_M",
    "WATERWAY_WIDTHS_M",
    "OSMBuildings",
    "OSMLayer",
    "OSMRoads",
    "OSMWaterBodies",
    "OSMWaterways",
    "download_osm",
    "osm_cache_name",
    "read_osm",
]

#: OSM tags kept as columns by :func:`read_osm` (everything the layers filter on).
OSM_TAGS: tuple[str, ...] = (
    "highway",
    "waterway",
    "natural",
    "water",
    "landuse",
    "building",
    "tunnel",
    "culvert",
    "covered",
    "area",
    "width",
    "name",
)

#: Tags requested from the Overpass API by :func:`download_osm` (osmnx ``tags``).
OSM_QUERY: dict[str, bool | str | list[str]] = {
    "highway": True,
    "waterway": True,
    "natural": "water",
    "water": True,
    "landuse": ["reservoir", "basin"],
    "building": True,
}

#: Full carriageway width in metres per ``highway=*`` value; features are buffered by half.
#:
#: Assumptions (US urban roads, as in the paper's cities): a lane is 12 ft = 3.66 m
#: (AASHTO "Green Book" standard lane), motorways have 2 x 2 lanes plus shoulders, trunk
#: and primary roads 4 lanes, secondary 3, tertiary 2 plus parking, residential and
#: unclassified streets 2 narrow lanes, service roads and tracks one lane, and paths
#: (footway, cycleway, path, steps, bridleway) 2 m of pavement. ``*_link`` ramps are one
#: wide lane. Values not listed (``proposed``, ``construction``, ``bus_stop``, ...) are not
#: roads. A numeric ``width=*`` tag in metres on a way overrides the table.
ROAD_WIDTHS_M: dict[str, float] = {
    "motorway": 22.0,
    "trunk": 18.0,
    "primary": 15.0,
    "secondary": 12.0,
    "tertiary": 10.0,
    "unclassified": 7.0,
    "residential": 7.0,
    "living_street": 6.0,
    "road": 7.0,
    "busway": 7.0,
    "motorway_link": 8.0,
    "trunk_link": 8.0,
    "primary_link": 7.0,
    "secondary_link": 7.0,
    "tertiary_link": 6.0,
    "service": 5.0,
    "track": 4.0,
    "pedestrian": 5.0,
    "footway": 2.0,
    "cycleway": 2.0,
    "path": 2.0,
    "bridleway": 2.0,
    "steps": 2.0,
}

#: Channel width in metres per ``waterway=*`` value; features are buffered by half.
#:
#: Assumptions: rivers mapped as a centreline only are modest (wide rivers are also mapped
#: as ``natural=water`` areas, read by :class:`OSMWaterBodies`); canals 10 m; streams 3 m
#: (OSM's definition: narrow enough to jump or wade); ditches and drains 2 m. A numeric
#: ``width=*`` tag in metres overrides the table.
WATERWAY_WIDTHS_M: dict[str, float] = {
    "river": 15.0,
    "canal": 10.0,
    "stream": 3.0,
    "ditch": 2.0,
    "drain": 2.0,
}

_LINES = ("LineString", "MultiLineString")
_AREAS = ("Polygon", "MultiPolygon")

#: A reader takes a path and returns a GeoDataFrame with tag columns.
_Reader = Callable[[str], gpd.GeoDataFrame]


def _module_available(name: str) -> bool:
    """Whether ``name`` can be imported (a seam the tests monkeypatch)."""
    return importlib.util.find_spec(name) is not None


def _gdal_osm_available() -> bool:
    """Whether pyogrio's GDAL has the read-only ``OSM`` driver."""
    if not _module_available("pyogrio"):
        return False
    import pyogrio

    return "OSM" in pyogrio.list_drivers()


def _normalise(frame: gpd.GeoDataFrame | pd.DataFrame, path: str) -> gpd.GeoDataFrame:
    """Keep the geometry, ``osm_type``, ``osm_id`` and the :data:`OSM_TAGS` columns."""
    if not isinstance(frame, gpd.GeoDataFrame):
        frame = gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")
    if frame.crs is None:
        raise ValueError(f"OpenStreetMap {path}: has no CRS; expected features with a CRS")
    frame = frame.reset_index()
    frame = frame.rename(
        columns={"element": "osm_type", "element_type": "osm_type", "id": "osm_id"}
    )
    if "other_tags" in frame.columns:
        parsed = [_parse_hstore(v) for v in frame["other_tags"]]
        for tag in OSM_TAGS:
            values = [p.get(tag) for p in parsed]
            if tag in frame.columns:
                frame[tag] = frame[tag].where(frame[tag].notna(), pd.Series(values, dtype=object))
            else:
                frame[tag] = values
    data: dict[str, Any] = {}
    for column in ("osm_type", "osm_id", *OSM_TAGS):
        if column in frame.columns:
            values = frame[column].astype(object)
            data[column] = values.where(values.notna(), None).map(
                lambda v: None if v is None else str(v)
            )
        else:
            data[column] = [None] * len(frame)
    out = gpd.GeoDataFrame(data, geometry=frame.geometry.values, crs=frame.crs)
    out = out[out.geometry.notna()]
    out = out[~out.geometry.is_empty]
    return out.reset_index(drop=True)


_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def _parse_hstore(value: Any) -> dict[str, str]:
    """Parse GDAL's ``other_tags`` (``"k"=>"v","k2"=>"v2"``) into a dict."""
    if not isinstance(value, str):
        return {}
    return {k.replace('\\"', '"'): v.replace('\\"', '"') for k, v in _HSTORE.findall(value)}


def _read_xml(path: str) -> gpd.GeoDataFrame:
    """OSM XML through :func:`osmnx.features.features_from_xml`."""
    import osmnx

    try:
        frame = osmnx.features.features_from_xml(path)
    except (ET.ParseError, xml.sax.SAXParseException) as err:
        raise ValueError(f"OpenStreetMap {path}: not valid OSM XML ({err})") from err
    except osmnx._errors.InsufficientResponseError as err:
        raise ValueError(
            f"OpenStreetMap {path}: has no tagged features; expected an OSM XML extract "
            "with tagged nodes, ways or relations"
        ) from err
    return _normalise(frame, path)


def _read_pyrosm(path: str) -> gpd.GeoDataFrame:
    """OSM PBF through pyrosm (ways and relations carrying a :data:`OSM_QUERY` key)."""
    pyrosm = importlib.import_module("pyrosm")
    frame = pyrosm.OSM(path).get_data_by_custom_criteria(
        custom_filter={k: True for k in OSM_QUERY},
        tags_as_columns=list(OSM_TAGS),
        keep_nodes=False,
        keep_ways=True,
        keep_relations=True,
    )
    if frame is None:  # nothing matched
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4326")
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    return frame


def _read_osmium(path: str) -> gpd.GeoDataFrame:
    """OSM PBF through pyosmium: ways as lines, closed ways and multipolygons as areas."""
    osmium = importlib.import_module("osmium")
    wkb = osmium.geom.WKBFactory()
    rows: list[dict[str, Any]] = []
    linear = ("highway", "waterway")
    for obj in osmium.FileProcessor(path).with_locations().with_areas():
        tags = {k: obj.tags.get(k) for k in OSM_TAGS if k in obj.tags}
        if not any(k in tags for k in OSM_QUERY):
            continue
        if obj.is_way() and any(k in tags for k in linear):
            try:
                geometry = shapely.from_wkb(wkb.create_linestring(obj))
            except RuntimeError:  # a way with fewer than two valid nodes
                continue
            rows.append({"element": "way", "id": obj.id, "geometry": geometry, **tags})
        elif obj.is_area() and not any(k in tags for k in linear):
            try:
                geometry = shapely.from_wkb(wkb.create_multipolygon(obj))
            except RuntimeError:  # an area osmium could not assemble
                continue
            element = "way" if obj.from_way() else "relation"
            rows.append({"element": element, "id": obj.orig_id(), "geometry": geometry, **tags})
    return gpd.GeoDataFrame(rows or {"geometry": []}, geometry="geometry", crs="EPSG:4326")


def _read_gdal(path: str) -> gpd.GeoDataFrame:
    """OSM PBF or XML through GDAL's OSM driver (lines and multipolygons layers)."""
    import pyogrio

    frames = []
    for layer in ("lines", "multilinestrings", "multipolygons"):
        frame = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
        if "osm_way_id" in frame.columns:  # multipolygons: closed ways or relations
            is_way = frame["osm_way_id"].notna()
            frame["element"] = np.where(is_way, "way", "relation")
            frame["id"] = frame["osm_way_id"].where(is_way, frame["osm_id"])
        else:
            frame["element"] = "relation" if layer == "multilinestrings" else "way"
            frame["id"] = frame["osm_id"]
        frames.append(frame.drop(columns=["osm_id"]))
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=frames[0].crs or "EPSG:4326")


def _read_features(path: str) -> gpd.GeoDataFrame:
    """Already-extracted features (GeoJSON, GeoPackage) with tag columns."""
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises DataSourceError, fiona DriverError, ...
        raise ValueError(f"OpenStreetMap {path}: not a readable vector file ({err})") from err
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame.columns:
        raise ValueError(f"OpenStreetMap {path}: has no geometry; expected OSM features")
    if frame.crs is None:
        raise ValueError(
            f"OpenStreetMap {path}: has no CRS; expected a georeferenced vector file "
            "(e.g. EPSG:4326)"
        )
    return frame


#: PBF readers in order of preference: name -> (availability check, reader). The first
#: available one reads the file; extend or reorder it to plug in another reader.
PBF_READERS: dict[str, tuple[Callable[[], bool], _Reader]] = {
    "pyrosm": (lambda: _module_available("pyrosm"), _read_pyrosm),
    "osmium": (lambda: _module_available("osmium"), _read_osmium),
    "gdal": (_gdal_osm_available, _read_gdal),
}


def _read_pbf(path: str) -> gpd.GeoDataFrame:
    for available, reader in PBF_READERS.values():
        if available():
            return _normalise(reader(path), path)
    raise ImportError(
        f"OpenStreetMap {path}: reading .pbf needs pyrosm or osmium (`pip install pyrosm` "
        "or `pip install osmium`), or GDAL built with its OSM driver; none is available. "
        "Alternatively convert it to .osm XML or GeoPackage."
    )


def _kind(path: str) -> str:
    name = os.path.basename(path).lower()
    if name.endswith((".osm", ".osm.xml")):
        return "xml"
    if name.endswith(".pbf"):
        return "pbf"
    if name.endswith((".geojson", ".json", ".gpkg")):
        return "features"
    raise ValueError(
        f"OpenStreetMap {path}: unsupported file type; expected .osm, .osm.xml, .pbf, "
        ".geojson, .json or .gpkg"
    )


#: Memo of parsed files: (realpath, size, mtime_ns) -> normalised frame.
_MEMO: OrderedDict[tuple[str, int, int], gpd.GeoDataFrame] = OrderedDict()
_MEMO_SIZE = 4


def _read_one(path: str) -> gpd.GeoDataFrame:
    """Read one file of any supported type into the normalised tagged frame."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"OpenStreetMap {path}: no such file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"OpenStreetMap {path}: is empty; expected an OSM extract")
    kind = _kind(path)
    if kind == "xml":
        return _read_xml(path)
    if kind == "pbf":
        return _read_pbf(path)
    return _normalise(_read_features(path), path)


def read_osm(files: str | PathLike | Sequence[PathLike], cache: bool = True) -> gpd.GeoDataFrame:
    """Read OSM extract(s) into one GeoDataFrame of tagged features.

    Args:
        files: ``.osm``, ``.osm.xml``, ``.pbf``, ``.geojson``, ``.json`` or ``.gpkg`` file(s).
        cache: reuse a file's parsed features while its size and modification time are
            unchanged (the last few files are kept).

    Returns:
        Columns ``osm_type`` (``node``/``way``/``relation`` when known), ``osm_id``, one
        string column per tag in :data:`OSM_TAGS` (``None`` where absent) and
        ``geometry``, in the CRS of the first file (EPSG:4326 for OSM data).

    Raises:
        ValueError: for an empty or unreadable file, a file without CRS or an unsupported
            extension, naming the file.
        ImportError: for ``.pbf`` when neither pyrosm, osmium nor GDAL's OSM driver exists.
    """
    paths = [os.fspath(files)] if isinstance(files, str | os.PathLike) else list(files)
    frames = []
    for item in paths:
        path = os.fspath(item)
        key = None
        if cache and os.path.isfile(path):
            stat = os.stat(path)
            key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if key is not None and key in _MEMO:
            _MEMO.move_to_end(key)
            frame = _MEMO[key]
        else:
            frame = _read_one(path)
            if key is not None:
                _MEMO[key] = frame
                while len(_MEMO) > _MEMO_SIZE:
                    _MEMO.popitem(last=False)
        frames.append(frame)
    if not frames:
        raise ValueError("read_osm: no files given")
    crs = frames[0].crs
    merged = pd.concat([f.to_crs(crs) for f in frames], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=crs)


def _bbox_lonlat(bounds: tuple[float, float, float, float] | Grid) -> tuple[float, ...]:
    if isinstance(bounds, Grid):
        w, s, e, n = transform_bounds(bounds.crs, "EPSG:4326", *bounds.bounds, densify_pts=21)
    else:
        w, s, e, n = (float(v) for v in bounds)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValueError(
            f"bbox {(w, s, e, n)}: expected (west, south, east, north) in degrees "
            "with west < east and south < north"
        )
    return w, s, e, n


def osm_cache_name(bounds: tuple[float, float, float, float] | Grid) -> str:
    """File name of the GeoPackage cached by :func:`download_osm` for ``bounds``."""
    w, s, e, n = _bbox_lonlat(bounds)
    return f"osm_{w:.5f}_{s:.5f}_{e:.5f}_{n:.5f}.gpkg"


def download_osm(
    root: PathLike,
    bounds: tuple[float, float, float, float] | Grid,
    tags: Mapping[str, bool | str | list[str]] | None = None,
) -> str:
    """Fetch OSM features in ``bounds`` through osmnx (Overpass) into a GeoPackage cache.

    The file is written under a hidden temporary name in ``root`` and renamed when
    complete, so an interrupted download never leaves a half-written ``.gpkg``. An
    existing cache file is returned without fetching.

    Args:
        root: directory of the cache.
        bounds: ``(west, south, east, north)`` in degrees (EPSG:4326), or a :class:`Grid`
            whose bounds are used.
        tags: osmnx ``tags`` query; default :data:`OSM_QUERY`.

    Returns:
        Path of the GeoPackage (layer ``osm``; columns as :func:`read_osm` returns).
    """
    import osmnx

    w, s, e, n = _bbox_lonlat(bounds)
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, osm_cache_name(bounds))
    if os.path.isfile(target):
        return target
    frame = osmnx.features.features_from_polygon(
        shapely.box(w, s, e, n), tags=dict(tags if tags is not None else OSM_QUERY)
    )
    frame = _normalise(frame, target)
    with atomic_output(target) as tmp:  # GDAL creates the GeoPackage itself
        frame.to_file(tmp, driver="GPKG", layer="osm")
    return target


def _tag(features: gpd.GeoDataFrame, tag: str) -> pd.Series:
    return features[tag] if tag in features.columns else pd.Series(None, index=features.index)


def _is_set(values: pd.Series) -> np.ndarray:
    """Tag present and not ``no`` (OSM's explicit negative)."""
    return np.asarray(values.notna() & (values.astype(str).str.lower() != "no"))


def _widths(features: gpd.GeoDataFrame, key: str, table: Mapping[str, float]) -> np.ndarray:
    """Width per feature: a numeric ``width`` tag in metres, else ``table[features[key]]``."""
    default = _tag(features, key).map(table).astype(float).to_numpy()
    tagged = pd.to_numeric(
        _tag(features, "width").astype(str).str.extract(r"^\s*([0-9]*\.?[0-9]+)\s*m?\s*$")[0],
        errors="coerce",
    ).to_numpy()
    return np.where(np.isfinite(tagged) & (tagged > 0), tagged, default)


class OSMLayer(VectorSource):
    """One OpenStreetMap layer: the extract read once, filtered by :meth:`select`.

    Args:
        paths: OSM file(s) or directories of them (see the module docstring).
        bbox: area to download when ``download=True``: ``(west, south, east, north)``
            in degrees, or a :class:`Grid`.
        **kwargs: ``crs`` (default that of the first file, EPSG:4326), ``res``
            (unused), ``transforms`` and ``all_touched`` as for
            :class:`~.base.VectorSource`; ``cache`` also memoises parsed files
            (:func:`read_osm`); ``download`` fetches ``bbox`` through osmnx into
            ``paths`` (a directory) as a GeoPackage when that cache file is missing
            (without ``bbox`` it needs files to be there); ``checksum`` is unused
            (Overpass publishes no checksums).

    Raises:
        DatasetNotFoundError: if no file is found and ``download=False``.
    """

    what: ClassVar[str] = "OpenStreetMap"
    filename_glob: str | tuple[str, ...] = (
        "*.osm",
        "*.osm.xml",
        "*.pbf",
        "*.geojson",
        "*.gpkg",
    )

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        bbox: tuple[float, float, float, float] | Grid | None = None,
        **kwargs: Unpack[VectorOptions],
    ) -> None:
        self.bbox = bbox
        super().__init__(paths, **kwargs)

    @staticmethod
    def _root(paths: PathLike | Iterable[PathLike]) -> str:
        if not isinstance(paths, str | os.PathLike):
            raise ValueError("download=True needs `paths` to be one directory, not a list")
        root = os.fspath(paths)
        if os.path.isfile(root):
            raise ValueError(f"download=True needs `paths` to be a directory, got file {root}")
        return root

    def _download(self) -> None:
        """Fetch :attr:`bbox` unless its cache file is there; without ``bbox``, need files."""
        if self.bbox is not None:
            download_osm(self._root(self.paths), self.bbox)
        elif not self._list_files(self.filename_glob):
            raise ValueError(
                f"{type(self).__name__}: download=True needs `bbox` (west, south, east, north "
                "in degrees, or a Grid) to know what to fetch"
            )

    def load(self, files: Sequence[str]) -> gpd.GeoDataFrame:
        """Read all ``files`` once (:func:`read_osm`) and keep :meth:`select`'s features."""
        features = read_osm(files, cache=self.cache)
        keep = np.asarray(self.select(features), dtype=bool)
        return features[keep].reset_index(drop=True)

    @abc.abstractmethod
    def select(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Boolean mask of the features that belong to this layer."""


class OSMRoads(OSMLayer):
    """OpenStreetMap roads: ``highway=*`` lines buffered by :data:`ROAD_WIDTHS_M`.

    Kept: line features whose ``highway`` value is in :data:`ROAD_WIDTHS_M`. Dropped:
    other ``highway`` values (``proposed``, ``construction``, bus stops, ...), points and
    areas, and roads in tunnels (``tunnel=*`` other than ``no``), which imagery cannot see.
    Each line is buffered by half its width (:data:`ROAD_WIDTHS_M`, or a numeric
    ``width=*`` tag) in a metric CRS, once, and burnt as 1.

    Example:
        >>> ROAD_WIDTHS_M["primary"] / 2, ROAD_WIDTHS_M["residential"] / 2  # buffers, metres
        (7.5, 3.5)

    .. versionadded:: 0.1
    """

    def select(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Line features with a known ``highway`` class, not in a tunnel."""
        highway = _tag(features, "highway")
        return np.asarray(
            highway.isin(list(ROAD_WIDTHS_M))
            & features.geometry.geom_type.isin(_LINES)
            & ~_is_set(_tag(features, "tunnel"))
        )

    def buffer_m(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Half the road width (:data:`ROAD_WIDTHS_M` or ``width=*``) in metres."""
        return _widths(features, "highway", ROAD_WIDTHS_M) / 2


class OSMWaterways(OSMLayer):
    """OpenStreetMap waterways: river, stream, canal, ditch and drain lines, not culverts.

    Kept: line features with ``waterway`` in :data:`WATERWAY_WIDTHS_M`. Dropped, as in
    the paper, water that flows underground: features tagged ``tunnel=*`` (``culvert``,
    ``yes``, ...; anything but ``no``), ``culvert=*`` (not ``no``) or ``covered=yes``.
    Each line is buffered by half its width (:data:`WATERWAY_WIDTHS_M`, or a numeric
    ``width=*`` tag) and burnt as 1.

    .. versionadded:: 0.1
    """

    def select(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Open (not culverted) waterway lines of a known class."""
        hidden = (
            _is_set(_tag(features, "tunnel"))
            | _is_set(_tag(features, "culvert"))
            | np.asarray(_tag(features, "covered").astype(str).str.lower() == "yes")
        )
        return np.asarray(
            _tag(features, "waterway").isin(list(WATERWAY_WIDTHS_M))
            & features.geometry.geom_type.isin(_LINES)
            & ~hidden
        )

    def buffer_m(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Half the channel width (:data:`WATERWAY_WIDTHS_M` or ``width=*``) in metres."""
        return _widths(features, "waterway", WATERWAY_WIDTHS_M) / 2


class OSMWaterBodies(OSMLayer):
    """OpenStreetMap water areas: lakes, ponds, reservoirs, river areas.

    Kept: polygon features (closed ways and multipolygon relations) tagged

    * ``natural=water`` (the current scheme; ``water=lake/pond/river/reservoir/...``
      refines it), or
    * ``water=*`` alone (a sub-tag used without ``natural=water`` by some mappers), or
    * ``landuse=reservoir`` (the older reservoir scheme), or
    * ``landuse=basin`` only when also tagged ``natural=water`` or ``water=*``: most
      basins are stormwater detention areas that are dry grass in imagery.

    Dropped: ``covered=yes`` (covered reservoirs) and ``natural=wetland`` (not open
    water). Areas are burnt as 1 without buffer.

    .. versionadded:: 0.1
    """

    def select(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Polygons of open water (see the class docstring)."""
        natural = np.asarray(_tag(features, "natural") == "water")
        water = _is_set(_tag(features, "water"))
        landuse = _tag(features, "landuse")
        wet = natural | water | np.asarray(landuse == "reservoir")
        covered = np.asarray(_tag(features, "covered").astype(str).str.lower() == "yes")
        areas = np.asarray(features.geometry.geom_type.isin(_AREAS), dtype=bool)
        return np.asarray(areas & wet & ~covered, dtype=bool)


class OSMBuildings(OSMLayer):
    """OpenStreetMap buildings: ``building=*`` polygons (not ``building=no``), unbuffered.

    A complement to :class:`~torchgeo_lsr.datasets.buildings.BuildingFootprints` where
    Microsoft's footprints are missing or outdated.

    .. versionadded:: 0.1
    """

    def select(self, features: gpd.GeoDataFrame) -> np.ndarray:
        """Polygons tagged ``building=*`` (not ``no``)."""
        areas = np.asarray(features.geometry.geom_type.isin(_AREAS), dtype=bool)
        return np.asarray(areas & _is_set(_tag(features, "building")), dtype=bool)
