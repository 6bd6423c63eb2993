"""Large-raster inference, map outputs, evaluation and the one-command city map."""

from .engine import QTileWriter, TileDataset, TilePredictor
from .evaluate import Scores, confusion_matrix, evaluate_maps, save_confusion, scores
from .io import (
    quicklook,
    uncertainty_codes,
    write_class_map,
    write_probabilities,
    write_uncertainty,
    write_vrt,
)
from .predict import implicit_posterior_map, predict_tile, tile_windows
from .run import MapConfig, map_region

__all__ = [
    "MapConfig",
    "QTileWriter",
    "Scores",
    "TileDataset",
    "TilePredictor",
    "confusion_matrix",
    "evaluate_maps",
    "implicit_posterior_map",
    "map_region",
    "predict_tile",
    "quicklook",
    "save_confusion",
    "scores",
    "tile_windows",
    "uncertainty_codes",
    "write_class_map",
    "write_probabilities",
    "write_uncertainty",
    "write_vrt",
]
