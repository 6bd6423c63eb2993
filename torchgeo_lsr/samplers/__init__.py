"""Samplers of patch locations: over in-memory tiles (pixels) and over any GeoDataset."""

from .geo import (
    GeoQuery,
    GeoTile,
    GridGeoPatchSampler,
    MixedTileBatchGeoSampler,
    RandomGeoPatchSampler,
    TileQuotaGeoSampler,
    geo_tiles,
    patch_query,
)
from .patches import (
    GridPatchSampler,
    MixedTileBatchSampler,
    PatchIndex,
    RandomPatchSampler,
    TileQuotaSampler,
    grid_offsets,
)

__all__ = [
    "GeoQuery",
    "GeoTile",
    "GridGeoPatchSampler",
    "GridPatchSampler",
    "MixedTileBatchGeoSampler",
    "MixedTileBatchSampler",
    "PatchIndex",
    "RandomGeoPatchSampler",
    "RandomPatchSampler",
    "TileQuotaGeoSampler",
    "TileQuotaSampler",
    "geo_tiles",
    "grid_offsets",
    "patch_query",
]
