r"""Learning from rankings: pairs of instances with the order of their labels only.

Paper §4.2 (eq. 5). The labels are ordered (e.g. the digits 0 < 1 < ... < 9). For a
pair of instances ``(x1, x2)`` we are told only whether ``l1`` is greater or smaller
than ``l2``. That is a prior over label *pairs*,

.. math:: P(l_1, l_2) = \text{uniform on } \{(l_1, l_2) : l_1 \ge l_2\}\ \text{(or } >\text{)},

and the implicit posterior is formed jointly over the pair (eq. 5):

.. math::

    r(l_1, l_2) \propto P(l_1, l_2)\, \frac{q_1(l_1)}{z(l_1)}\, \frac{q_2(l_2)}{z(l_2)},
    \qquad z(l) = \sum_b q_b(l),

with :math:`z` the per-class sum of q over the batch. Each member's q is then fitted to
its marginal of r: RQ minimises :math:`\mathrm{KL}(r_1 \| q_1) + \mathrm{KL}(r_2 \| q_2)`
(halved: the mean over the 2B members), QR the reverse KL.

**Which denominator.** By default one ``z`` is shared by both members: it is the mean
of q over all ``2B`` instances of the batch. Both members of a pair are draws from the
same data distribution, so their class marginals are the same; one estimate from
``2B`` instances is less noisy than two from ``B`` each, and it is what the authors'
released MNIST code does. ``shared_denominator=False`` uses the mean over first
members for ``z_1`` and over second members for ``z_2``, as written above.

**Ties.** By default (``strict=False``) "+1" means :math:`l_1 \ge l_2` (the triangle
with its diagonal: 55 of the 100 pairs for 10 classes, each 1/55). This is the
binary-comparison setting of the paper (each pair says only "greater or equal" or
"smaller or equal"): random pairs of real data contain ties (10% for balanced 10-class
data), and with the strict triangle (45 pairs, each 1/45) a tied pair would have zero
prior mass at its true labels. When ties are reported explicitly as ``order = 0``, use
``strict=True``: +1 then carries the stronger "strictly greater", which also rules out
the degenerate solution in which two neighbouring classes merge into one (with
:math:`\ge` everywhere, predicting 0 for both a 1 and a 0 satisfies "1 >= 0").
The triangle anchors the order: the only permutation of the classes that maps
"l1 >= l2" onto itself is the identity, so a model trained this way predicts the
digits themselves, not the digits up to a relabelling.

**Reuse of the instance losses.** The marginal of ``r`` for the first member is

.. math::

    r_1(l_1) \propto \frac{q_1(l_1)}{z(l_1)} \underbrace{\sum_{l_2} P(l_1, l_2)
    \frac{q_2(l_2)}{z(l_2)}}_{\tilde P_1(l_1)},

i.e. the ordinary implicit posterior of :func:`~torchgeo_lsr.losses.implicit_posterior`
with the *effective prior* :math:`\tilde P_1` (which depends on q2 and carries
gradients). So the losses here are :func:`~torchgeo_lsr.losses.rq_loss` and
:func:`~torchgeo_lsr.losses.qr_loss` (``form="kl"``) applied to effective priors.

Example:
    >>> import torch
    >>> [ranking_prior(10, strict=s).count_nonzero().item() for s in (False, True)]
    [55, 45]
    >>> q1 = torch.softmax(torch.randn(4, 10), 1)
    >>> q2 = torch.softmax(torch.randn(4, 10), 1)
    >>> RankingLoss()(q1, q2, torch.tensor([1, -1, 1, 0])).ndim
    0

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..losses import (
    DEFAULT_SMOOTHING,
    class_mean,
    implicit_posterior,
    qr_loss,
    rq_loss,
    smooth_probs,
)

__all__ = [
    "RankingLoss",
    "pair_order_prior",
    "ranking_denominators",
    "ranking_effective_priors",
    "ranking_loss",
    "ranking_marginals",
    "ranking_posterior",
    "ranking_prior",
]

RankingForm = Literal["rq", "qr"]


def ranking_prior(num_classes: int, strict: bool = False) -> Tensor:
    r"""Joint prior over ``(l1, l2)`` for "l1 is greater than l2".

    Args:
        num_classes: number of ordered classes ``C``.
        strict: False (default) for :math:`l_1 \ge l_2` (ties allowed, ``C(C+1)/2``
            pairs), True for :math:`l_1 > l_2` (``C(C-1)/2`` pairs).

    Returns:
        ``(C, C)`` tensor, rows indexed by ``l1`` and columns by ``l2``, uniform on the
        lower triangle (with or without the diagonal) and 0 elsewhere.

    Example:
        >>> ranking_prior(3, strict=True) * 3
        tensor([[0., 0., 0.],
                [1., 0., 0.],
                [1., 1., 0.]])
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    mask = torch.ones(num_classes, num_classes).tril(diagonal=-1 if strict else 0)
    return mask / mask.sum()


def pair_order_prior(order: Tensor, num_classes: int, strict: bool = False) -> Tensor:
    """Per-pair joint priors from an order vector.

    Args:
        order: ``(B,)`` integers: +1 where the first member's label is greater, -1 where
            it is smaller, 0 where the two labels are equal.
        num_classes: number of ordered classes ``C``.
        strict: meaning of +1/-1, see :func:`ranking_prior`.

    Returns:
        ``(B, C, C)`` priors: :func:`ranking_prior` for +1, its transpose for -1, uniform
        on the diagonal for 0.

    Example:
        >>> pair_order_prior(torch.tensor([1, -1, 0]), 4).shape
        torch.Size([3, 4, 4])
    """
    if order.ndim != 1:
        raise ValueError(f"order must have shape (B,), got {tuple(order.shape)}")
    if order.dtype == torch.bool:  # a natural `y1 > y2` would read every False as a tie
        raise TypeError(
            "order is a bool tensor; give +1 (first greater), -1 (second greater) and 0 "
            "(equal), e.g. torch.sign(y1 - y2), or (y1 > y2).long() * 2 - 1 without ties"
        )
    if not bool(((order == 1) | (order == -1) | (order == 0)).all()):
        raise ValueError("order must contain only +1, -1 and 0")
    greater = ranking_prior(num_classes, strict).to(order.device)
    equal = torch.eye(num_classes, device=order.device) / num_classes
    view = (-1, 1, 1)
    o = order.reshape(view)
    return torch.where(o == 1, greater, torch.where(o == -1, greater.T, equal))


def _check_pair(q1: Tensor, q2: Tensor, prior: Tensor) -> None:
    if q1.ndim != 2 or q2.shape != q1.shape:
        raise ValueError(
            f"q1 and q2 must both have shape (B, C), got {tuple(q1.shape)} and {tuple(q2.shape)}"
        )
    b, c = q1.shape
    if prior.shape not in ((b, c, c), (c, c)):
        raise ValueError(
            f"prior must have shape ({b}, {c}, {c}) or ({c}, {c}), got {tuple(prior.shape)}"
        )


def ranking_denominators(
    q1: Tensor, q2: Tensor, shared_denominator: bool = True
) -> tuple[Tensor, Tensor]:
    """The ``(C,)`` batch denominators ``z_1``, ``z_2`` (means, the scale cancels).

    Args:
        q1: first members' probabilities ``(B, C)``.
        q2: second members' probabilities ``(B, C)``.
        shared_denominator: one mean over all ``2B`` instances, or one mean per member.

    Returns:
        ``(z1, z2)``, each ``(C,)``; the same tensor twice when shared.
    """
    if shared_denominator:
        z = class_mean(torch.cat([q1, q2]))
        return z, z
    return class_mean(q1), class_mean(q2)


def ranking_effective_priors(
    q1: Tensor, q2: Tensor, prior: Tensor, z1: Tensor, z2: Tensor
) -> tuple[Tensor, Tensor]:
    r"""Effective per-member priors whose implicit posteriors are the marginals of eq. 5.

    :math:`\tilde P_1(l_1) \propto \sum_{l_2} P(l_1, l_2)\, q_2(l_2)/z_2(l_2)` and
    :math:`\tilde P_2(l_2) \propto \sum_{l_1} P(l_1, l_2)\, q_1(l_1)/z_1(l_1)`, each
    normalised to sum to 1.

    Args:
        q1: ``(B, C)``.
        q2: ``(B, C)``.
        prior: joint prior ``(B, C, C)`` or ``(C, C)`` (rows ``l1``, columns ``l2``).
        z1: ``(C,)`` denominator for the first members.
        z2: ``(C,)`` denominator for the second members.

    Returns:
        ``(P1, P2)``, each ``(B, C)``, differentiable in q1, q2, z1 and z2.
    """
    _check_pair(q1, q2, prior)
    tiny = torch.finfo(q1.dtype).tiny
    w2 = q2 / z2.clamp_min(tiny)  # (B, C) over l2
    w1 = q1 / z1.clamp_min(tiny)  # (B, C) over l1
    if prior.ndim == 2:
        p1 = w2 @ prior.T  # (B, l1) = sum_l2 P[l1, l2] w2[l2]
        p2 = w1 @ prior  # (B, l2) = sum_l1 P[l1, l2] w1[l1]
    else:
        p1 = torch.einsum("bij,bj->bi", prior, w2)
        p2 = torch.einsum("bij,bi->bj", prior, w1)
    p1 = p1 / p1.sum(dim=1, keepdim=True).clamp_min(tiny)
    p2 = p2 / p2.sum(dim=1, keepdim=True).clamp_min(tiny)
    return p1, p2


def ranking_posterior(
    q1: Tensor, q2: Tensor, prior: Tensor, shared_denominator: bool = True
) -> Tensor:
    """The joint implicit posterior of eq. 5 over label pairs.

    Args:
        q1: ``(B, C)`` probabilities of the first members.
        q2: ``(B, C)`` probabilities of the second members.
        prior: joint prior ``(B, C, C)`` or ``(C, C)``.
        shared_denominator: see :func:`ranking_denominators`.

    Returns:
        ``(B, C, C)``: ``r[b, l1, l2]``, each ``[b]`` summing to 1.

    Example:
        >>> q = torch.full((2, 3), 1 / 3)
        >>> r = ranking_posterior(q, q, ranking_prior(3, strict=True))
        >>> r[0] * 3  # uniform q: r is the prior
        tensor([[0., 0., 0.],
                [1., 0., 0.],
                [1., 1., 0.]])
    """
    _check_pair(q1, q2, prior)
    z1, z2 = ranking_denominators(q1, q2, shared_denominator)
    tiny = torch.finfo(q1.dtype).tiny
    b, c = q1.shape
    log_w1 = torch.log(q1.clamp_min(tiny)) - torch.log(z1.clamp_min(tiny))
    log_w2 = torch.log(q2.clamp_min(tiny)) - torch.log(z2.clamp_min(tiny))
    logits = torch.log(prior.clamp_min(tiny)) + log_w1[:, :, None] + log_w2[:, None, :]
    logits = torch.where(prior > 0, logits, torch.full_like(logits, -torch.inf))
    return torch.softmax(logits.reshape(b, c * c), dim=1).reshape(b, c, c)


def ranking_marginals(
    q1: Tensor, q2: Tensor, prior: Tensor, shared_denominator: bool = True
) -> tuple[Tensor, Tensor]:
    """Marginals of the joint posterior for each member, without forming it.

    Args:
        q1: ``(B, C)``.
        q2: ``(B, C)``.
        prior: joint prior ``(B, C, C)`` or ``(C, C)``.
        shared_denominator: see :func:`ranking_denominators`.

    Returns:
        ``(r1, r2)``, each ``(B, C)``: ``r1 = r.sum(2)`` and ``r2 = r.sum(1)`` for
        ``r = ranking_posterior(...)``.
    """
    z1, z2 = ranking_denominators(q1, q2, shared_denominator)
    p1, p2 = ranking_effective_priors(q1, q2, prior, z1, z2)
    return implicit_posterior(q1, p1, q_mean=z1), implicit_posterior(q2, p2, q_mean=z2)


def ranking_loss(
    q1: Tensor,
    q2: Tensor,
    prior: Tensor,
    form: RankingForm = "rq",
    shared_denominator: bool = True,
) -> Tensor:
    r"""Fit each member's q to its marginal of the joint posterior (eq. 5).

    Args:
        q1: ``(B, C)`` probabilities of the first members.
        q2: ``(B, C)`` probabilities of the second members.
        prior: joint prior ``(B, C, C)`` or ``(C, C)``, e.g. from :func:`pair_order_prior`.
        form: ``"rq"`` for :math:`\mathrm{KL}(r_k \| q_k)`, ``"qr"`` for
            :math:`\mathrm{KL}(q_k \| r_k)`.
        shared_denominator: see :func:`ranking_denominators`.

    Returns:
        Scalar: the mean over the ``2B`` members; gradients flow through q and through r.
    """
    z1, z2 = ranking_denominators(q1, q2, shared_denominator)
    p1, p2 = ranking_effective_priors(q1, q2, prior, z1, z2)
    match form:
        case "rq":
            return 0.5 * (rq_loss(q1, p1, q_mean=z1) + rq_loss(q2, p2, q_mean=z2))
        case "qr":
            return 0.5 * (
                qr_loss(q1, p1, form="kl", q_mean=z1) + qr_loss(q2, p2, form="kl", q_mean=z2)
            )
        case _:
            raise ValueError(f"form must be 'rq' or 'qr', got {form!r}")


class RankingLoss(nn.Module):
    """Module form of :func:`ranking_loss`, taking the order of each pair.

    Args:
        form: ``"rq"`` (default) or ``"qr"``.
        strict: meaning of +1/-1, see :func:`ranking_prior` (default: ties allowed).
        shared_denominator: see :func:`ranking_denominators` (default: shared).
        prior_smoothing: additive smoothing of the joint prior over the ``C * C`` pairs.
        output_smoothing: additive smoothing of q1 and q2.

    Example:
        >>> loss = RankingLoss(form="qr")
        >>> q = torch.softmax(torch.randn(6, 5), dim=1)
        >>> float(loss(q[:3], q[3:], torch.tensor([1, 1, -1]))) >= 0
        True
    """

    def __init__(
        self,
        form: RankingForm = "rq",
        strict: bool = False,
        shared_denominator: bool = True,
        prior_smoothing: float = DEFAULT_SMOOTHING,
        output_smoothing: float = DEFAULT_SMOOTHING,
    ) -> None:
        super().__init__()
        if form not in ("rq", "qr"):
            raise ValueError(f"form must be 'rq' or 'qr', got {form!r}")
        if prior_smoothing < 0 or output_smoothing < 0:
            raise ValueError("prior_smoothing and output_smoothing must be >= 0")
        self.form: RankingForm = form
        self.strict = strict
        self.shared_denominator = shared_denominator
        self.prior_smoothing = prior_smoothing
        self.output_smoothing = output_smoothing

    def forward(self, q1: Tensor, q2: Tensor, order: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            q1: ``(B, C)`` probabilities of the first members.
            q2: ``(B, C)`` probabilities of the second members.
            order: ``(B,)`` +1 / -1 / 0, see :func:`pair_order_prior`.

        Returns:
            Scalar loss.
        """
        if q1.ndim != 2:
            raise ValueError(f"q1 must have shape (B, C), got {tuple(q1.shape)}")
        b, c = q1.shape
        prior = pair_order_prior(order, c, self.strict).to(q1)
        prior = smooth_probs(prior.reshape(b, c * c), self.prior_smoothing).reshape(b, c, c)
        q1 = smooth_probs(q1, self.output_smoothing)
        q2 = smooth_probs(q2, self.output_smoothing)
        return ranking_loss(q1, q2, prior, self.form, self.shared_denominator)
