"""Large-raster inference that equals a whole-tile forward pass.

A fully convolutional network's output at a pixel depends only on the input inside its
receptive field. :func:`predict_tile` runs the network on windows that overlap by the
receptive field and keeps each window's centre, so the result is identical (up to float
round-off) to running the network on the whole tile at once: no seams, no border
artefacts, and memory bounded by the window size.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from ..losses import DEFAULT_SMOOTHING
from ..models import cpu_channels_last
from ..samplers.patches import grid_offsets

__all__ = ["Span", "implicit_posterior_map", "predict_tile", "predict_windows", "tile_windows"]


def tile_windows(
    height: int, width: int, window: int, margin: int
) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Windows covering a tile so that their centres (minus ``margin``) tile it exactly.

    Yields ``(read, keep)`` pairs: ``read = (row, col, h, w)`` is the input window and
    ``keep = (row, col, h, w)`` the part of its output kept, in tile coordinates. Kept
    parts do not overlap and cover the tile; each kept pixel is at least ``margin`` px
    from its read window's edge unless that edge is the tile's edge.

    Example:
        >>> [k for _, k in tile_windows(10, 10, 6, 1)][:3]
        [(0, 0, 5, 5), (0, 5, 5, 5), (5, 0, 5, 5)]
    """
    if window <= 2 * margin:
        raise ValueError(f"window {window} must exceed twice the margin {margin}")

    def spans(extent: int) -> list[tuple[int, int, int, int]]:
        if extent <= window:
            return [(0, extent, 0, extent)]
        # As few windows as fit, of equal size, so the only recomputed pixels are the
        # margins (a fixed window would leave a last window overlapping almost entirely).
        inner = window - 2 * margin
        count = math.ceil((extent - 2 * margin) / inner)
        size = math.ceil((extent - 2 * margin) / count) + 2 * margin
        starts = grid_offsets(extent, size, size - 2 * margin)
        out: list[tuple[int, int, int, int]] = []
        for i, s in enumerate(starts):
            keep_start = 0 if i == 0 else out[-1][3]
            keep_end = extent if i == len(starts) - 1 else s + size - margin
            out.append((s, size, keep_start, keep_end))
        return out

    for r, h, kr0, kr1 in spans(height):
        for c, w, kc0, kc1 in spans(width):
            yield (r, c, h, w), (kr0, kc0, kr1 - kr0, kc1 - kc0)


#: ``(row, col, height, width)`` of a part of a tile, in pixels.
Span = tuple[int, int, int, int]


@torch.no_grad()
def predict_windows(
    model: nn.Module | Callable[[Tensor], Tensor],
    image: Tensor,
    margin: int,
    window: int = 1024,
    device: torch.device | str | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Iterator[tuple[Span, Tensor]]:
    """Class probabilities ``q`` of a tile, one window at a time (see :func:`predict_tile`).

    Yields ``(keep, probs)``: ``keep = (row, col, h, w)`` of the tile (the kept parts of
    :func:`tile_windows`: they do not overlap and cover the tile) and its ``(K, h, w)``
    float32 probabilities on the CPU. Only one window's output is alive at a time.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got {tuple(image.shape)}")
    if device is None:
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    _, height, width = image.shape
    for (r, c, h, w), (kr, kc, kh, kw) in tile_windows(height, width, window, margin):
        x = image[None, :, r : r + h, c : c + w].to(device)
        if transform is not None:
            x = transform(x)
        x = cpu_channels_last(x)  # oneDNN's layout on a CPU
        probs = torch.softmax(model(x).float(), dim=1)[0].cpu()
        keep = probs[:, kr - r : kr - r + kh, kc - c : kc - c + kw]
        yield (kr, kc, kh, kw), keep.contiguous()


def predict_tile(
    model: nn.Module | Callable[[Tensor], Tensor],
    image: Tensor,
    margin: int,
    window: int = 1024,
    device: torch.device | str | None = None,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Class probabilities ``q`` of a whole tile, computed window by window.

    The whole tile's probabilities are assembled in memory; :func:`predict_windows`
    yields them a window at a time instead (what ``map`` writes from).

    Args:
        model: network returning logits ``(1, K, h, w)`` for input ``(1, C, h, w)``.
        image: ``(C, H, W)`` tile (any dtype; ``transform`` normalises it).
        margin: half the network's receptive field (``(rf - 1) // 2``) or more.
        window: input window side in pixels.
        device: where to run the network (default: the model's device, else CPU).
        transform: optional function applied to each input window ``(1, C, h, w)``
            (e.g. normalisation), after moving it to ``device``.

    Returns:
        ``(K, H, W)`` float32 probabilities on the CPU.
    """
    out: Tensor | None = None
    for (kr, kc, kh, kw), probs in predict_windows(model, image, margin, window, device, transform):
        if out is None:
            out = torch.empty((probs.shape[0], *image.shape[1:]), dtype=torch.float32)
        out[:, kr : kr + kh, kc : kc + kw] = probs
    assert out is not None
    return out


def implicit_posterior_map(
    q: Tensor, prior: Tensor, q_mean: Tensor, eps: float = DEFAULT_SMOOTHING
) -> tuple[Tensor, Tensor]:
    """Implicit posterior of a tile with a region-level denominator.

    ``r_i(l) ∝ P_i(l) q_i(l) / q̄(l)`` with ``q̄`` the mean of q over the whole region
    (the paper's evaluation), q, P and q̄ smoothed by ``eps`` as in training (the mean of
    the smoothed q is the smoothed mean). Smoothing q but not q̄ would divide a class the
    network never predicts (``q̄ ≈ 0``) into a ratio ``eps / q̄`` of thousands, and r would
    put that class wherever its prior is not zero.

    Args:
        q: ``(K, H, W)`` network probabilities.
        prior: ``(K, H, W)`` prior (all zero where it has no information).
        q_mean: ``(K,)`` region mean of q.
        eps: additive smoothing of q and the prior.

    Returns:
        ``(K, H, W)`` posterior and the ``(H, W)`` mask where the prior has information
        (elsewhere the posterior falls back to q).
    """
    # The product itself, not the training loss's log domain (no gradient here; q, P >= eps
    # keep it well inside float32): the smoothings' common factor 1 / (1 + K eps) cancels
    # in the normalisation, r = (q + eps)(P + eps) / (q_mean + eps), normalised.
    valid = prior.sum(dim=0) > 0
    shift = q_mean.to(q.dtype) + eps
    weight = torch.where(shift > 0, 1 / shift, torch.zeros_like(shift)).view(-1, 1, 1)
    r = (q + eps).mul_(prior.to(q.dtype) + eps).mul_(weight)
    total = r.sum(dim=0, keepdim=True)
    r.div_(torch.where(total > 0, total, torch.ones_like(total)))
    use = valid & (total[0] > 0)  # (eps = 0: a prior and a q of disjoint supports: q)
    return torch.where(use[None], r, q), valid
