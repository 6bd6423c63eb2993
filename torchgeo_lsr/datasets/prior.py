"""Prior files (what ``torchgeo-lsr prior`` writes) as a TorchGeo layer.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

import numpy as np
from matplotlib.figure import Figure

from ..formats import CLASSES_TAG, prior_scale
from .base import RasterSource, Sample, SourceOptions
from .grid import Grid, PathLike, open_raster
from .warping import Remap

__all__ = ["Prior"]


class Prior(RasterSource):
    """Per-pixel class probabilities ``P_i(l)`` from prior GeoTIFFs.

    Reads the files ``torchgeo-lsr prior`` writes (:func:`torchgeo_lsr.formats.write_prior`:
    one band per class, float32 probabilities or uint8 quantised with their ``LSR_SCALE``
    tag), and any GeoTIFF of probabilities. Values are divided by each file's stored scale
    (:func:`~torchgeo_lsr.formats.prior_scale`; files without the tag: uint8 is x255),
    then resampled bilinearly onto the queried grid (a convex combination, so every pixel
    stays on the simplex) or read as they are when the grid is the file's.

    A query returns ``prior`` (float32 ``(K, H, W)``; or ``sample_key``) and, for a
    :class:`~.grid.Grid` query, ``valid`` (bool ``(H, W)``). As a TorchGeo ``GeoDataset``
    the files span all time, so ``NAIP & Prior`` intersects wherever they overlap.

    Args:
        paths: prior files or directories (searched recursively for ``*.tif``).
        **kwargs: ``crs``, ``res``, ``transforms``, ``sample_key``, ``cache``,
            ``download`` (must be False) and ``checksum`` (:class:`~.base.SourceOptions`);
            every band (class) is read, so there is no ``bands``.

    Raises:
        DatasetNotFoundError: if no file is found.
        TypeError: on ``bands``.

    Example:
        >>> import tempfile, torch
        >>> from torchgeo_lsr.classes import get_scheme
        >>> from torchgeo_lsr.formats import write_prior
        >>> grid = Grid.from_bounds("EPSG:32617", (0, 0, 4, 4), res=1.0)
        >>> probs = torch.full((5, 4, 4), 0.2)
        >>> path = write_prior(tempfile.mkdtemp() + "/p.tif", probs, grid,
        ...                    get_scheme("enviroatlas5"), key="k", dtype="uint8")
        >>> prior = Prior(path)
        >>> prior.scheme, round(float(prior[grid]["prior"][0, 0, 0]), 3)
        ('enviroatlas5', 0.2)
    """

    what = "prior"
    filename_glob = "*.tif"
    is_image = True

    def __init__(
        self,
        paths: PathLike | Iterable[PathLike] = "data",
        **kwargs: Unpack[SourceOptions],
    ) -> None:
        if "bands" in kwargs:  # RasterSource takes it; a prior's bands are its classes
            raise TypeError("Prior() got an unexpected keyword argument 'bands' (all classes)")
        super().__init__(paths, **kwargs)
        # Each file's stored scale, read once (a query would otherwise open its files twice).
        self._scales: dict[str, float] = {}
        for path in self.files:
            with open_raster(path, self.what) as src:
                self._scales[path] = prior_scale(src)
                if path == self.files[0]:
                    #: Name of the class scheme the first file was written for (its
                    #: ``LSR_CLASSES`` tag), or None for a file without it.
                    self.scheme: str | None = src.tags().get(CLASSES_TAG)

    def _default_key(self) -> str:
        return "prior"

    def read_file(
        self, path: str, grid: Grid, remap: Remap | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One file's probabilities on ``grid``: ``(probs (K, H, W), valid (H, W))``."""
        data, valid = super().read_file(path, grid, remap)
        scale = self._scales[path]
        if scale != 1.0:
            np.divide(data, scale, out=data, where=valid[None])
        return data, valid

    def plot(
        self, sample: dict[str, Any], show_titles: bool = True, suptitle: str | None = None
    ) -> Figure:
        """The prior in its scheme's colours, mixed by probability, with the sample's others.

        ``image``, ``q``, ``r``, ``prediction`` and ``mask`` are drawn when present.

        The scheme is :attr:`scheme` when it names a built-in one with as many classes,
        else a palette of the class count (:func:`torchgeo_lsr.plot.plot_sample`).
        """
        from ..classes import SCHEMES
        from ..plot import PANELS, plot_sample

        key = self.sample_key or "prior"
        probs = sample[key]
        known = SCHEMES.get(self.scheme or "")
        scheme: Any = known if known is not None and len(known) == probs.shape[-3] else None
        shown = {k: v for k, v in sample.items() if k in PANELS}
        shown["prior"] = probs
        return plot_sample(
            shown,
            scheme if scheme is not None else int(probs.shape[-3]),
            show_titles=show_titles,
            suptitle=suptitle,
        )

    def finalize(self, data: np.ndarray, valid: np.ndarray) -> Sample:
        """``prior`` and ``valid``: the probabilities, 0 outside the files."""
        sample = super().finalize(data, valid)
        sample["prior"] = sample.pop("image")
        return sample
