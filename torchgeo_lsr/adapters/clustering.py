r"""Clustering with the implicit posterior (paper §E.1).

Three pieces:

* the clustering criterion of eq. (7),

  .. math:: \mathcal{L}(q) = \frac{1}{N}\sum_i H(q_i) - H\Big(\frac{1}{N}\sum_i q_i\Big),

  low when every prediction is confident and the clusters are used evenly
  (:func:`clustering_criterion`, :class:`ClusteringLoss`);
* a self-similarity MRF prior for images (eqs. 8-9), computed from the current
  predictions: for each pixel, the mean prediction over a small window (5 x 5) is
  contrasted with the mean over a large window (50 x 50),

  .. math::

      P_i(l) \propto \frac{\bar q^{\,\mathrm{small}}_i(l)}
      {\bar q^{\,\mathrm{large}}_i(l) + \epsilon},

  so a cluster is favoured where it is more frequent locally than in its wider
  surroundings (local smoothness, and no single cluster taking over a region). Window
  means use box filters (cumulative sums, windows clipped at the image border: a mean
  over the in-image pixels), no per-pixel loops. The prior is *iterated*: fit q to the
  prior with QR for some steps, recompute the prior from the new q, and repeat
  (:func:`cluster_image`, after a warm-up on criterion (7));
* :func:`assign_clusters`: name clusters after classes from a few labelled points.

This is our reading of eqs. (8)-(9) and their iteration; the window sizes and the
smoothing ``eps`` are arguments.

Example:
    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # confident, balanced
    >>> round(clustering_criterion(q).item(), 4)  # 0 - log 2
    -0.6931

.. versionadded:: 0.1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..losses import QRLoss, RQLoss, class_mean
from .single_image import image_to_tensor, make_single_image_model

__all__ = [
    "ClusterImageResult",
    "ClusteringLoss",
    "SelfSimilarityPrior",
    "apply_assignment",
    "assign_clusters",
    "box_mean",
    "cluster_image",
    "clustering_criterion",
    "self_similarity_prior",
]


def _entropy(p: Tensor, dim: int) -> Tensor:
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=dim)


def clustering_criterion(q: Tensor, valid: Tensor | None = None) -> Tensor:
    """Eq. (7): mean per-instance entropy minus the entropy of the mean prediction.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.

    Returns:
        Scalar in ``[-log C, log C]``; ``-log C`` for confident, evenly used clusters.
    """
    mean = class_mean(q, valid)  # validates shapes
    per = _entropy(q, dim=1)
    if valid is None:
        valid = torch.ones_like(per, dtype=torch.bool)
    zero = torch.zeros((), dtype=per.dtype, device=per.device)
    mean_entropy = torch.where(valid, per, zero).sum() / valid.sum().clamp_min(1)
    return mean_entropy - _entropy(mean, dim=0)


class ClusteringLoss(nn.Module):
    """Module form of :func:`clustering_criterion`.

    Example:
        >>> q = torch.softmax(torch.randn(8, 4), dim=1)
        >>> torch.equal(ClusteringLoss()(q), clustering_criterion(q))
        True
    """

    def forward(self, q: Tensor, valid: Tensor | None = None) -> Tensor:
        """Compute eq. (7); see :func:`clustering_criterion`."""
        return clustering_criterion(q, valid)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    kh, kw = (size, size) if isinstance(size, int) else size
    if kh < 1 or kw < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    return kh, kw


def box_mean(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Mean over a ``kh x kw`` window around every pixel, clipped at the image border.

    The window at ``(i, j)`` covers rows ``i - (kh - 1) // 2 .. i + kh // 2`` (and the
    same for columns); only in-image pixels are averaged. Computed with cumulative sums,
    so the cost does not depend on the window size.

    Args:
        x: ``(B, C, H, W)``.
        size: window size ``k`` or ``(kh, kw)``.

    Returns:
        ``(B, C, H, W)`` window means.

    Example:
        >>> box_mean(torch.arange(4.0).reshape(1, 1, 1, 4), (1, 3))
        tensor([[[[0.5000, 1.0000, 2.0000, 2.5000]]]])
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    kh, kw = _pair(size)
    out = x
    for dim, k in ((2, kh), (3, kw)):
        n = out.shape[dim]
        before, after = (k - 1) // 2, k // 2
        pad = [0, 0, 0, 0]
        pad[2 * (3 - dim)] = 1  # one leading zero along `dim` for the cumulative sum
        csum = nn.functional.pad(out.cumsum(dim=dim), pad)
        idx = torch.arange(n, device=x.device)
        hi = (idx + after).clamp(max=n - 1) + 1
        lo = (idx - before).clamp(min=0)
        total = csum.index_select(dim, hi) - csum.index_select(dim, lo)
        count = (hi - lo).to(x.dtype)
        shape = [1, 1, 1, 1]
        shape[dim] = n
        out = total / count.reshape(shape)
    return out


def self_similarity_prior(
    q: Tensor,
    small: int | tuple[int, int] = 5,
    large: int | tuple[int, int] = 50,
    eps: float = 1e-3,
) -> Tensor:
    """The contrastive self-similarity prior of eqs. (8)-(9).

    Args:
        q: current predictions ``(B, C, H, W)``.
        small: the small window (default 5 x 5).
        large: the large window (default 50 x 50).
        eps: added to the large-window mean (a cluster absent from the small window
            gets 0, whatever the large window holds).

    Returns:
        ``(B, C, H, W)`` prior, ``∝ mean_small(q) / (mean_large(q) + eps)``,
        summing to 1 over classes. Not detached: detach ``q`` to use it as a target.

    Example:
        >>> q = torch.zeros(1, 2, 6, 6); q[:, 0, :, :3] = 1; q[:, 1, :, 3:] = 1
        >>> p = self_similarity_prior(q, small=1, large=6)
        >>> bool((p[0, 0, :, :3] > 0.5).all() and (p[0, 1, :, 3:] > 0.5).all())
        True
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    ratio = box_mean(q, small) / (box_mean(q, large) + eps)
    return ratio / ratio.sum(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)


class SelfSimilarityPrior(nn.Module):
    """Module form of :func:`self_similarity_prior` (stores the windows and ``eps``).

    Example:
        >>> q = torch.softmax(torch.randn(1, 3, 8, 8), dim=1)
        >>> torch.equal(SelfSimilarityPrior(3, 7)(q), self_similarity_prior(q, 3, 7))
        True
    """

    def __init__(
        self,
        small: int | tuple[int, int] = 5,
        large: int | tuple[int, int] = 50,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.small = _pair(small)
        self.large = _pair(large)
        self.eps = eps

    def forward(self, q: Tensor) -> Tensor:
        """Compute the prior; see :func:`self_similarity_prior`."""
        return self_similarity_prior(q, self.small, self.large, self.eps)


@dataclass
class ClusterImageResult:
    """Output of :func:`cluster_image`.

    Attributes:
        q: ``(K, H, W)`` cluster probabilities of the network.
        prior: ``(K, H, W)`` the last self-similarity prior.
        model: the trained network (eval mode).
        loss: loss per step (criterion (7) during warm-up, then QR/RQ).
    """

    q: Tensor
    prior: Tensor
    model: nn.Module
    loss: list[float] = field(default_factory=list)


def cluster_image(
    image: Any,
    num_clusters: int,
    *,
    warmup_steps: int = 100,
    rounds: int = 5,
    steps_per_round: int = 50,
    small: int | tuple[int, int] = 5,
    large: int | tuple[int, int] = 50,
    loss: Literal["qr", "rq"] = "qr",
    lr: float = 3e-3,
    seed: int = 0,
    model: nn.Module | None = None,
) -> ClusterImageResult:
    """Unsupervised segmentation of one image into ``num_clusters`` clusters.

    Warm-up: minimise criterion (7) over all pixels. Then ``rounds`` times: compute the
    self-similarity prior from the current q (detached) and fit q to it with QR (or RQ)
    for ``steps_per_round`` steps. Name the clusters afterwards with
    :func:`assign_clusters`.

    Args:
        image: RGB image, see :func:`~.single_image.image_to_tensor`.
        num_clusters: ``K``.
        warmup_steps: Adam steps on criterion (7).
        rounds: prior updates.
        steps_per_round: Adam steps per prior.
        small: small window of the prior.
        large: large window of the prior.
        loss: ``"qr"`` or ``"rq"``.
        lr: Adam learning rate (on a noisy 24 x 24 two-region image, 1e-2 collapsed to one
            cluster on 2 of 6 seeds, 3e-3 on none).
        seed: seeds the default model's weights.
        model: network ``(1, 3, H, W) -> (1, K, H, W)``; default
            :func:`~.single_image.make_single_image_model`.

    Returns:
        A :class:`ClusterImageResult`.
    """
    if loss not in ("qr", "rq"):
        raise ValueError(f"loss must be 'qr' or 'rq', got {loss!r}")
    x = image_to_tensor(image)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_single_image_model(num_clusters)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    criterion: nn.Module = QRLoss() if loss == "qr" else RQLoss()
    history: list[float] = []

    def step(value: Tensor) -> None:
        opt.zero_grad()
        torch.autograd.backward(value)
        opt.step()
        history.append(float(value.detach()))

    model.train()
    for _ in range(warmup_steps):
        step(clustering_criterion(torch.softmax(model(x), dim=1)))
    with torch.no_grad():
        prior = self_similarity_prior(torch.softmax(model(x), dim=1), small, large)
    for _ in range(rounds):
        for _ in range(steps_per_round):
            step(criterion(torch.softmax(model(x), dim=1), prior))
        with torch.no_grad():
            prior = self_similarity_prior(torch.softmax(model(x), dim=1), small, large)
    model.eval()
    with torch.no_grad():
        q = torch.softmax(model(x), dim=1)
    return ClusterImageResult(q=q[0], prior=prior[0], model=model, loss=history)


def assign_clusters(
    cluster_probs_or_ids: Tensor,
    labelled_points: Tensor,
    labels: Tensor,
    num_classes: int,
    num_clusters: int | None = None,
) -> Tensor:
    """Map clusters to classes by majority vote of a few labelled points.

    Each cluster takes the most frequent label among the labelled points that fall in
    it (ties: the smallest class index). A cluster with no labelled point takes the most
    frequent label overall (ties: the smallest class index).

    Args:
        cluster_probs_or_ids: cluster ids ``(N,)`` or ``(H, W)`` (integers), or cluster
            probabilities ``(N, K)`` or ``(K, H, W)`` (floats; their argmax is used).
        labelled_points: ``(M,)`` indices into ``N``, or ``(M, 2)`` ``(row, col)`` pixels.
        labels: ``(M,)`` class of each labelled point.
        num_classes: number of classes.
        num_clusters: ``K``; inferred from probabilities, or ``max(id) + 1`` for ids.

    Returns:
        ``(K,)`` long tensor: the class of every cluster.

    Example:
        >>> ids = torch.tensor([0, 0, 1, 2, 2, 3])
        >>> assign_clusters(ids, torch.tensor([0, 1, 2, 3]), torch.tensor([1, 1, 0, 2]), 3)
        tensor([1, 0, 2, 1])
    """
    c = cluster_probs_or_ids
    if c.dtype.is_floating_point:
        if c.ndim == 2:  # (N, K)
            k = c.shape[1]
            ids = c.argmax(dim=1)
        elif c.ndim == 3:  # (K, H, W)
            k = c.shape[0]
            ids = c.argmax(dim=0)
        else:
            raise ValueError(
                f"cluster probabilities must be (N, K) or (K, H, W), got {tuple(c.shape)}"
            )
    else:
        if c.ndim not in (1, 2):
            raise ValueError(f"cluster ids must be (N,) or (H, W), got {tuple(c.shape)}")
        ids = c.long()
        k = int(ids.max()) + 1 if ids.numel() else 0
    if num_clusters is not None:
        if num_clusters < k and c.dtype.is_floating_point:
            raise ValueError(f"num_clusters={num_clusters} but the probabilities have {k}")
        k = max(k, num_clusters) if not c.dtype.is_floating_point else num_clusters
    if labels.ndim != 1 or labelled_points.shape[0] != labels.shape[0]:
        raise ValueError("labelled_points and labels must have the same length M")
    if labels.numel() == 0:
        raise ValueError("need at least one labelled point")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes})")
    if ids.ndim == 2:
        if labelled_points.ndim != 2 or labelled_points.shape[1] != 2:
            raise ValueError("for an image, labelled_points must be (M, 2) (row, col)")
        point_ids = ids[labelled_points[:, 0].long(), labelled_points[:, 1].long()]
    else:
        if labelled_points.ndim != 1:
            raise ValueError("for flat clusters, labelled_points must be (M,) indices")
        point_ids = ids[labelled_points.long()]
    votes = torch.zeros(k, num_classes, dtype=torch.long)
    votes.index_put_(
        (point_ids.cpu(), labels.long().cpu()),
        torch.ones_like(labels.cpu(), dtype=torch.long),
        accumulate=True,
    )
    overall = int(votes.sum(dim=0).argmax())  # argmax returns the first maximum
    mapping = votes.argmax(dim=1)
    return torch.where(votes.sum(dim=1) > 0, mapping, torch.full_like(mapping, overall))


def apply_assignment(cluster_probs: Tensor, mapping: Tensor, num_classes: int) -> Tensor:
    """Class probabilities from cluster probabilities: sum the clusters of each class.

    Args:
        cluster_probs: ``(N, K)`` or ``(B, K, H, W)`` cluster probabilities.
        mapping: ``(K,)`` class of each cluster (from :func:`assign_clusters`).
        num_classes: number of classes.

    Returns:
        ``(N, num_classes)`` or ``(B, num_classes, H, W)`` probabilities.

    Example:
        >>> apply_assignment(torch.tensor([[0.2, 0.3, 0.5]]), torch.tensor([1, 0, 1]), 2)
        tensor([[0.3000, 0.7000]])
    """
    if cluster_probs.shape[1] != mapping.shape[0]:
        raise ValueError(f"{cluster_probs.shape[1]} clusters but a mapping for {mapping.shape[0]}")
    onehot = nn.functional.one_hot(mapping.long(), num_classes).to(cluster_probs)  # (K, C)
    moved = cluster_probs.movedim(1, -1) @ onehot
    return moved.movedim(-1, 1)
