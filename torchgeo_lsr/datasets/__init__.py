"""Datasets: weak sources queried on the imagery grid, aligned tiles, and patches."""

from .aligned import AlignedTile, list_rasters, match_by_stem, read_aligned_tile
from .base import RasterSource, VectorSource
from .buildings import BuildingFootprints, read_footprints
from .enviroatlas import ENVIROATLAS_LAYERS, EnviroAtlas, EnviroAtlasLayer, EnviroAtlasRegion
from .grid import Grid
from .layers import Labels, LSRLayers
from .naip import NAIP, NAIPTile
from .nlcd import NLCD
from .osm import OSMBuildings, OSMLayer, OSMRoads, OSMWaterBodies, OSMWaterways, read_osm
from .patches import PatchDataset
from .prior import Prior
from .warping import warp_to_grid

__all__ = [
    "ENVIROATLAS_LAYERS",
    "NAIP",
    "NLCD",
    "AlignedTile",
    "BuildingFootprints",
    "EnviroAtlas",
    "EnviroAtlasLayer",
    "EnviroAtlasRegion",
    "Grid",
    "LSRLayers",
    "Labels",
    "NAIPTile",
    "OSMBuildings",
    "OSMLayer",
    "OSMRoads",
    "OSMWaterBodies",
    "OSMWaterways",
    "PatchDataset",
    "Prior",
    "RasterSource",
    "VectorSource",
    "list_rasters",
    "match_by_stem",
    "read_aligned_tile",
    "read_footprints",
    "read_osm",
    "warp_to_grid",
]
