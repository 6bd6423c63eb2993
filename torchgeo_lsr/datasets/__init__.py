"""Datasets: rasters aligned onto the imagery grid, and patches cut from them."""

from .aligned import AlignedTile, list_rasters, match_by_stem, read_aligned_tile
from .patches import PatchDataset

__all__ = ["AlignedTile", "PatchDataset", "list_rasters", "match_by_stem", "read_aligned_tile"]
