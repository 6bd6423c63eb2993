"""Fuse auxiliary layers (roads, buildings, water) into a prior (paper, Appendix D.1.2).

Each auxiliary layer is a mask on the prior's grid (rasterised OpenStreetMap roads,
building footprints, water bodies, waterways). It is dilated by a disk and/or blurred,
scaled by its weight and *added* to its target class; the result is renormalised onto the
simplex. The authors' code adds each binary layer with weight 1 (so a road pixel ends with
at least half its mass on impervious). Mass moves only where some processed layer is
non-zero; every other pixel is returned bit for bit.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_map
from .blur import blur_probs

__all__ = [
    "ENVIROATLAS5_FUSION",
    "AuxiliaryFusion",
    "FusionConfig",
    "default_fusion",
    "dilate_mask",
    "fuse_auxiliary",
]

FusionConfig = dict[str, dict[str, float | int]]

#: Default fusion for the ENVIROATLAS5 scheme (water 0, impervious 1, barren 2, trees 3,
#: grass 4): per layer its target class, weight (the authors' 1.0), dilation radius in px
#: and blur sigma in px. Targets and weights follow the authors' code; the dilations are
#: ours, for 1 m rasters of OSM centre lines (a road ~ 7 m wide, a waterway ~ 5 m); building
#: and water polygons are used as drawn.
ENVIROATLAS5_FUSION: FusionConfig = {
    "buildings": {"target": 1, "weight": 1.0, "dilate": 0, "sigma": 0.0},
    "roads": {"target": 1, "weight": 1.0, "dilate": 3, "sigma": 0.0},
    "water_bodies": {"target": 0, "weight": 1.0, "dilate": 0, "sigma": 0.0},
    "waterways": {"target": 0, "weight": 1.0, "dilate": 2, "sigma": 0.0},
}


#: The class each auxiliary layer adds mass to, by name: the first class of a scheme whose
#: name contains this word (case-insensitive).
FUSION_TARGET_NAMES = {
    "buildings": "impervious",
    "roads": "impervious",
    "water_bodies": "water",
    "waterways": "water",
}


def default_fusion(class_names: Sequence[str]) -> FusionConfig:
    """:data:`ENVIROATLAS5_FUSION`'s settings with targets found by class name.

    Buildings and roads go to the first class named like "impervious", water bodies and
    waterways to the first named like "water"; a layer whose target class the scheme lacks
    is left out (fusing it raises). For ``enviroatlas5`` this is :data:`ENVIROATLAS5_FUSION`.

    Example:
        >>> default_fusion(["water", "tree canopy", "low vegetation", "impervious"])["roads"]
        {'target': 3, 'weight': 1.0, 'dilate': 3, 'sigma': 0.0}
    """
    lowered = [n.lower() for n in class_names]
    config: FusionConfig = {}
    for layer, word in FUSION_TARGET_NAMES.items():
        hits = [i for i, n in enumerate(lowered) if word in n]
        if hits:
            config[layer] = dict(ENVIROATLAS5_FUSION[layer]) | {"target": hits[0]}
    return config


def dilate_mask(mask: Tensor, radius: int) -> Tensor:
    """Grey dilation by a disk of ``radius`` px (max over the disk; binary masks stay binary).

    The disk is decomposed into horizontal runs, one 1-D max-pool per run width, so the cost
    is ``O(H W radius)``.

    Args:
        mask: ``(B, 1, H, W)`` floating mask.
        radius: disk radius in px (offsets with ``dy^2 + dx^2 <= radius^2``); 0 = unchanged.

    Returns:
        Dilated mask, same shape and dtype.

    Example:
        >>> m = torch.zeros(1, 1, 5, 5)
        >>> m[0, 0, 2, 2] = 1.0
        >>> dilate_mask(m, 1)[0, 0].int().tolist()
        [[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    """
    if radius < 0:
        raise ValueError(f"dilation radius must be >= 0, got {radius}")
    if radius == 0:
        return mask
    h = mask.shape[-2]
    runs: dict[int, Tensor] = {}
    padded_rows = F.pad(mask, (0, 0, radius, radius), value=-math.inf)
    out = torch.full_like(mask, -math.inf)
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        if half not in runs:
            runs[half] = F.max_pool2d(
                padded_rows, kernel_size=(1, 2 * half + 1), stride=1, padding=(0, half)
            )
        out = torch.maximum(out, runs[half][..., radius + dy : radius + dy + h, :])
    return out


def _layer_mask(layer: Tensor, prior: Tensor, name: str) -> Tensor:
    """Check a layer against the prior and return it as ``(B, 1, H, W)`` in its dtype."""
    if not isinstance(layer, Tensor):
        raise TypeError(f"layer {name!r} must be a torch.Tensor, got {type(layer).__name__}")
    batched = prior.ndim == 4
    b, hw = (prior.shape[0],) if batched else (), prior.shape[-2:]
    ok = (*b, *hw), (*b, 1, *hw)
    if tuple(layer.shape) not in ok:
        raise ValueError(
            f"layer {name!r} must have shape {ok[0]} or {ok[1]} (the prior's grid), "
            f"got {tuple(layer.shape)}"
        )
    if layer.dtype != torch.bool and layer.is_complex():
        raise TypeError(f"layer {name!r} must be boolean or real, got {layer.dtype}")
    m = layer.to(device=prior.device, dtype=prior.dtype)
    if tuple(layer.shape) == ok[0]:
        m = m.unsqueeze(-3)
    if not batched:
        m = m.unsqueeze(0)
    if bool((m < 0).any()) or not bool(torch.isfinite(m).all()):
        raise ValueError(f"layer {name!r} must be finite and >= 0")
    return m


def _check_config(
    layers: Mapping[str, object],
    targets: Mapping[str, int],
    weights: Mapping[str, float],
    dilate: Mapping[str, int],
    sigma: Mapping[str, float],
    num_classes: int | None,
) -> None:
    for what, table in (("weights", weights), ("dilate", dilate), ("sigma", sigma)):
        extra = sorted(set(table) - set(targets))
        if extra:
            raise ValueError(f"{what} names layers {extra} that have no target class")
    missing = sorted(set(layers) - set(targets))
    if missing:
        raise ValueError(f"layers {missing} have no target class (targets: {sorted(targets)})")
    for name, target in targets.items():
        if not isinstance(target, int) or target < 0:
            raise ValueError(f"target of {name!r} must be a class index >= 0, got {target!r}")
        if num_classes is not None and target >= num_classes:
            raise ValueError(
                f"target of {name!r} is class {target} but the prior has {num_classes} classes"
            )
    for name, weight in weights.items():
        if not weight >= 0 or math.isinf(weight):
            raise ValueError(f"weight of {name!r} must be finite and >= 0, got {weight!r}")
    for name, radius in dilate.items():
        if not isinstance(radius, int) or radius < 0:
            raise ValueError(f"dilation of {name!r} must be an int >= 0, got {radius!r}")
    for name, s in sigma.items():
        if not s >= 0 or math.isinf(s):
            raise ValueError(f"sigma of {name!r} must be finite and >= 0, got {s!r}")


def fuse_auxiliary(
    prior: Tensor,
    layers: Mapping[str, Tensor],
    targets: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    dilate: Mapping[str, int] | None = None,
    sigma: Mapping[str, float] | None = None,
) -> Tensor:
    r"""Add auxiliary layers to their target classes and renormalise.

    For each layer ``l`` present in ``layers``: ``a_l = blur(dilate(m_l, r_l), sigma_l)``
    (dilation by a disk, then a normalised-border Gaussian, exact path), and

    .. math:: P'_i(c) = \frac{P_i(c) + \sum_{l:\,t_l = c} w_l a_{l,i}}
                              {\sum_k P_i(k) + \sum_l w_l a_{l,i}}

    at pixels where some ``a_{l,i} > 0``; every other pixel keeps ``P_i`` exactly. A pixel
    of the prior with no information (all zero) that a layer touches gets that layer's
    class: the layer is information.

    Args:
        prior: ``(B, C, H, W)`` or ``(C, H, W)`` map on the simplex (or all zero).
        layers: name -> mask on the prior's grid, ``(B, H, W)`` / ``(B, 1, H, W)`` (or
            ``(H, W)`` / ``(1, H, W)`` for an unbatched prior); boolean or values ``>= 0``
            (soft masks are allowed). Layers configured but absent are skipped.
        targets: name -> class index receiving the layer's mass.
        weights: name -> weight ``>= 0`` (default 1.0, the authors').
        dilate: name -> disk radius in px (default 0).
        sigma: name -> blur sigma in px (default 0, no blur; kernel truncated at 4 sigma).

    Returns:
        Fused prior, same shape and dtype as ``prior``.

    Example:
        >>> prior = torch.full((2, 1, 3), 0.5)  # (C=2, H=1, W=3): water, impervious
        >>> road = torch.tensor([[False, True, False]])
        >>> fuse_auxiliary(prior, {"roads": road}, {"roads": 1})[1].tolist()
        [[0.5, 0.75, 0.5]]
    """
    check_map(prior, "prior")
    weights = {} if weights is None else dict(weights)
    dilate = {} if dilate is None else dict(dilate)
    sigma = {} if sigma is None else dict(sigma)
    num_classes = prior.shape[-3]
    _check_config(layers, targets, weights, dilate, sigma, num_classes)
    x = prior if prior.ndim == 4 else prior.unsqueeze(0)
    added: dict[int, Tensor] = {}  # target class -> its added mass (B, 1, H, W)
    for name, layer in layers.items():
        m = dilate_mask(_layer_mask(layer, prior, name), dilate.get(name, 0))
        s = float(sigma.get(name, 0.0))
        if s > 0:
            m = blur_probs(m, s)
        c = targets[name]
        mass_c = float(weights.get(name, 1.0)) * m
        added[c] = added[c] + mass_c if c in added else mass_c
    if not added:
        return prior.clone()  # a new tensor, as with layers
    touched = torch.zeros((x.shape[0], 1, *x.shape[2:]), dtype=torch.bool, device=x.device)
    total = x.clone()  # one working copy, updated in place (a window of a full tile is large)
    for c, mass_c in added.items():
        touched |= mass_c > 0
        total[:, c : c + 1] += mass_c
    mass = total.sum(dim=1, keepdim=True)
    fused = total.div_(torch.where(mass > 0, mass, torch.ones_like(mass)))
    out = torch.where(touched, fused, x)
    return out if prior.ndim == 4 else out.squeeze(0)


class AuxiliaryFusion(nn.Module):
    """Module form of :func:`fuse_auxiliary`, holding a per-layer configuration.

    Args:
        config: layer name -> ``{"target": int, "weight": float, "dilate": int,
            "sigma": float}`` (``weight``, ``dilate``, ``sigma`` optional; defaults 1, 0, 0).
            Default :data:`ENVIROATLAS5_FUSION` (buildings and roads -> impervious 1,
            water bodies and waterways -> water 0, weight 1, roads dilated 3 px,
            waterways 2 px).

    Example:
        >>> fusion = AuxiliaryFusion()
        >>> prior = torch.full((1, 5, 8, 8), 0.2)
        >>> roads = torch.zeros(1, 8, 8, dtype=torch.bool)
        >>> roads[0, 4, :] = True
        >>> out = fusion(prior, {"roads": roads})
        >>> round(out[0, 1, 4, 0].item(), 2), bool(out[0, 1, 0, 0] == prior[0, 1, 0, 0])
        (0.6, True)
    """

    def __init__(self, config: Mapping[str, Mapping[str, float | int]] | None = None) -> None:
        super().__init__()
        config = ENVIROATLAS5_FUSION if config is None else config
        allowed = {"target", "weight", "dilate", "sigma"}
        for name, spec in config.items():
            unknown = sorted(set(spec) - allowed)
            if unknown or "target" not in spec:
                raise ValueError(
                    f"fusion layer {name!r}: needs 'target' and only {sorted(allowed)} "
                    f"(unknown: {unknown})"
                )
        self.targets = {name: int(spec["target"]) for name, spec in config.items()}
        self.weights = {name: float(spec.get("weight", 1.0)) for name, spec in config.items()}
        self.dilate = {name: int(spec.get("dilate", 0)) for name, spec in config.items()}
        self.sigma = {name: float(spec.get("sigma", 0.0)) for name, spec in config.items()}
        _check_config({}, self.targets, self.weights, self.dilate, self.sigma, None)

    def forward(self, prior: Tensor, layers: Mapping[str, Tensor]) -> Tensor:
        """Fuse ``layers`` into ``prior``; see :func:`fuse_auxiliary` for shapes."""
        return fuse_auxiliary(prior, layers, self.targets, self.weights, self.dilate, self.sigma)

    def extra_repr(self) -> str:
        """Options shown in ``repr``."""
        return ", ".join(
            f"{n}->{self.targets[n]} (w={self.weights[n]}, dilate={self.dilate[n]}, "
            f"sigma={self.sigma[n]})"
            for n in self.targets
        )
