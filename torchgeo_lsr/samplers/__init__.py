"""Samplers of patch locations."""

from .patches import GridPatchSampler, PatchIndex, RandomPatchSampler, grid_offsets

__all__ = ["GridPatchSampler", "PatchIndex", "RandomPatchSampler", "grid_offsets"]
