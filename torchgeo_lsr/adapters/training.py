"""A plain training loop for instance-level weak supervision: ``(x, prior)`` tensors in.

The weak-supervision adapters (negative and partial labels, coarse labels, rankings)
all reduce to a per-instance prior ``P`` of shape ``(N, C)`` (or a prior over label
pairs, for rankings). :func:`fit_on_prior` trains any classifier that maps a batch of
inputs to logits ``(B, C)`` against such a prior with one of the losses of
:mod:`torchgeo_lsr.losses`; :func:`fit_on_rankings` does the same for ordered pairs.
No Lightning: a few lines of Adam over shuffled mini-batches, seeded.

Example:
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 2, generator=g)
    >>> prior = torch.stack([(x[:, 0] > 0).float(), (x[:, 0] <= 0).float()], dim=1)
    >>> net = nn.Linear(2, 2)
    >>> hist = fit_on_prior(net, x, prior, loss="rq", epochs=3, batch_size=32, generator=g)
    >>> len(hist.loss)
    3

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..losses import LossName, make_loss
from .rankings import RankingLoss

__all__ = [
    "LossName",
    "TrainingHistory",
    "fit_on_prior",
    "fit_on_rankings",
    "make_loss",
    "predict_probs",
]

#: Called after every epoch with ``(epoch, model)``; may return metrics to record.
EpochCallback = Callable[[int, nn.Module], dict[str, float] | None]


@dataclass
class TrainingHistory:
    """What a training run recorded.

    Attributes:
        loss: mean training loss of each epoch.
        metrics: whatever the ``on_epoch_end`` callback returned, one dict per epoch
            (empty dicts when there is no callback or it returned None).
    """

    loss: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)


def _check_epochs(epochs: int, batch_size: int, lr: float) -> None:
    if epochs < 0 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}"
        )


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def fit_on_prior(
    model: nn.Module,
    x: Tensor,
    prior: Tensor,
    loss: LossName = "rq",
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    momentum: float | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainingHistory:
    """Train ``model`` so that ``softmax(model(x))`` fits a per-instance prior.

    Adam over shuffled mini-batches (the last, smaller batch is kept). The QR and RQ
    denominators are the batch means of q, so ``batch_size`` matters for them: the
    paper uses 256 on MNIST.

    Args:
        model: maps ``(B, ...)`` inputs to logits ``(B, C)``; trained in place.
        x: inputs ``(N, ...)`` (on the model's device, or moved there batch by batch).
        prior: prior probabilities ``(N, C)``, each row summing to 1.
        loss: a name accepted by :func:`~torchgeo_lsr.losses.make_loss`.
        epochs: passes over the data.
        batch_size: instances per step.
        lr: Adam learning rate.
        generator: seeds the shuffling (the model's initial weights are the caller's).
        momentum: online denominator momentum for QR/RQ; None uses each batch alone.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after every epoch (model
            in eval mode); a returned dict is stored in ``history.metrics``.

    Returns:
        A :class:`TrainingHistory` with one entry per epoch.
    """
    if prior.ndim != 2 or prior.shape[0] != x.shape[0]:
        raise ValueError(
            f"prior must have shape (N, C) with N = len(x) = {x.shape[0]}, got {tuple(prior.shape)}"
        )
    _check_epochs(epochs, batch_size, lr)
    criterion = make_loss(loss, momentum=momentum)
    device = _model_device(model)
    criterion.to(device)
    criterion.train()

    def batch_loss(idx: Tensor) -> Tensor:
        q = torch.softmax(model(x[idx].to(device)), dim=1)
        value: Tensor = criterion(q, prior[idx].to(device))
        return value

    return _train(model, x.shape[0], batch_loss, epochs, batch_size, lr, generator, on_epoch_end)


def fit_on_rankings(
    model: nn.Module,
    x: Tensor,
    pairs: Tensor,
    order: Tensor,
    loss: Literal["rq", "qr"] = "rq",
    *,
    num_classes: int,
    strict: bool = False,
    shared_denominator: bool = True,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainingHistory:
    """Train ``model`` from ordered pairs only, with :class:`~.rankings.RankingLoss`.

    Args:
        model: maps ``(B, ...)`` inputs to logits ``(B, num_classes)``; trained in place.
        x: inputs ``(N, ...)``.
        pairs: ``(M, 2)`` long tensor of instance indices ``(i, j)``.
        order: ``(M,)`` with +1 where i's label is greater than j's, -1 where it is
            smaller, 0 where they are equal (see :func:`~.rankings.pair_order_prior`).
        loss: ``"rq"`` or ``"qr"``.
        num_classes: number of ordered classes.
        strict: whether +1/-1 mean strict inequalities (see :func:`~.rankings.ranking_prior`).
        shared_denominator: one batch denominator for both members (default) or one each.
        epochs: passes over the pairs.
        batch_size: pairs per step (``2 * batch_size`` network evaluations).
        lr: Adam learning rate.
        generator: seeds the shuffling of the pairs.
        on_epoch_end: as in :func:`fit_on_prior`.

    Returns:
        A :class:`TrainingHistory`.
    """
    if pairs.ndim != 2 or pairs.shape[1] != 2 or order.shape != pairs.shape[:1]:
        raise ValueError(
            f"pairs must be (M, 2) and order (M,), got {tuple(pairs.shape)} and "
            f"{tuple(order.shape)}"
        )
    _check_epochs(epochs, batch_size, lr)
    criterion = RankingLoss(form=loss, strict=strict, shared_denominator=shared_denominator)
    device = _model_device(model)

    def batch_loss(idx: Tensor) -> Tensor:
        both = pairs[idx].reshape(-1)  # (2B,): i0, j0, i1, j1, ...
        q = torch.softmax(model(x[both].to(device)), dim=1)
        if q.shape[1] != num_classes:
            raise ValueError(f"model gives {q.shape[1]} classes, expected {num_classes}")
        value: Tensor = criterion(q[0::2], q[1::2], order[idx].to(device))
        return value

    return _train(
        model, pairs.shape[0], batch_loss, epochs, batch_size, lr, generator, on_epoch_end
    )


def _train(
    model: nn.Module,
    items: int,
    batch_loss: Callable[[Tensor], Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator | None,
    on_epoch_end: EpochCallback | None,
) -> TrainingHistory:
    """Adam over shuffled mini-batches of ``items`` indices; ``batch_loss(idx)`` -> loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = TrainingHistory()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(items, generator=generator)
        total, count = 0.0, 0
        for start in range(0, items, batch_size):
            idx = perm[start : start + batch_size]
            value = batch_loss(idx)
            opt.zero_grad()
            value.backward()  # type: ignore[no-untyped-call]  # untyped in torch stubs
            opt.step()
            total += float(value.detach()) * len(idx)
            count += len(idx)
        history.loss.append(total / max(count, 1))
        model.eval()
        metrics = on_epoch_end(epoch, model) if on_epoch_end is not None else None
        history.metrics.append(dict(metrics or {}))
    model.eval()
    return history


@torch.no_grad()
def predict_probs(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Class probabilities ``softmax(model(x))`` in eval mode, batch by batch.

    Args:
        model: maps ``(B, ...)`` inputs to logits ``(B, C, ...)``.
        x: inputs ``(N, ...)``.
        batch_size: instances per forward pass.

    Returns:
        ``(N, C, ...)`` probabilities on the CPU.

    Example:
        >>> predict_probs(torch.nn.Linear(3, 4), torch.zeros(5, 3)).shape
        torch.Size([5, 4])
    """
    was_training = model.training
    model.eval()
    device = _model_device(model)
    out = [
        torch.softmax(model(x[s : s + batch_size].to(device)), dim=1).cpu()
        for s in range(0, x.shape[0], batch_size)
    ]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)
