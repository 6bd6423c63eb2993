"""Large-raster inference, map outputs, evaluation and the one-command city map."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .config import MapConfig
    from .engine import QTileWriter, TileDataset, TilePredictor
    from .evaluate import (
        Scores,
        confusion_matrix,
        evaluate_many,
        evaluate_maps,
        save_confusion,
        scores,
    )
    from .io import (
        quicklook,
        uncertainty_codes,
        write_class_map,
        write_probabilities,
        write_uncertainty,
        write_vrt,
    )
    from .predict import implicit_posterior_map, predict_tile, predict_windows, tile_windows
    from .run import map_region

__all__ = [
    "MapConfig",
    "QTileWriter",
    "Scores",
    "TileDataset",
    "TilePredictor",
    "confusion_matrix",
    "evaluate_many",
    "evaluate_maps",
    "implicit_posterior_map",
    "map_region",
    "predict_tile",
    "predict_windows",
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

# Names are imported from their modules on first use (see torchgeo_lsr._lazy).
__getattr__, __dir__ = lazy_exports(__name__, __file__)
