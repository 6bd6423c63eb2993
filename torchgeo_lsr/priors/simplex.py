"""Probability maps on the simplex: one-hot encoding and normalisation with nodata.

A prior is a map ``(B, C, H, W)`` (or ``(C, H, W)``) whose class vector at each pixel sums
to 1, *or is all zero*: the package's convention for "no information here" (NLCD nodata,
outside the source's footprint). :func:`to_simplex` puts arbitrary non-negative class mass
onto the simplex and reports which pixels carry information, so the mask can go straight
into a loss's ``valid`` argument.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..checks import check_map, check_mask
from ..losses import DEFAULT_SMOOTHING

__all__ = ["SimplexOutput", "ToSimplex", "one_hot", "to_simplex"]


class SimplexOutput(NamedTuple):
    """What :func:`to_simplex` returns.

    Attributes:
        probs: ``(B, C, H, W)`` or ``(C, H, W)`` map; each pixel sums to 1 or is all zero.
        valid: boolean ``(B, H, W)`` or ``(H, W)``: True where the pixel carries information.
    """

    probs: Tensor
    valid: Tensor


def to_simplex(
    p: Tensor, eps: float = DEFAULT_SMOOTHING, nodata: Tensor | None = None, min_mass: float = 0.0
) -> SimplexOutput:
    """Normalise non-negative class mass onto the simplex, with additive smoothing.

    At each pixel with information, ``q = p / Σ_c p_c`` and then
    ``(q + eps) / (1 + C * eps)`` (the same smoothing as
    :func:`torchgeo_lsr.losses.smooth_probs`), so every class keeps at least
    ``eps / (1 + C eps)``. A pixel carries *no information* when its total mass is
    ``<= min_mass``, when any of its values is not finite (NaN/inf from a nodata read) or
    when ``nodata`` marks it; such pixels come out all zero and ``valid`` False.
    Negative values (round-off of an FFT blur, say) are clamped to 0 first.

    Args:
        p: non-negative class mass ``(B, C, H, W)`` or ``(C, H, W)``, float32 or float64.
        eps: additive smoothing, ``>= 0`` (paper: 1e-4).
        nodata: optional boolean mask ``(B, H, W)`` or ``(H, W)``; True = no information.
        min_mass: total mass at or below which a pixel carries no information.

    Returns:
        :class:`SimplexOutput` ``(probs, valid)``; ``probs`` has the shape of ``p``, ``valid``
        the shape of ``p`` without its class axis.

    Example:
        >>> p = torch.tensor([[[2.0, 0.0]], [[2.0, 0.0]]])  # (C=2, H=1, W=2)
        >>> probs, valid = to_simplex(p, eps=0.0)
        >>> probs[:, 0, 0].tolist(), valid.tolist()
        ([0.5, 0.5], [[True, False]])
    """
    check_map(p)
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if min_mass < 0:
        raise ValueError(f"min_mass must be >= 0, got {min_mass}")
    mask = check_mask(nodata, p, "nodata")
    axis = p.ndim - 3
    finite = torch.isfinite(p).all(dim=axis)
    # one working copy, updated in place (a full tile's window is ~100 MB a copy)
    q = torch.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0).clamp_min_(0)
    mass = q.sum(dim=axis)
    valid = finite & (mass > min_mass)
    if mask is not None:
        valid = valid & ~mask
    q.div_(torch.where(valid, mass, torch.ones_like(mass)).unsqueeze(axis))
    if eps > 0:
        q.add_(eps).div_(1 + p.shape[axis] * eps)
    q.mul_(valid.unsqueeze(axis))  # q is finite and >= 0 here: the same as a where
    return SimplexOutput(q, valid)


def one_hot(
    index: Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """One-hot encode a label or NLCD-index raster; ignored pixels become all zero.

    Args:
        index: integer raster ``(B, H, W)`` or ``(H, W)`` of class indices in
            ``[0, num_classes)`` (``ignore_index`` excepted).
        num_classes: number of classes ``C``.
        ignore_index: optional index whose pixels carry no information.
        dtype: floating dtype of the result.

    Returns:
        ``(B, C, H, W)`` or ``(C, H, W)`` map of ``dtype`` on the device of ``index``.

    Raises:
        ValueError: on a wrong shape or an index outside ``[0, num_classes)``.

    Example:
        >>> one_hot(torch.tensor([[0, 2, 255]]), 3, ignore_index=255)[:, 0].tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if not isinstance(index, Tensor):
        raise TypeError(f"index must be a torch.Tensor, got {type(index).__name__}")
    if index.ndim not in (2, 3):
        raise ValueError(f"index must have shape (B, H, W) or (H, W), got {tuple(index.shape)}")
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"index must be an integer tensor, got {index.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be floating point, got {dtype}")
    index = index.long()
    keep = torch.ones_like(index, dtype=torch.bool)
    if ignore_index is not None:
        keep = index != ignore_index
    bad = keep & ((index < 0) | (index >= num_classes))
    if bool(bad.any()):
        found = torch.unique(index[bad])[:10].tolist()
        raise ValueError(
            f"index holds values {found} outside [0, {num_classes})"
            + ("" if ignore_index is None else f" (ignore_index={ignore_index})")
        )
    axis = index.ndim - 2
    safe = torch.where(keep, index, torch.zeros_like(index)).unsqueeze(axis)
    shape = list(index.shape)
    shape.insert(axis, num_classes)
    out = torch.zeros(shape, dtype=dtype, device=index.device)
    out.scatter_(axis, safe, keep.unsqueeze(axis).to(dtype))
    return out


class ToSimplex(nn.Module):
    """Module form of :func:`to_simplex`.

    Args:
        eps: additive smoothing, ``>= 0`` (paper: 1e-4).
        min_mass: total mass at or below which a pixel carries no information.

    Example:
        >>> probs, valid = ToSimplex(eps=0.0)(torch.ones(1, 4, 2, 2))
        >>> probs[0, :, 0, 0].tolist(), bool(valid.all())
        ([0.25, 0.25, 0.25, 0.25], True)
    """

    def __init__(self, eps: float = DEFAULT_SMOOTHING, min_mass: float = 0.0) -> None:
        super().__init__()
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if min_mass < 0:
            raise ValueError(f"min_mass must be >= 0, got {min_mass}")
        self.eps = eps
        self.min_mass = min_mass

    def forward(self, p: Tensor, nodata: Tensor | None = None) -> SimplexOutput:
        """Normalise ``p``; see :func:`to_simplex` for shapes."""
        return to_simplex(p, self.eps, nodata, self.min_mass)

    def extra_repr(self) -> str:
        """Options shown in ``repr``."""
        return f"eps={self.eps}, min_mass={self.min_mass}"
