"""The one place where the supported TorchGeo lines (0.8.x and 0.9/0.10.x) differ.

Everything else in the package imports TorchGeo names from here when they moved
between releases, and asks here for what differs: the task classes' home and the
metadata keys of a GeoSlice sample (:func:`query_metadata`). Our own data path
(``Grid`` queries, patch samplers, the datamodule) does not use the parts of TorchGeo
that changed, so the shim stays small.

Samplers differ without needing a shim: ``torchgeo.samplers.GeoSampler`` is
``samplers.single.GeoSampler`` on 0.8 (``__init__(dataset, roi, toi)`` sets ``index``,
``res``, ``roi``, ``toi``; the base of ``RandomGeoSampler`` / ``GridGeoSampler``) but the new
``samplers.base.GeoSampler`` on 0.10 (no ``__init__``, a brute-force ``__len__``; the base
of ``RandomPatchSampler`` / ``GriddedPatchSampler``, while the deprecated ``*GeoSampler``
classes keep the old base, so they are not instances of it). ``BatchGeoSampler`` is the same
on both. :mod:`torchgeo_lsr.samplers.geo` subclasses them without calling their
``__init__`` and sets those attributes itself, so its code is the same on both lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torchgeo
from packaging.version import Version
from rasterio.transform import Affine

__all__ = ["TORCHGEO_VERSION", "BaseTask", "SemanticSegmentationTask", "query_metadata"]

#: Installed TorchGeo release.
TORCHGEO_VERSION = Version(torchgeo.__version__)

if TYPE_CHECKING:
    from torchgeo.tasks import BaseTask
    from torchgeo.tasks import SemanticSegmentation as SemanticSegmentationTask


def __getattr__(name: str) -> Any:
    """The task classes, imported when first asked for.

    They bring in Lightning, which the datasets (asking here for :func:`query_metadata`)
    do not need.
    """
    if name not in ("BaseTask", "SemanticSegmentationTask"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if Version("0.9") <= TORCHGEO_VERSION:
        import torchgeo.tasks as tasks

        found = {"BaseTask": tasks.BaseTask, "SemanticSegmentationTask": tasks.SemanticSegmentation}
    else:  # pragma: no cover - exercised on the 0.8 line
        import torchgeo.trainers as trainers  # type: ignore[import-not-found]

        found = {
            "BaseTask": trainers.BaseTask,  # type: ignore[attr-defined]
            "SemanticSegmentationTask": trainers.SemanticSegmentationTask,  # type: ignore[attr-defined]
        }
    globals().update(found)
    return found[name]


def query_metadata(dataset: Any, query: Any, transform: Affine) -> dict[str, Any]:
    """The metadata keys TorchGeo's ``RasterDataset`` puts in a GeoSlice query's sample.

    0.8: ``crs`` (the dataset's) and ``bounds`` (the query as given); 0.9 onwards:
    ``bounds`` (``GeoDataset._slice_to_tensor``: the resolved slice as 9 numbers) and
    ``transform`` (the affine coefficients of the sample's pixel grid, 9 numbers).

    Args:
        dataset: the queried ``GeoDataset``.
        query: the GeoSlice.
        transform: the sample's pixel grid (origin at the slice's top-left corner).
    """
    if hasattr(dataset, "_slice_to_tensor"):
        return {
            "bounds": dataset._slice_to_tensor(query),
            "transform": torch.tensor(tuple(transform)),
        }
    return {"crs": dataset.crs, "bounds": query}  # pragma: no cover - the 0.8 line
