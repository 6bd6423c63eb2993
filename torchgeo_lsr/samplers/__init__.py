"""Samplers of patch locations over in-memory tiles."""

from .patches import (
    GridPatchSampler,
    MixedTileBatchSampler,
    PatchIndex,
    RandomPatchSampler,
    TileQuotaSampler,
    grid_offsets,
)

__all__ = [
    "GridPatchSampler",
    "MixedTileBatchSampler",
    "PatchIndex",
    "RandomPatchSampler",
    "TileQuotaSampler",
    "grid_offsets",
]
