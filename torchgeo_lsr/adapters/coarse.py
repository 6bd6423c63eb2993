r"""Priors from coarse labels, optionally sharpened by a teacher (paper §4.5).

Each instance carries a *coarse* label (a superclass, e.g. "vehicle"), and the task is
to predict the *fine* classes (e.g. "car", "truck"). Without more information the prior
is uniform over the fine classes of the instance's coarse class. With a *teacher* that
gives likelihoods :math:`t_i(l)` for the fine classes (any model: a logistic regression
on a few fine-labelled examples, a model from another domain), the prior becomes

.. math::

    P_i(l) \propto \mathbb{1}[l \in \mathrm{fine}(c_i)]\; \frac{t_i(l)}{\bar t(l)},
    \qquad \bar t(l) = \frac{1}{N}\sum_j t_j(l),

i.e. the teacher's likelihood divided by its mean per class (so a teacher that
over-predicts a class does not hand that bias to the prior), restricted to the coarse
class and renormalised. If the teacher gives zero weight to every fine class of an
instance's coarse class, that instance falls back to the uniform coarse prior.

Example:
    >>> import torch
    >>> hierarchy = [[0, 1], [2, 3, 4]]  # coarse class 0 = fine {0, 1}, 1 = {2, 3, 4}
    >>> coarse_label_prior(torch.tensor([0, 1]), hierarchy)
    tensor([[0.5000, 0.5000, 0.0000, 0.0000, 0.0000],
            [0.0000, 0.0000, 0.3333, 0.3333, 0.3333]])

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .training import TrainingHistory, fit_on_prior

__all__ = ["coarse_label_prior", "fine_to_coarse", "fit_teacher", "make_teacher"]


def fine_to_coarse(hierarchy: Sequence[Sequence[int]] | Tensor) -> Tensor:
    """The coarse class of every fine class.

    Args:
        hierarchy: one list of fine classes per coarse class (each fine class in exactly
            one list), or already a ``(C_fine,)`` integer tensor of coarse indices.

    Returns:
        ``(C_fine,)`` long tensor ``parent`` with ``parent[l]`` the coarse class of ``l``.

    Example:
        >>> fine_to_coarse([[0, 2], [1]])
        tensor([0, 1, 0])
    """
    if isinstance(hierarchy, Tensor):
        if hierarchy.ndim != 1 or hierarchy.dtype.is_floating_point:
            raise ValueError(
                f"a hierarchy tensor must be (C_fine,) integers, got {hierarchy.dtype} "
                f"{tuple(hierarchy.shape)}"
            )
        return hierarchy.long()
    fine = [int(f) for group in hierarchy for f in group]
    if sorted(fine) != list(range(len(fine))):
        raise ValueError(
            f"the hierarchy must list every fine class 0..C_fine-1 exactly once, got {sorted(fine)}"
        )
    parent = torch.empty(len(fine), dtype=torch.long)
    for c, group in enumerate(hierarchy):
        for f in group:
            parent[int(f)] = c
    return parent


def coarse_label_prior(
    coarse: Tensor,
    hierarchy: Sequence[Sequence[int]] | Tensor,
    teacher: Tensor | None = None,
) -> Tensor:
    """Prior over fine classes restricted to each instance's coarse class.

    Args:
        coarse: ``(N,)`` coarse class indices.
        hierarchy: see :func:`fine_to_coarse`.
        teacher: optional ``(N, C_fine)`` non-negative likelihoods of the fine classes
            (e.g. a teacher's softmax outputs on the same N instances). The per-class
            mean is taken over these N rows.

    Returns:
        ``(N, C_fine)`` prior, zero outside the coarse class, rows summing to 1.

    Example:
        >>> t = torch.tensor([[0.6, 0.2, 0.2], [0.2, 0.2, 0.6]])
        >>> coarse_label_prior(torch.tensor([0, 0]), [[0, 1], [2]], teacher=t)
        tensor([[0.6000, 0.4000, 0.0000],
                [0.3333, 0.6667, 0.0000]])
    """
    parent = fine_to_coarse(hierarchy).to(coarse.device)
    if coarse.ndim != 1:
        raise ValueError(f"coarse must have shape (N,), got {tuple(coarse.shape)}")
    num_coarse = int(parent.max()) + 1
    if coarse.numel() and (coarse.min() < 0 or coarse.max() >= num_coarse):
        raise ValueError(
            f"coarse labels must be in [0, {num_coarse}), got {torch.unique(coarse).tolist()}"
        )
    mask = (parent[None, :] == coarse[:, None].long()).float()  # (N, C_fine)
    uniform = mask / mask.sum(dim=1, keepdim=True)
    if teacher is None:
        return uniform
    if teacher.shape != mask.shape:
        raise ValueError(f"teacher must have shape {tuple(mask.shape)}, got {tuple(teacher.shape)}")
    if bool((teacher < 0).any()):
        raise ValueError("teacher likelihoods must be non-negative")
    t_mean = teacher.float().mean(dim=0).clamp_min(torch.finfo(torch.float32).tiny)
    weights = mask * teacher.float() / t_mean
    total = weights.sum(dim=1, keepdim=True)
    ok = total > 0
    return torch.where(ok, weights / total.clamp_min(torch.finfo(torch.float32).tiny), uniform)


def make_teacher(in_features: int, num_classes: int, hidden: int = 0) -> nn.Module:
    """A small teacher on flat features: logistic regression, or an MLP with one hidden layer.

    Args:
        in_features: input feature count (images are flattened by the module).
        num_classes: fine classes.
        hidden: 0 for logistic regression; otherwise the hidden width of a ReLU MLP.

    Returns:
        A module mapping ``(B, ...)`` to logits ``(B, num_classes)``.

    Example:
        >>> make_teacher(4, 3)(torch.zeros(2, 2, 2)).shape
        torch.Size([2, 3])
    """
    if hidden < 0:
        raise ValueError(f"hidden must be >= 0, got {hidden}")
    if hidden == 0:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def fit_teacher(
    x: Tensor,
    labels: Tensor,
    num_classes: int,
    *,
    hidden: int = 0,
    epochs: int = 50,
    batch_size: int = 64,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> tuple[nn.Module, TrainingHistory]:
    """Train a small teacher by cross-entropy on a few fine-labelled examples.

    Its :func:`~torchgeo_lsr.adapters.training.predict_probs` on the coarse-labelled
    set is the ``teacher`` argument of :func:`coarse_label_prior`.

    Args:
        x: ``(M, ...)`` inputs of the fine-labelled examples.
        labels: ``(M,)`` their fine labels.
        num_classes: fine classes.
        hidden: see :func:`make_teacher`.
        epochs: passes over the examples.
        batch_size: examples per step.
        lr: Adam learning rate.
        generator: seeds the initial weights and the shuffling.

    Returns:
        ``(teacher, history)``; the teacher is in eval mode.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(40, 2, generator=g)
        >>> y = (x[:, 0] > 0).long()
        >>> from torchgeo_lsr.adapters import predict_probs
        >>> teacher, _ = fit_teacher(x, y, 2, epochs=30, batch_size=20, lr=0.1, generator=g)
        >>> bool((predict_probs(teacher, x).argmax(1) == y).float().mean() > 0.9)
        True
    """
    in_features = int(torch.tensor(x.shape[1:]).prod())
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        teacher = make_teacher(in_features, num_classes, hidden)
    onehot = nn.functional.one_hot(labels.long(), num_classes).float()
    history = fit_on_prior(
        teacher,
        x,
        onehot,
        "ce_soft",
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        generator=generator,
    )
    return teacher, history
