r"""Label super-resolution losses: QR, RQ and the weak-supervision baselines.

Every loss takes the network's class *probabilities* ``q`` and a prior belief ``prior``
(``P``) of the same shape, either ``(B, C)`` (one prediction per instance) or
``(B, C, H, W)`` (one per pixel), plus an optional boolean ``valid`` mask of shape
``(B,)`` or ``(B, H, W)``. Invalid instances take no part in any sum or mean.

The implicit posterior of Malkin et al. (2022), "Resolving label uncertainty with
implicit generative models", is

.. math::

    r_i(l) = \frac{P_i(l)\, q_i(l) / \sum_j q_j(l)}{\sum_k P_i(k)\, q_i(k) / \sum_j q_j(k)},

where the denominator :math:`\sum_j q_j(l)` runs over all valid instances of the batch
(or is an online estimate of it, see :class:`QRLoss`). QR minimises
:math:`\mathrm{KL}(q\,\|\,r)` and RQ minimises :math:`\mathrm{KL}(r\,\|\,q)`; RQ's EM
form (:func:`em_loss`) minimises :math:`\mathrm{KL}(r\,\|\,q)` with ``r`` held fixed.

Each loss is a pure function plus a thin :class:`torch.nn.Module` that stores its
options, in the style of Kornia. Smoothing keeps inputs on the simplex:
``(p + eps) / (1 + C * eps)``.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from .checks import DEFAULT_SMOOTHING, LossName, check_choice, check_mask, check_shape

__all__ = [
    "DEFAULT_SMOOTHING",
    "EMLoss",
    "HardCrossEntropyLoss",
    "LossName",
    "NLLUnionLoss",
    "QRForm",
    "QRLoss",
    "RQLoss",
    "SoftCrossEntropyLoss",
    "class_mean",
    "em_loss",
    "global_class_mean",
    "hard_cross_entropy",
    "implicit_posterior",
    "log_implicit_posterior",
    "make_loss",
    "nll_union",
    "prior_nll",
    "qr_loss",
    "rq_loss",
    "smooth_probs",
    "soft_cross_entropy",
]

QRForm = Literal["free_energy", "kl"]

#: Training objectives by name, as the Lightning task, the CLI and the adapters spell them:
#: ``qr`` (eq. 4), ``qr_kl`` (KL(q‖r)), ``rq`` (KL(r‖q)), ``em`` (:func:`em_loss`) and the
#: baselines ``ce_soft``, ``ce_hard`` ("hard naive") and ``nll_union``.


def _check_inputs(q: Tensor, prior: Tensor, valid: Tensor | None) -> Tensor:
    """Validate shapes and return a boolean validity mask of shape ``q.shape[:1] + q.shape[2:]``."""
    check_shape(q, ["B", "C"], ["B", "C", "H", "W"], name="q")
    if prior.shape != q.shape:
        raise ValueError(
            f"prior must have the same shape as q {tuple(q.shape)}, got {tuple(prior.shape)}"
        )
    if valid is None:
        return torch.ones(q.shape[:1] + q.shape[2:], dtype=torch.bool, device=q.device)
    checked = check_mask(valid, q, "valid", class_axis=1, of="q")
    assert checked is not None
    return checked


def _safe_log(x: Tensor) -> Tensor:
    """``log(x)`` with zeros mapped to ``log(tiny)`` so that gradients stay finite."""
    return torch.log(x.clamp_min(torch.finfo(x.dtype).tiny))


def _to_rows(x: Tensor) -> Tensor:
    """Move the class axis last and flatten: ``(B, C, ...) -> (N, C)``."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def smooth_probs(p: Tensor, eps: float = DEFAULT_SMOOTHING) -> Tensor:
    """Additive smoothing that keeps a probability vector on the simplex.

    Args:
        p: probabilities ``(B, C, ...)``, summing to 1 over axis 1.
        eps: mass added to every class before renormalising.

    Returns:
        ``(p + eps) / (1 + C * eps)``, same shape as ``p``.

    Example:
        >>> smooth_probs(torch.tensor([[1.0, 0.0]]), 0.5)
        tensor([[0.7500, 0.2500]])
    """
    if eps < 0:
        raise ValueError(f"smoothing must be >= 0, got {eps}")
    if eps == 0:
        return p
    return (p + eps) / (1 + p.shape[1] * eps)


def class_mean(q: Tensor, valid: Tensor | None = None) -> Tensor:
    r"""Mean of ``q`` over all valid instances, per class.

    This is the implicit posterior's denominator :math:`\sum_j q_j(l)` divided by the
    number of valid instances; the division cancels in the posterior's normalisation.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.

    Returns:
        ``(C,)`` tensor. With no valid instance, a uniform vector.
    """
    valid = _check_inputs(q, q, valid)
    rows = _to_rows(q)[valid.reshape(-1)]
    if rows.shape[0] == 0:
        return torch.full((q.shape[1],), 1.0 / q.shape[1], dtype=q.dtype, device=q.device)
    return rows.mean(dim=0)


def _distributed() -> bool:
    dist = torch.distributed
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over processes: the gradient of a sum is the sum of gradients.

    Each process's input feeds every process's output, so the backward pass all-reduces
    the incoming gradients too. Written here on :func:`torch.distributed.all_reduce`
    because ``torch.distributed.nn.functional.all_reduce`` (the same two lines) is
    deprecated from PyTorch 2.14.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: Tensor) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        out: Tensor = _AllReduceSum.apply(grad)
        return out


def global_class_mean(q: Tensor, valid: Tensor | None = None) -> Tensor:
    """:func:`class_mean` over the valid instances of every process of a distributed run.

    Under ``torch.distributed`` (e.g. Lightning's DDP) the per-class sums and counts are
    all-reduced by a differentiable sum over processes: each process's ``q`` receives
    the gradients of every process's loss through the shared denominator, so QR/RQ on
    ``n`` processes of ``B`` instances equal QR/RQ on one batch of ``n B``. Without a
    process group it is :func:`class_mean`.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.

    Returns:
        ``(C,)`` tensor; uniform when no process has a valid instance.
    """
    if not _distributed():
        return class_mean(q, valid)
    valid = _check_inputs(q, q, valid)
    rows = _to_rows(q)[valid.reshape(-1)]
    stats = torch.cat([rows.sum(dim=0), rows.new_full((1,), float(rows.shape[0]))])
    stats = _AllReduceSum.apply(stats)
    count = stats[-1]
    if count == 0:
        return torch.full((q.shape[1],), 1.0 / q.shape[1], dtype=q.dtype, device=q.device)
    mean: Tensor = stats[:-1] / count
    return mean


def log_implicit_posterior(
    q: Tensor, prior: Tensor, q_mean: Tensor | None = None, valid: Tensor | None = None
) -> Tensor:
    """Log of the implicit posterior ``r``: ``log_softmax_C(log q - log q_mean + log P)``.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        prior: prior probabilities, same shape as ``q``.
        q_mean: ``(C,)`` estimate of the per-class mean of ``q``; by default
            :func:`class_mean` of ``q`` over the valid instances of this batch.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.

    Returns:
        ``log r``, same shape as ``q``. Gradients flow through ``q`` and ``q_mean``.
    """
    valid = _check_inputs(q, prior, valid)
    if q_mean is None:
        q_mean = class_mean(q, valid)
    view = (1, -1) + (1,) * (q.ndim - 2)
    logits = _safe_log(q) - _safe_log(q_mean).reshape(view) + _safe_log(prior)
    return torch.log_softmax(logits, dim=1)


def implicit_posterior(
    q: Tensor, prior: Tensor, q_mean: Tensor | None = None, valid: Tensor | None = None
) -> Tensor:
    """Implicit posterior ``r_i(l) ∝ P_i(l) q_i(l) / Σ_j q_j(l)``.

    See :func:`log_implicit_posterior` for the arguments.

    Example:
        >>> q = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
        >>> r = implicit_posterior(q, torch.full_like(q, 0.5))  # uniform prior: r = q / q̄
        >>> torch.allclose(r.sum(dim=1), torch.ones(2))
        True
    """
    return log_implicit_posterior(q, prior, q_mean, valid).exp()


def _masked_mean(per_instance: Tensor, valid: Tensor) -> Tensor:
    """Mean of a ``(B, ...)`` tensor over valid entries; 0 (with a graph) if none is valid.

    Invalid entries are selected away, not multiplied by 0, so NaN or inf there (e.g. an
    undefined prior at nodata pixels) cannot leak into the value.
    """
    zero = torch.zeros((), dtype=per_instance.dtype, device=per_instance.device)
    return torch.where(valid, per_instance, zero).sum() / valid.sum().clamp_min(1)


def qr_loss(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    *,
    form: QRForm = "free_energy",
    q_mean: Tensor | None = None,
) -> Tensor:
    r"""QR loss: the network ``q`` fitted to the implicit posterior ``r``.

    ``form="free_energy"`` is the paper's eq. (4),

    .. math:: \sum_l \bar q_l \log \hat q_l - \frac{1}{N}\sum_i \sum_l q_i(l) \log P_i(l),

    with :math:`\bar q` the batch mean of q over valid instances and :math:`\hat q` the
    denominator estimate (``q_mean``; :math:`\bar q` itself by default, which gives
    eq. (4) to the letter and TorchGeo's ``QRLoss``).
    ``form="kl"`` is :math:`\frac{1}{N}\sum_i \mathrm{KL}(q_i \| r_i)`, the paper's Fig. 2.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        prior: prior probabilities, same shape.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.
        form: ``"free_energy"`` or ``"kl"``.
        q_mean: optional ``(C,)`` denominator estimate (e.g. a running mean).

    Returns:
        Scalar loss.

    Example:
        >>> q = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
        >>> p = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
        >>> round(qr_loss(q, p, form="kl").item(), 4)
        0.1518
    """
    valid = _check_inputs(q, prior, valid)
    check_choice("form", form, QRForm)
    if not valid.any():  # nothing to fit; 0 like the other losses, with a graph
        return (q * 0).sum()
    batch_mean = class_mean(q, valid)
    if q_mean is None:
        q_mean = batch_mean
    match form:
        case "free_energy":
            entropy_term = (batch_mean * _safe_log(q_mean)).sum()
            cross = (q * _safe_log(prior)).sum(dim=1)
            return entropy_term - _masked_mean(cross, valid)
        case _:
            log_r = log_implicit_posterior(q, prior, q_mean, valid)
            kl = (q * (_safe_log(q) - log_r)).sum(dim=1)
            return _masked_mean(kl, valid)


def rq_loss(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    *,
    q_mean: Tensor | None = None,
) -> Tensor:
    r"""RQ loss :math:`\frac{1}{N}\sum_i \mathrm{KL}(r_i \| q_i)`, gradients through ``r``.

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        prior: prior probabilities, same shape.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.
        q_mean: optional ``(C,)`` denominator estimate (e.g. a running mean).

    Returns:
        Scalar loss. For a one-hot prior it equals the cross-entropy of ``q``
        against that class.
    """
    valid = _check_inputs(q, prior, valid)
    log_r = log_implicit_posterior(q, prior, q_mean, valid)
    kl = (log_r.exp() * (log_r - _safe_log(q))).sum(dim=1)
    return _masked_mean(kl, valid)


def em_loss(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    *,
    q_mean: Tensor | None = None,
) -> Tensor:
    r"""RQ's EM form: :math:`\frac{1}{N}\sum_i \mathrm{KL}(\mathrm{sg}(r_i) \| q_i)`.

    The implicit posterior ``r`` is computed from the current ``q`` and then held fixed
    (no gradient flows through it), so each step is a gradient step of EM's M-step on
    the paper's implicit generative model: the E-step is ``r``, the M-step fits ``q`` to
    it. The value is :func:`rq_loss` plus the mean entropy of ``r``; the gradient with
    respect to the logits of ``q = softmax(z)`` is ``(q - r) / N``, which does not vanish
    where the network is confidently wrong (QR's gradient there is proportional to q).

    Args:
        q: probabilities ``(B, C)`` or ``(B, C, H, W)``.
        prior: prior probabilities, same shape.
        valid: optional boolean mask ``(B,)`` or ``(B, H, W)``.
        q_mean: optional ``(C,)`` denominator estimate (e.g. a running mean).

    Returns:
        Scalar loss, the cross-entropy of ``q`` against the detached ``r``.

    Example:
        >>> q = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
        >>> p = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
        >>> round(em_loss(q, p).item(), 4)
        0.5286
    """
    valid = _check_inputs(q, prior, valid)
    with torch.no_grad():
        r = log_implicit_posterior(q, prior, q_mean, valid).exp()
    return soft_cross_entropy(q, r, valid)


def soft_cross_entropy(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
    r"""Cross-entropy against the soft prior, :math:`-\frac{1}{N}\sum_i\sum_l P_i(l)\log q_i(l)`."""
    valid = _check_inputs(q, prior, valid)
    return _masked_mean(-(prior * _safe_log(q)).sum(dim=1), valid)


def hard_cross_entropy(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
    r"""Cross-entropy against the prior's argmax ("hard naive").

    :math:`-\frac{1}{N}\sum_i \log q_i(\arg\max_l P_i(l))`.
    """
    valid = _check_inputs(q, prior, valid)
    target = prior.argmax(dim=1, keepdim=True)
    return _masked_mean(-_safe_log(q).gather(1, target).squeeze(1), valid)


def nll_union(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
    r"""Negative log-likelihood of the prior's label set.

    :math:`-\frac{1}{N}\sum_i \log \sum_l P_i(l) q_i(l)`.
    """
    valid = _check_inputs(q, prior, valid)
    return _masked_mean(-_safe_log((prior * q).sum(dim=1)), valid)


def prior_nll(
    probs: Tensor, target: Tensor, eps: float = DEFAULT_SMOOTHING, ignore_index: int = 255
) -> tuple[Tensor, Tensor]:
    """Sum of ``-log P(true class)`` over labelled pixels, and their count.

    Args:
        probs: ``(B, K, H, W)`` probabilities; smoothed as ``(p + eps) / (1 + K eps)``.
        target: ``(B, H, W)`` class indices; ``ignore_index`` (or any index ``>= K``) is
            left out.
        eps: additive smoothing.
        ignore_index: label to leave out.

    Returns:
        ``(sum, count)`` as 0-d tensors.

    Example:
        >>> p = torch.tensor([[[[0.5]], [[0.5]]]])
        >>> total, n = prior_nll(p, torch.tensor([[[1]]]), eps=0.0)
        >>> round(float(total / n), 4), int(n)
        (0.6931, 1)
    """
    k = probs.shape[1]
    valid = (target != ignore_index) & (target >= 0) & (target < k)
    index = torch.where(valid, target, 0).long().unsqueeze(1)
    p_true = smooth_probs(probs, eps).gather(1, index).squeeze(1)
    nll = -torch.log(p_true.clamp_min(torch.finfo(p_true.dtype).tiny))
    return (nll * valid).sum(), valid.sum()


class _ProbLoss(nn.Module):
    """Shared smoothing of q and P for the loss modules."""

    def __init__(
        self,
        prior_smoothing: float = DEFAULT_SMOOTHING,
        output_smoothing: float = DEFAULT_SMOOTHING,
    ) -> None:
        super().__init__()
        if prior_smoothing < 0 or output_smoothing < 0:
            raise ValueError("prior_smoothing and output_smoothing must be >= 0")
        self.prior_smoothing = prior_smoothing
        self.output_smoothing = output_smoothing

    def _smooth(self, q: Tensor, prior: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
        _check_inputs(q, prior, valid)  # before smoothing, so bad shapes get our message
        return smooth_probs(q, self.output_smoothing), smooth_probs(prior, self.prior_smoothing)


class _ImplicitPosteriorLoss(_ProbLoss):
    """Adds the optional online estimate of the denominator ``Σ_j q_j(l)``."""

    running_mean: Tensor | None
    num_updates: Tensor

    def __init__(
        self,
        prior_smoothing: float = DEFAULT_SMOOTHING,
        output_smoothing: float = DEFAULT_SMOOTHING,
        momentum: float | None = None,
        num_classes: int | None = None,
        sync: bool = True,
    ) -> None:
        super().__init__(prior_smoothing, output_smoothing)
        self.sync = sync
        if momentum is not None and not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1) or None, got {momentum}")
        self.momentum = momentum
        # A buffer (saved in checkpoints) once the class count is known.
        buffer = None if num_classes is None else torch.full((num_classes,), 1.0 / num_classes)
        self.register_buffer("running_mean", buffer)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def denominator(self, q: Tensor, valid: Tensor | None) -> Tensor | None:
        """The ``(C,)`` denominator estimate to use for this batch, or None for the batch mean.

        With ``momentum`` set, the estimate is ``m * running + (1 - m) * batch_mean`` where
        the running part is detached and the batch part carries gradients (the paper's
        §A remedy for small or unrepresentative batches). The running estimate is
        updated only in training mode; the first batch initialises it.

        With ``sync`` (default) under ``torch.distributed``, in training mode, the batch mean
        is that of the global batch over every process (:func:`global_class_mean`).
        """
        # training only: evaluation loops may run different batch counts per process
        distributed = self.sync and self.training and _distributed()
        if self.momentum is None:
            return global_class_mean(q, valid) if distributed else None
        if not distributed and valid is not None and not valid.any():
            return None  # no information in this batch: leave the running estimate alone
        batch_mean = global_class_mean(q, valid) if distributed else class_mean(q, valid)
        running = self.running_mean
        if running is None or running.shape != batch_mean.shape or self.num_updates == 0:
            estimate = batch_mean
        else:
            running = running.to(batch_mean)
            estimate = self.momentum * running + (1 - self.momentum) * batch_mean
        if self.training:
            self.running_mean = estimate.detach().clone()
            self.num_updates.add_(1)
        return estimate

    #: The objective on smoothed ``q`` and ``prior``: ``(q, prior, valid, q_mean) -> loss``.
    objective: Callable[..., Tensor]

    def forward(self, q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
        """Smooth ``q`` and ``prior``, estimate the denominator, apply :attr:`objective`.

        Shapes as :func:`qr_loss`: ``(B, C)`` or ``(B, C, H, W)``, ``valid`` without C.
        """
        q, prior = self._smooth(q, prior, valid)
        return self.objective(q, prior, valid, q_mean=self.denominator(q, valid))


class QRLoss(_ImplicitPosteriorLoss):
    """Module form of :func:`qr_loss` with smoothing and an optional online denominator.

    Args:
        form: ``"free_energy"`` (paper eq. 4, TorchGeo's ``QRLoss``) or ``"kl"`` (Fig. 2).
        prior_smoothing: additive smoothing of the prior (paper: 1e-4).
        output_smoothing: additive smoothing of q (paper: 1e-4).
        momentum: if set, keep a running estimate of the per-class mean of q across
            batches with this momentum; None uses each batch on its own.
        sync: under ``torch.distributed``, use the global batch's denominator in training
            (see :func:`global_class_mean`).
        num_classes: class count, to allocate the running estimate up front (so it is
            saved in checkpoints from the start); inferred from the first batch if None.

    Example:
        >>> loss = QRLoss(form="kl", prior_smoothing=0, output_smoothing=0)
        >>> q = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
        >>> p = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
        >>> round(loss(q, p).item(), 4)
        0.1518
    """

    def __init__(
        self,
        form: QRForm = "free_energy",
        prior_smoothing: float = DEFAULT_SMOOTHING,
        output_smoothing: float = DEFAULT_SMOOTHING,
        momentum: float | None = None,
        num_classes: int | None = None,
        sync: bool = True,
    ) -> None:
        super().__init__(prior_smoothing, output_smoothing, momentum, num_classes, sync)
        check_choice("form", form, QRForm)
        self.form: QRForm = form

    def objective(
        self, q: Tensor, prior: Tensor, valid: Tensor | None, q_mean: Tensor | None
    ) -> Tensor:
        """:func:`qr_loss` in this module's ``form``."""
        return qr_loss(q, prior, valid, form=self.form, q_mean=q_mean)


class RQLoss(_ImplicitPosteriorLoss):
    """Module form of :func:`rq_loss`; arguments as :class:`QRLoss` without ``form``.

    Example:
        >>> loss = RQLoss(prior_smoothing=0, output_smoothing=0)
        >>> q = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
        >>> onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> round(loss(q, onehot).item(), 4)  # = cross-entropy
        0.4338
    """

    objective = staticmethod(rq_loss)


class EMLoss(_ImplicitPosteriorLoss):
    """Module form of :func:`em_loss`; arguments as :class:`QRLoss` without ``form``.

    Example:
        >>> loss = EMLoss(prior_smoothing=0, output_smoothing=0)
        >>> q = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
        >>> p = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
        >>> round(loss(q, p).item(), 4)
        0.5286
    """

    objective = staticmethod(em_loss)


class SoftCrossEntropyLoss(_ProbLoss):
    """Module form of :func:`soft_cross_entropy` with smoothing of q and P."""

    def forward(self, q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`soft_cross_entropy`."""
        return soft_cross_entropy(*self._smooth(q, prior, valid), valid)


class HardCrossEntropyLoss(_ProbLoss):
    """Module form of :func:`hard_cross_entropy` with smoothing of q (P's argmax is unchanged)."""

    def forward(self, q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`hard_cross_entropy`."""
        return hard_cross_entropy(*self._smooth(q, prior, valid), valid)


class NLLUnionLoss(_ProbLoss):
    """Module form of :func:`nll_union` with smoothing of q and P."""

    def forward(self, q: Tensor, prior: Tensor, valid: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`nll_union`."""
        return nll_union(*self._smooth(q, prior, valid), valid)


def make_loss(
    name: LossName,
    *,
    prior_smoothing: float = DEFAULT_SMOOTHING,
    output_smoothing: float = DEFAULT_SMOOTHING,
    momentum: float | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """The loss module for a name of :data:`LossName`.

    Args:
        name: ``qr`` (eq. 4), ``qr_kl`` (KL(q‖r)), ``rq`` (KL(r‖q)), ``em`` (KL(r‖q) with
            r held fixed), ``ce_soft`` (cross-entropy on the soft prior), ``ce_hard``
            (on the prior's argmax) or ``nll_union`` (negative log-likelihood of the
            candidate set).
        prior_smoothing: additive smoothing of the prior.
        output_smoothing: additive smoothing of q.
        momentum: online denominator momentum (``qr``, ``qr_kl``, ``rq``, ``em``).
        num_classes: class count, to allocate the online estimate up front.

    Returns:
        A module called as ``loss(q, prior, valid=None)`` on probabilities.

    Raises:
        ValueError: on an unknown name.
    """
    check_choice("loss", name, LossName)
    p, o = prior_smoothing, output_smoothing
    match name:
        case "qr" | "qr_kl":
            form: QRForm = "free_energy" if name == "qr" else "kl"
            return QRLoss(form, p, o, momentum=momentum, num_classes=num_classes)
        case "rq":
            return RQLoss(p, o, momentum=momentum, num_classes=num_classes)
        case "em":
            return EMLoss(p, o, momentum=momentum, num_classes=num_classes)
        case "ce_soft":
            return SoftCrossEntropyLoss(p, o)
        case "ce_hard":
            return HardCrossEntropyLoss(p, o)
        case "nll_union":
            return NLLUnionLoss(p, o)
