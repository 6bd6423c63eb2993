"""The one place where the supported TorchGeo lines (0.8.x and 0.9/0.10.x) differ.

Everything else in the package imports TorchGeo names from here when they moved
between releases. Our own data path (datasets, samplers, datamodule) does not use the
parts of TorchGeo that changed (sample keys, sampler outputs, NLCD ordinal maps), so
the shim stays small.

Samplers differ without needing a shim: ``torchgeo.samplers.GeoSampler`` is
``samplers.single.GeoSampler`` on 0.8 (``__init__(dataset, roi, toi)`` sets ``index``,
``res``, ``roi``, ``toi``; the base of ``RandomGeoSampler`` / ``GridGeoSampler``) but the new
``samplers.base.GeoSampler`` on 0.10 (no ``__init__``, a brute-force ``__len__``; the base
of ``RandomPatchSampler`` / ``GriddedPatchSampler``, while the deprecated ``*GeoSampler``
classes keep the old base, so they are not instances of it). ``BatchGeoSampler`` is the same
on both. :mod:`torchgeo_lsr.samplers.geo` subclasses them without calling their
``__init__`` and sets those attributes itself, so its code is the same on both lines (and
it does not import this module, which loads ``torchgeo.tasks`` and with it Lightning).
"""

from __future__ import annotations

import torchgeo
from packaging.version import Version

__all__ = ["TORCHGEO_VERSION", "BaseTask", "SemanticSegmentationTask"]

#: Installed TorchGeo release.
TORCHGEO_VERSION = Version(torchgeo.__version__)

if Version("0.9") <= TORCHGEO_VERSION:
    from torchgeo.tasks import BaseTask
    from torchgeo.tasks import SemanticSegmentation as SemanticSegmentationTask
else:  # pragma: no cover - exercised on the 0.8 line
    from torchgeo.trainers import (  # type: ignore[no-redef,attr-defined]
        BaseTask,
        SemanticSegmentationTask,
    )
