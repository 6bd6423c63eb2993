"""The one dataset constructor: ``paths`` positional, every option keyword-only (issue 14)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from rasterio.crs import CRS

from torchgeo_lsr.datasets import (
    NAIP,
    NLCD,
    BuildingFootprints,
    EnviroAtlas,
    OSMBuildings,
    OSMRoads,
    OSMWaterBodies,
    OSMWaterways,
    RasterSource,
    VectorSource,
)
from torchgeo_lsr.datasets.base import GeoSource
from torchgeo_lsr.datasets.chesapeake import ChesapeakeCVPR

DATA = Path(__file__).parent / "data"
SOURCES = [
    GeoSource,
    RasterSource,
    VectorSource,
    NAIP,
    NLCD,
    EnviroAtlas,
    ChesapeakeCVPR,
    BuildingFootprints,
    OSMRoads,
    OSMWaterways,
    OSMWaterBodies,
    OSMBuildings,
]


@pytest.mark.parametrize("cls", SOURCES, ids=lambda cls: cls.__name__)
def test_only_paths_is_positional(cls: type[GeoSource]) -> None:
    params = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in params[:1]] == ["paths"]
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    kinds = {p.kind for p in params[1:]}
    assert kinds <= {inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD}


def test_options_are_refused_by_position() -> None:
    with pytest.raises(TypeError):
        NAIP(DATA / "naip", "EPSG:32617")  # type: ignore[misc]
    with pytest.raises(TypeError):
        OSMRoads(DATA / "osm" / "region.osm", None, None, None, True)  # type: ignore[misc]


def test_keywords_reach_the_base() -> None:
    nlcd = NLCD(DATA / "nlcd", years=[2019], crs="EPSG:5070", res=60.0, cache=False)
    assert (nlcd.crs, nlcd.res, nlcd.cache) == (CRS.from_epsg(5070), (60.0, 60.0), False)
    assert nlcd.years == (2019,)
    roads = OSMRoads(DATA / "osm" / "region.osm", all_touched=True, checksum=True)
    assert (roads.all_touched, roads.checksum, roads.download) == (True, True, False)
    with pytest.raises(TypeError, match="bands"):
        NLCD(DATA / "nlcd", bands=["x"])  # type: ignore[call-arg]
