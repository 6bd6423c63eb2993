"""Prior construction: turn weak sources into a per-pixel prior ``P_i(l)``.

* :mod:`.simplex`: one-hot encoding, normalisation onto the simplex with nodata.
* :mod:`.blur`: Gaussian blur of probability maps with large sigma, mass-preserving borders
  and a fast path.
* :mod:`.cooccurrence`: ``P(fine | coarse)`` from aligned label pairs, and remapping.
* :mod:`.fusion`: roads, buildings and water layers added to their classes.
* :mod:`.builder`: the whole recipe for a region directory, one GeoTIFF per imagery tile
  (``torchgeo-lsr prior``).

Each transform is a pure tensor function plus a thin :class:`torch.nn.Module`.

.. versionadded:: 0.1
"""

from .blur import (
    BlurBorder,
    BlurMethod,
    BlurProbs,
    blur_probs,
    fast_blur_factor,
    gaussian_kernel_size,
)
from .builder import PriorConfig, PriorReport, build_region_priors, build_tile_prior
from .cooccurrence import CooccurrenceMode, CooccurrenceRemap, estimate_cooccurrence, remap
from .fusion import (
    ENVIROATLAS5_FUSION,
    AuxiliaryFusion,
    FusionConfig,
    dilate_mask,
    fuse_auxiliary,
)
from .simplex import SimplexOutput, ToSimplex, one_hot, to_simplex

__all__ = [
    "ENVIROATLAS5_FUSION",
    "AuxiliaryFusion",
    "BlurBorder",
    "BlurMethod",
    "BlurProbs",
    "CooccurrenceMode",
    "CooccurrenceRemap",
    "FusionConfig",
    "PriorConfig",
    "PriorReport",
    "SimplexOutput",
    "ToSimplex",
    "blur_probs",
    "build_region_priors",
    "build_tile_prior",
    "dilate_mask",
    "estimate_cooccurrence",
    "fast_blur_factor",
    "fuse_auxiliary",
    "gaussian_kernel_size",
    "one_hot",
    "remap",
    "to_simplex",
]
