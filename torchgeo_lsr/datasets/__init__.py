"""Datasets: weak sources queried on the imagery grid, aligned tiles, and patches."""

from .aligned import AlignedTile, list_rasters, match_by_stem, read_aligned_tile
from .base import Grid, RasterSource, VectorSource, warp_to_grid
from .enviroatlas import ENVIROATLAS_LAYERS, EnviroAtlas, EnviroAtlasLayer, EnviroAtlasRegion
from .naip import NAIP, NAIPTile
from .nlcd import NLCD
from .patches import PatchDataset

__all__ = [
    "ENVIROATLAS_LAYERS",
    "NAIP",
    "NLCD",
    "AlignedTile",
    "EnviroAtlas",
    "EnviroAtlasLayer",
    "EnviroAtlasRegion",
    "Grid",
    "NAIPTile",
    "PatchDataset",
    "RasterSource",
    "VectorSource",
    "list_rasters",
    "match_by_stem",
    "read_aligned_tile",
    "warp_to_grid",
]
