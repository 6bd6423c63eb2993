"""Prior construction: turn weak sources into a per-pixel prior ``P_i(l)``.

* :mod:`.simplex`: one-hot encoding, normalisation onto the simplex with nodata.
* :mod:`.blur`: Gaussian blur of probability maps with large sigma, mass-preserving borders
  and a fast path.
* :mod:`.cooccurrence`: ``P(fine | coarse)`` from aligned label pairs, and remapping.
* :mod:`.fusion`: roads, buildings and water layers added to their classes.
* :mod:`.builder`: the whole recipe for a region directory, one GeoTIFF per imagery tile
  (``torchgeo-lsr prior``).
* :mod:`.learned`: the learned prior (paper §4.4): inputs, scoring, applying a checkpoint.
* :mod:`.transform`: the recipe as a transform on sample dicts, for TorchGeo pipelines.

Each transform is a pure tensor function plus a thin :class:`torch.nn.Module`.

.. versionadded:: 0.1
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .blur import (
        BlurBorder,
        BlurMethod,
        BlurProbs,
        blur_probs,
        fast_blur_factor,
        gaussian_kernel_size,
    )
    from .builder import PriorReport, build_region_priors, build_tile_prior
    from .config import PriorConfig
    from .cooccurrence import (
        CooccurrenceMode,
        CooccurrenceRemap,
        estimate_cooccurrence,
        fill_unseen,
        remap,
    )
    from .fusion import (
        ENVIROATLAS5_FUSION,
        AuxiliaryFusion,
        FusionConfig,
        default_fusion,
        dilate_mask,
        fuse_auxiliary,
    )
    from .learned import (
        LEARNED_PRIOR_CHANNELS,
        LearnedPriorInputs,
        apply_learned_prior,
        learned_prior_inputs,
        score_prior,
        score_prior_dir,
    )
    from .simplex import SimplexOutput, ToSimplex, one_hot, to_simplex
    from .transform import PriorTransform

__all__ = [
    "ENVIROATLAS5_FUSION",
    "LEARNED_PRIOR_CHANNELS",
    "AuxiliaryFusion",
    "BlurBorder",
    "BlurMethod",
    "BlurProbs",
    "CooccurrenceMode",
    "CooccurrenceRemap",
    "FusionConfig",
    "LearnedPriorInputs",
    "PriorConfig",
    "PriorReport",
    "PriorTransform",
    "SimplexOutput",
    "ToSimplex",
    "apply_learned_prior",
    "blur_probs",
    "build_region_priors",
    "build_tile_prior",
    "default_fusion",
    "dilate_mask",
    "estimate_cooccurrence",
    "fast_blur_factor",
    "fill_unseen",
    "fuse_auxiliary",
    "gaussian_kernel_size",
    "learned_prior_inputs",
    "one_hot",
    "remap",
    "score_prior",
    "score_prior_dir",
    "to_simplex",
]

# Names are imported from their modules on first use (see torchgeo_lsr._lazy).
__getattr__, __dir__ = lazy_exports(__name__, __file__)
