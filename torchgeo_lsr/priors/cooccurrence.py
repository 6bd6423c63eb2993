"""Co-occurrence of coarse and fine labels, and remapping a coarse stack through it.

The paper's NLCD prior is: one-hot NLCD at 1 m, blur (sigma 31), remap through the matrix
``P(fine class | NLCD class)``, smooth and normalise. :func:`estimate_cooccurrence` learns
that matrix from any aligned pair of index rasters; :func:`remap` applies it.

The recipe in full::

    >>> from torchgeo_lsr.classes import reference_cooccurrence
    >>> from torchgeo_lsr.priors import blur_probs, one_hot, remap, to_simplex
    >>> nlcd = torch.randint(0, 17, (1, 64, 64))  # NLCD indices on the 1 m grid
    >>> blurred = blur_probs(one_hot(nlcd, 17), sigma=31.0, kernel_size=101)
    >>> matrix = reference_cooccurrence("pittsburgh", "enviroatlas5")
    >>> prior, valid = to_simplex(remap(blurred, matrix))
    >>> prior.shape
    torch.Size([1, 5, 64, 64])

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_choice, check_map

__all__ = [
    "CooccurrenceMode",
    "CooccurrenceRemap",
    "estimate_cooccurrence",
    "fill_unseen",
    "remap",
]

CooccurrenceMode = Literal["tile_average", "pooled"]

#: Tolerance on column sums of a co-occurrence matrix (1 or 0).
_COLUMN_TOL = 1e-3


def _as_index(x: Tensor | np.ndarray, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got {t.dtype}")
    if t.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (N, H, W) or (H, W), got {tuple(t.shape)}")
    return t.long()


def _tile_ids(
    tiles: Tensor | np.ndarray | int | None, shape: torch.Size, device: torch.device
) -> Tensor:
    """Tile id per pixel: by image, by square blocks of ``tiles`` px, or given per pixel."""
    n, h, w = shape
    if tiles is None:
        return torch.arange(n, device=device).view(n, 1, 1).expand(n, h, w)
    if isinstance(tiles, int):
        if tiles < 1:
            raise ValueError(f"tiles as a tile size must be >= 1, got {tiles}")
        rows, cols = -(-h // tiles), -(-w // tiles)
        by = (torch.arange(h, device=device) // tiles).view(1, h, 1)
        bx = (torch.arange(w, device=device) // tiles).view(1, 1, w)
        image = torch.arange(n, device=device).view(n, 1, 1)
        return (image * rows + by) * cols + bx
    ids = torch.as_tensor(tiles, device=device)
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise TypeError(f"tiles as a raster must hold integer tile ids, got {ids.dtype}")
    ids = ids.long()
    if ids.ndim == 2:
        ids = ids.unsqueeze(0)
    if ids.shape != shape:
        raise ValueError(
            f"tiles as a raster must have the shape of coarse {tuple(shape)}, "
            f"got {tuple(ids.shape)}"
        )
    if bool((ids < 0).any()):
        raise ValueError("tile ids must be >= 0")
    return ids


def estimate_cooccurrence(
    coarse: Tensor | np.ndarray,
    fine: Tensor | np.ndarray,
    num_coarse: int,
    num_fine: int,
    valid: Tensor | np.ndarray | None = None,
    mode: CooccurrenceMode = "tile_average",
    tiles: Tensor | np.ndarray | int | None = None,
) -> Tensor:
    """Estimate ``P(fine class | coarse class)`` from an aligned pair of index rasters.

    Both rasters are on the same grid (e.g. NLCD indices upsampled to 1 m and 1 m labels).
    Counting uses :func:`torch.bincount`, no per-pixel loop.

    Args:
        coarse: integer indices in ``[0, num_coarse)``, ``(N, H, W)`` or ``(H, W)``.
        fine: integer indices in ``[0, num_fine)``, same shape.
        num_coarse: number of coarse classes ``K_coarse`` (17 for NLCD).
        num_fine: number of fine classes ``K_fine``.
        valid: optional boolean mask, same shape; pixels where it is False are not
            counted (and their indices may be anything, e.g. 255).
        mode: ``"tile_average"`` (the paper: one matrix per tile, each column averaged
            over the tiles where that coarse class occurs) or ``"pooled"`` (one count over
            all pixels).
        tiles: for ``"tile_average"``: None = each of the ``N`` images is a tile; an int =
            square blocks of that many pixels within each image (edge blocks may be
            smaller); or an integer raster of tile ids, same shape as ``coarse``.

    Returns:
        ``(num_fine, num_coarse)`` float64 tensor on the device of ``coarse``; each column
        sums to 1, or is all zero where the coarse class never occurs (no information).

    Example:
        >>> coarse = torch.tensor([[0, 0, 1, 1]])
        >>> fine = torch.tensor([[0, 1, 1, 1]])
        >>> estimate_cooccurrence(coarse, fine, 3, 2).tolist()
        [[0.5, 0.0, 0.0], [0.5, 1.0, 0.0]]
    """
    c = _as_index(coarse, "coarse")
    f = _as_index(fine, "fine").to(c.device)
    if c.shape != f.shape:
        raise ValueError(
            f"coarse and fine must be aligned (same shape), got {tuple(c.shape)} "
            f"and {tuple(f.shape)}"
        )
    if num_coarse < 1 or num_fine < 1:
        raise ValueError(f"need num_coarse, num_fine >= 1, got {num_coarse}, {num_fine}")
    check_choice("mode", mode, CooccurrenceMode)
    if mode == "pooled" and tiles is not None:
        raise ValueError("tiles applies to mode='tile_average' only")
    if c.ndim == 2:
        c, f = c.unsqueeze(0), f.unsqueeze(0)
    keep = torch.ones_like(c, dtype=torch.bool)
    if valid is not None:
        v = torch.as_tensor(valid, device=c.device)
        if v.dtype != torch.bool:
            raise TypeError(f"valid must be a boolean mask, got {v.dtype}")
        keep = v.unsqueeze(0) if v.ndim == 2 else v
        if keep.shape != c.shape:
            raise ValueError(
                f"valid must have the shape of coarse {tuple(c.shape)}, got {tuple(v.shape)}"
            )
    for name, t, k in (("coarse", c, num_coarse), ("fine", f, num_fine)):
        bad = keep & ((t < 0) | (t >= k))
        if bool(bad.any()):
            found = torch.unique(t[bad])[:10].tolist()
            raise ValueError(
                f"{name} holds values {found} outside [0, {k}) at valid pixels; "
                f"mark them invalid with `valid` or fix num_{name}"
            )
    pairs = num_coarse * num_fine
    joint = (c * num_fine + f)[keep]
    if mode == "pooled":
        counts = torch.bincount(joint, minlength=pairs).view(1, num_coarse, num_fine)
    else:
        ids = _tile_ids(tiles, c.shape, c.device)[keep]
        _, ids = torch.unique(ids, return_inverse=True)  # dense 0..T-1
        num_tiles = int(ids.max().item()) + 1 if ids.numel() else 1
        counts = torch.bincount(ids * pairs + joint, minlength=num_tiles * pairs)
        counts = counts.view(num_tiles, num_coarse, num_fine)
    counts = counts.double()
    totals = counts.sum(dim=2, keepdim=True)  # (T, Kc, 1)
    present = totals > 0
    per_tile = counts / torch.where(present, totals, torch.ones_like(totals))
    tiles_seen = present.sum(dim=0)  # (Kc, 1)
    mean = per_tile.sum(dim=0) / tiles_seen.clamp_min(1)
    return mean.T.contiguous()


def fill_unseen(matrix: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Give the columns an estimate never saw (all zero) the columns of ``fallback``.

    An estimated ``P(fine | coarse)`` has no information for coarse classes absent from
    the labelled tiles, so a region where they occur gets no prior there. Backing off to a
    reference matrix (say :func:`~torchgeo_lsr.classes.reference_cooccurrence`) fills them.

    Args:
        matrix: ``(K_fine, K_coarse)`` estimate (columns sum to 1 or 0).
        fallback: same shape.

    Returns:
        A copy of ``matrix`` with its all-zero columns taken from ``fallback``.

    Example:
        >>> fill_unseen(np.array([[1.0, 0.0], [0.0, 0.0]]), np.full((2, 2), 0.5)).tolist()
        [[1.0, 0.5], [0.0, 0.5]]
    """
    if matrix.shape != fallback.shape:
        raise ValueError(f"fallback must be {matrix.shape}, got {fallback.shape}")
    out = matrix.copy()
    unseen = matrix.sum(axis=0) == 0
    out[:, unseen] = fallback[:, unseen]
    return out


def _check_matrix(matrix: Tensor, num_coarse: int | None = None) -> None:
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be (K_fine, K_coarse), got shape {tuple(matrix.shape)}")
    if num_coarse is not None and matrix.shape[1] != num_coarse:
        raise ValueError(
            f"matrix has {matrix.shape[1]} columns (coarse classes) but the input has "
            f"{num_coarse} channels"
        )
    if bool((matrix < 0).any()) or not bool(torch.isfinite(matrix).all()):
        raise ValueError("matrix must be finite and non-negative")
    sums = matrix.sum(dim=0)
    ok = ((sums - 1).abs() <= _COLUMN_TOL) | (sums == 0)
    if not bool(ok.all()):
        bad = torch.nonzero(~ok).flatten()[:5].tolist()
        raise ValueError(
            f"matrix columns must sum to 1 (or 0 = no information); columns {bad} sum to "
            f"{[round(float(sums[i]), 4) for i in bad]}"
        )


def remap(coarse_probs: Tensor, matrix: Tensor | np.ndarray, renormalize: bool = True) -> Tensor:
    """Remap a coarse class stack through ``P(fine | coarse)``: ``out = matrix @ p``.

    Columns of ``matrix`` that are all zero carry no information (e.g. NLCD nodata). With
    ``renormalize`` each pixel is divided by its *informative* mass
    ``Σ_c p_c [column c informative]``, so a pixel half on nodata and half on forest gets
    the forest column in full; a pixel with no informative mass is all zero (no
    information; :func:`~torchgeo_lsr.priors.to_simplex` reports it). Without it, the output
    mass is the informative mass (a confidence), and the map is linear in ``p``.

    Args:
        coarse_probs: ``(B, K_coarse, H, W)`` or ``(K_coarse, H, W)``, one-hot or blurred.
        matrix: ``(K_fine, K_coarse)``, columns summing to 1 or 0 (a NumPy array, as
            :func:`torchgeo_lsr.classes.reference_cooccurrence` returns, is accepted).
        renormalize: divide by the informative mass (see above).

    Returns:
        ``(B, K_fine, H, W)`` or ``(K_fine, H, W)`` in the dtype of ``coarse_probs``.

    Example:
        >>> matrix = torch.tensor([[0.25, 0.0], [0.75, 0.0]])  # coarse class 1: no information
        >>> p = torch.tensor([0.5, 0.5]).view(2, 1, 1)
        >>> remap(p, matrix).flatten().tolist()
        [0.25, 0.75]
        >>> remap(p, matrix, renormalize=False).flatten().tolist()  # informative mass 0.5
        [0.125, 0.375]
    """
    check_map(coarse_probs, "coarse_probs")
    axis = coarse_probs.ndim - 3
    m = torch.as_tensor(matrix).to(device=coarse_probs.device, dtype=coarse_probs.dtype)
    _check_matrix(m, coarse_probs.shape[axis])
    out = torch.einsum("fc,...chw->...fhw", m, coarse_probs)
    if not renormalize:
        return out
    informative = (m.sum(dim=0) > 0).to(coarse_probs.dtype)
    mass = torch.einsum("c,...chw->...hw", informative, coarse_probs).unsqueeze(axis)
    has = mass > 0
    return torch.where(has, out, torch.zeros_like(out)) / torch.where(
        has, mass, torch.ones_like(mass)
    )


class CooccurrenceRemap(nn.Module):
    """Module form of :func:`remap`, holding the matrix as a buffer (saved, moved by ``.to``).

    Args:
        matrix: ``(K_fine, K_coarse)`` ``P(fine | coarse)``, columns summing to 1 or 0.
        renormalize: divide by the informative mass (see :func:`remap`).

    Example:
        >>> layer = CooccurrenceRemap.from_reference("durham", "enviroatlas5")
        >>> layer(torch.full((1, 17, 4, 4), 1 / 17)).shape
        torch.Size([1, 5, 4, 4])
    """

    matrix: Tensor

    def __init__(self, matrix: Tensor | np.ndarray, renormalize: bool = True) -> None:
        super().__init__()
        m = torch.as_tensor(matrix)
        if not m.is_floating_point():
            m = m.double()
        _check_matrix(m)
        self.register_buffer("matrix", m.clone())
        self.renormalize = renormalize

    @classmethod
    def from_reference(
        cls, city: str, scheme: str = "enviroatlas5", renormalize: bool = True
    ) -> CooccurrenceRemap:
        """The paper's NLCD -> EnviroAtlas matrix of a city (see ``reference_cooccurrence``)."""
        from ..classes import reference_cooccurrence

        return cls(reference_cooccurrence(city, scheme), renormalize)

    @property
    def num_coarse(self) -> int:
        """Number of coarse classes (input channels)."""
        return int(self.matrix.shape[1])

    @property
    def num_fine(self) -> int:
        """Number of fine classes (output channels)."""
        return int(self.matrix.shape[0])

    def forward(self, coarse_probs: Tensor) -> Tensor:
        """Remap; see :func:`remap` for shapes."""
        return remap(coarse_probs, self.matrix, self.renormalize)

    def extra_repr(self) -> str:
        """Options shown in ``repr``."""
        return (
            f"num_fine={self.num_fine}, num_coarse={self.num_coarse}, "
            f"renormalize={self.renormalize}"
        )
