"""Imagery & prior (& labels) as one TorchGeo dataset, for TorchGeo's own ``GeoDataModule``.

:class:`LSRLayers` is what ``torchgeo.datamodules.GeoDataModule(dataset_class=LSRLayers,
...)`` builds for each split: the intersection of an imagery source, a :class:`~.prior.Prior`
and optionally :class:`Labels`, sampled by TorchGeo's samplers. ``LSRDataModule`` (aligned
tiles in memory, our patch samplers) stays the fast path; this is the TorchGeo path to the
same task (``configs/torchgeo_geodatamodule.yaml``).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch
from matplotlib.figure import Figure
from torchgeo.datasets import IntersectionDataset

from .base import RasterSource, Sample, SourceOptions, Transform
from .grid import PathLike
from .prior import Prior

__all__ = ["LSRLayers", "Labels"]


class Labels(RasterSource):
    """A label raster (class codes), as class indices with an ignore value.

    ``mask`` (int64 ``(H, W)``): ``label_map[code]`` (codes as they are without a map),
    ``ignore_index`` where a code is not in ``label_map`` or no file covers the pixel.
    Nearest-neighbour onto the queried grid.

    Args:
        paths: label files or directories (``*.tif``).
        label_map: stored code -> class index; default the codes are the indices.
        ignore_index: the value of unlabelled pixels.
        **kwargs: :class:`~.base.SourceOptions`.
    """

    what = "labels"
    is_image = False

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        *,
        label_map: Mapping[int, int] | None = None,
        ignore_index: int = 255,
        **kwargs: Unpack[SourceOptions],
    ) -> None:
        self.label_map = (
            None if label_map is None else {int(k): int(v) for k, v in label_map.items()}
        )
        self.ignore_index = int(ignore_index)
        super().__init__(paths, **kwargs)

    def finalize(self, data: np.ndarray, valid: np.ndarray) -> Sample:
        """``mask`` of class indices (``ignore_index`` off the map or off the files)."""
        codes = data[0]
        if self.label_map is None:
            mask = np.where(valid, codes, self.ignore_index)
        else:
            lut_codes = np.array(sorted(self.label_map), dtype=np.int64)
            lut = np.array([self.label_map[c] for c in lut_codes], dtype=np.int64)
            at = np.clip(np.searchsorted(lut_codes, codes), 0, len(lut_codes) - 1)
            known = valid & (lut_codes[at] == codes)
            mask = np.where(known, lut[at], self.ignore_index)
        return {"mask": torch.from_numpy(mask.astype(np.int64)), "valid": torch.from_numpy(valid)}


class LSRLayers(IntersectionDataset):
    """``images & priors`` (``& labels``): one split of a region for TorchGeo's samplers.

    Samples hold ``image`` (float32 ``(C, H, W)``, raw values), ``prior`` (float32
    ``(K, H, W)`` probabilities) and, with labels, ``mask`` (int64 ``(H, W)``, class
    indices, ``ignore_index`` where unlabelled), plus the metadata keys of the installed
    TorchGeo line. Everything is read onto the imagery's CRS and resolution (TorchGeo's
    ``&``), so a coarse prior in another CRS is warped per query.

    ``split`` keeps the imagery files whose stem ``splits[split]`` lists (default every
    file for every split: weak supervision trains on the region and validates against
    whatever labels it has).

    Args:
        images: imagery files or directories (``*.tif``).
        priors: prior files or directories (:class:`~.prior.Prior`).
        labels: optional label files or directories (:class:`Labels`).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"predict"`` (as ``GeoDataModule``
            asks).
        splits: split -> imagery file stems.
        label_map: stored label code -> class index.
        ignore_index: the value of unlabelled pixels.
        transforms: applied to each merged sample.

    Raises:
        ValueError: naming the split, if ``splits`` leaves it no imagery file.
        DatasetNotFoundError: if a source has no file.

    Example (what ``configs/torchgeo_geodatamodule.yaml`` builds):
        >>> from torchgeo.datamodules import GeoDataModule
        >>> dm = GeoDataModule(LSRLayers, batch_size=4, patch_size=32, length=8,
        ...                    images="tests/data/tiny/naip", priors="tests/data/tiny/prior")
    """

    def __init__(
        self,
        images: PathLike | Iterable[PathLike],
        priors: PathLike | Iterable[PathLike],
        labels: PathLike | Iterable[PathLike] | None = None,
        *,
        split: str = "train",
        splits: Mapping[str, Sequence[str]] | None = None,
        label_map: Mapping[int, int] | None = None,
        ignore_index: int = 255,
        transforms: Transform | None = None,
    ) -> None:
        imagery = RasterSource(images)
        files = imagery.files
        if splits is not None:
            keep = {str(s) for s in splits.get(split, ())}
            chosen = [f for f in files if Path(f).stem in keep]
            if not chosen:
                raise ValueError(
                    f"LSRLayers: splits[{split!r}] names no imagery file of {images!r} "
                    f"(stems: {sorted(Path(f).stem for f in files)})"
                )
            imagery = RasterSource(chosen)
        self.split = split
        self.prior = Prior(priors)
        if labels is None:
            super().__init__(imagery, self.prior, transforms=transforms)
        else:
            found = Labels(labels, label_map=label_map, ignore_index=ignore_index)
            super().__init__(imagery & self.prior, found, transforms=transforms)

    def plot(
        self, sample: dict[str, Any], show_titles: bool = True, suptitle: str | None = None
    ) -> Figure:
        """Image | prior | q | r | prediction | labels, in the prior's class colours.

        The scheme is the one the prior file names (``LSR_CLASSES``), else a palette of the
        prior's class count (:meth:`Prior.plot <.prior.Prior.plot>`).
        """
        return self.prior.plot(sample, show_titles=show_titles, suptitle=suptitle)
