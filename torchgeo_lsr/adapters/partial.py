"""Priors from negative labels and from candidate label sets (paper §4.1).

A *negative label* says "this instance is not of class l". With ``k`` negatives per
instance the prior is uniform over the ``C - k`` classes that were not ruled out; with
``k = C - 1`` it is the one-hot true label. A *partial label* is a candidate set that
contains the true class; its prior is uniform over the candidates. Train on either
with :func:`~torchgeo_lsr.adapters.training.fit_on_prior`.

Example:
    >>> import torch
    >>> labels = torch.tensor([0, 3, 7])
    >>> prior = negative_label_prior(labels, 1, 10, generator=torch.Generator().manual_seed(0))
    >>> prior.shape, prior.sum(dim=1)
    (torch.Size([3, 10]), tensor([1., 1., 1.]))

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

__all__ = ["negative_label_prior", "negative_labels", "partial_label_prior"]


def negative_labels(
    labels: Tensor, k: int, num_classes: int, generator: torch.Generator | None = None
) -> Tensor:
    """Draw ``k`` distinct negative labels per instance, never the true label.

    Args:
        labels: ``(N,)`` true class indices in ``[0, C)``.
        k: negatives per instance, ``0 <= k <= C - 1``.
        num_classes: ``C``.
        generator: seeds the draw.

    Returns:
        ``(N, k)`` long tensor; each row holds ``k`` distinct classes, none equal to the
        instance's label (uniform over such sets).

    Example:
        >>> neg = negative_labels(torch.tensor([2, 2]), 9, 10)
        >>> sorted(neg[0].tolist())
        [0, 1, 3, 4, 5, 6, 7, 8, 9]
    """
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    if not 0 <= k <= num_classes - 1:
        raise ValueError(f"k must be in [0, {num_classes - 1}], got {k}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}), got {torch.unique(labels).tolist()}"
        )
    n = labels.shape[0]
    # Rank the C - 1 other classes by i.i.d. uniform keys and keep the k smallest:
    # a uniform random k-subset per row, drawn in one call.
    keys = torch.rand(n, num_classes, generator=generator)
    keys[torch.arange(n), labels.long().cpu()] = torch.inf  # the true class is never drawn
    return keys.argsort(dim=1)[:, :k].to(labels.device)


def negative_label_prior(
    labels: Tensor, k: int, num_classes: int, generator: torch.Generator | None = None
) -> Tensor:
    """Prior uniform over the classes not among ``k`` random negatives.

    The negatives are drawn by :func:`negative_labels` (distinct, never the true label).

    Args:
        labels: ``(N,)`` true class indices.
        k: negatives per instance, ``0 <= k <= C - 1``.
        num_classes: ``C``.
        generator: seeds the draw.

    Returns:
        ``(N, C)`` float prior: ``1 / (C - k)`` on the remaining classes (the true one
        always among them), 0 on the negatives.

    Example:
        >>> negative_label_prior(torch.tensor([1]), 2, 3)
        tensor([[0., 1., 0.]])
    """
    negatives = negative_labels(labels, k, num_classes, generator)
    allowed = torch.ones(labels.shape[0], num_classes, dtype=torch.bool, device=labels.device)
    allowed.scatter_(1, negatives, False)
    return partial_label_prior(allowed)


def partial_label_prior(
    candidates: Tensor | Sequence[Iterable[int]], num_classes: int | None = None
) -> Tensor:
    """Prior uniform over each instance's candidate labels.

    Args:
        candidates: a boolean ``(N, C)`` matrix (True = candidate), or one iterable of
            class indices per instance.
        num_classes: ``C``; required with a list of sets, checked against a matrix.

    Returns:
        ``(N, C)`` float prior, ``1 / |S_i|`` on the candidates of instance ``i``.

    Raises:
        ValueError: if an instance has no candidate, or a class index is out of range.

    Example:
        >>> partial_label_prior([{0, 2}, [1]], num_classes=3)
        tensor([[0.5000, 0.0000, 0.5000],
                [0.0000, 1.0000, 0.0000]])
    """
    if isinstance(candidates, Tensor):
        if candidates.ndim != 2 or candidates.dtype != torch.bool:
            raise ValueError(
                "a candidate matrix must be a boolean (N, C) tensor, got "
                f"{candidates.dtype} {tuple(candidates.shape)}"
            )
        if num_classes is not None and candidates.shape[1] != num_classes:
            raise ValueError(
                f"candidate matrix has {candidates.shape[1]} classes, not {num_classes}"
            )
        mask = candidates
    else:
        if num_classes is None:
            raise ValueError("num_classes is required when candidates are given as sets")
        mask = torch.zeros(len(candidates), num_classes, dtype=torch.bool)
        for i, row in enumerate(candidates):
            idx = sorted(set(int(c) for c in row))
            if idx and (idx[0] < 0 or idx[-1] >= num_classes):
                raise ValueError(f"instance {i}: class indices {idx} outside [0, {num_classes})")
            mask[i, idx] = True
    counts = mask.sum(dim=1)
    empty = (counts == 0).nonzero().flatten()
    if empty.numel():
        raise ValueError(
            f"{empty.numel()} instance(s) have an empty candidate set, e.g. index "
            f"{empty[:5].tolist()}; every instance needs at least one candidate label"
        )
    return mask.float() / counts[:, None].float()
