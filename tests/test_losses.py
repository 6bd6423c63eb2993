"""Tests for :mod:`torchgeo_lsr.losses`.

Values are checked against slow float64 references written here with explicit Python
loops over instances and classes (no helper of the module is used to build an
expected value), gradients with :func:`torch.autograd.gradcheck`, and each module
against its function. TorchGeo's own ``QRLoss``/``RQLoss`` serve as a second,
external reference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence

import pytest
import torch
import torchgeo.losses
from torch import Tensor

from torchgeo_lsr.losses import (
    EMLoss,
    HardCrossEntropyLoss,
    NLLUnionLoss,
    QRLoss,
    RQLoss,
    SoftCrossEntropyLoss,
    class_mean,
    em_loss,
    hard_cross_entropy,
    implicit_posterior,
    log_implicit_posterior,
    make_loss,
    nll_union,
    qr_loss,
    rq_loss,
    smooth_probs,
    soft_cross_entropy,
)

LossFn = Callable[..., Tensor]
Vector = list[float]

SHAPES = [(7, 4), (2, 3, 4, 5)]
TOL = {"rel": 1e-9, "abs": 1e-12}

# --------------------------------------------------------------------------------------
# Slow references: explicit loops, float64 Python floats.
# --------------------------------------------------------------------------------------


def _instances(
    q: Tensor, prior: Tensor, valid: Tensor | None = None
) -> list[tuple[Vector, Vector]]:
    """List the valid instances (rows or pixels) as ``(q_i, P_i)`` pairs of lists."""
    qa = q.detach().double().cpu().numpy()
    pa = prior.detach().double().cpu().numpy()
    va = None if valid is None else valid.cpu().numpy()
    num_classes = qa.shape[1]
    out: list[tuple[Vector, Vector]] = []
    if qa.ndim == 2:
        index_list: list[tuple[int, ...]] = [(b,) for b in range(qa.shape[0])]
    else:
        index_list = [
            (b, h, w)
            for b in range(qa.shape[0])
            for h in range(qa.shape[2])
            for w in range(qa.shape[3])
        ]
    for idx in index_list:
        if va is not None and not va[idx]:
            continue
        qi = [float(qa[(idx[0], c, *idx[1:])]) for c in range(num_classes)]
        pi = [float(pa[(idx[0], c, *idx[1:])]) for c in range(num_classes)]
        out.append((qi, pi))
    return out


def ref_mean(q: Tensor, valid: Tensor | None = None) -> Vector:
    """Per-class mean of q over the valid instances."""
    inst = _instances(q, q, valid)
    num_classes = q.shape[1]
    total = [0.0] * num_classes
    for qi, _ in inst:
        for c in range(num_classes):
            total[c] += qi[c]
    return [t / len(inst) for t in total]


def _xlogy(x: float, y: float) -> float:
    """``x * log(y)`` with ``0 * log(anything) = 0``."""
    return 0.0 if x == 0.0 else x * math.log(y)


def _posterior(qi: Vector, pi: Vector, denom: Sequence[float]) -> Vector:
    """``r_i(l) ∝ P_i(l) q_i(l) / S_l`` for one instance."""
    num = [pi[c] * qi[c] / denom[c] for c in range(len(qi))]
    z = sum(num)
    return [n / z for n in num]


def ref_posterior(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> list[Vector]:
    """Implicit posterior of every valid instance, with S_l = Σ_j q_j(l) (a sum)."""
    inst = _instances(q, prior, valid)
    num_classes = q.shape[1]
    s = [sum(qi[c] for qi, _ in inst) for c in range(num_classes)]
    return [_posterior(qi, pi, s) for qi, pi in inst]


def ref_qr_free_energy(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    q_hat: Sequence[float] | None = None,
) -> float:
    """Paper eq. (4): Σ_l q̄_l log q̂_l − (1/N) Σ_i Σ_l q_i(l) log P_i(l)."""
    inst = _instances(q, prior, valid)
    q_bar = ref_mean(q, valid)
    q_hat = q_bar if q_hat is None else q_hat
    entropy = sum(_xlogy(q_bar[c], q_hat[c]) for c in range(len(q_bar)))
    cross = 0.0
    for qi, pi in inst:
        for c in range(len(qi)):
            cross += _xlogy(qi[c], pi[c])
    return entropy - cross / len(inst)


def _with_posteriors(
    q: Tensor, prior: Tensor, valid: Tensor | None, q_hat: Sequence[float] | None
) -> list[tuple[Vector, Vector]]:
    """``(q_i, r_i)`` of every valid instance, r with denominator q̂ (default: q̄)."""
    inst = _instances(q, prior, valid)
    denom = ref_mean(q, valid) if q_hat is None else q_hat
    return [(qi, _posterior(qi, pi, denom)) for qi, pi in inst]


def _cross_entropy(a: Vector, b: Vector) -> float:
    """``−Σ_l a(l) log b(l)``."""
    return -sum(_xlogy(a[c], b[c]) for c in range(len(a)))


def _kl(a: Vector, b: Vector) -> float:
    """``KL(a ‖ b) = Σ_l a(l) (log a(l) − log b(l))``."""
    return _cross_entropy(a, b) - _cross_entropy(a, a)


def ref_qr_kl(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    q_hat: Sequence[float] | None = None,
) -> float:
    """(1/N) Σ_i KL(q_i ‖ r_i)."""
    pairs = _with_posteriors(q, prior, valid, q_hat)
    return sum(_kl(qi, ri) for qi, ri in pairs) / len(pairs)


def ref_rq(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    q_hat: Sequence[float] | None = None,
) -> float:
    """(1/N) Σ_i KL(r_i ‖ q_i)."""
    pairs = _with_posteriors(q, prior, valid, q_hat)
    return sum(_kl(ri, qi) for qi, ri in pairs) / len(pairs)


def ref_em(
    q: Tensor,
    prior: Tensor,
    valid: Tensor | None = None,
    q_hat: Sequence[float] | None = None,
) -> float:
    """−(1/N) Σ_i Σ_l r_i(l) log q_i(l): cross-entropy of q against the posterior."""
    pairs = _with_posteriors(q, prior, valid, q_hat)
    return sum(_cross_entropy(ri, qi) for qi, ri in pairs) / len(pairs)


def ref_soft_ce(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> float:
    """−(1/N) Σ_i Σ_l P_i(l) log q_i(l)."""
    inst = _instances(q, prior, valid)
    total = 0.0
    for qi, pi in inst:
        for c in range(len(qi)):
            total -= _xlogy(pi[c], qi[c])
    return total / len(inst)


def ref_hard_ce(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> float:
    """−(1/N) Σ_i log q_i(argmax_l P_i(l)), ties to the first class."""
    inst = _instances(q, prior, valid)
    total = 0.0
    for qi, pi in inst:
        best = 0
        for c in range(1, len(pi)):
            if pi[c] > pi[best]:
                best = c
        total -= math.log(qi[best])
    return total / len(inst)


def ref_nll_union(q: Tensor, prior: Tensor, valid: Tensor | None = None) -> float:
    """−(1/N) Σ_i log Σ_l P_i(l) q_i(l)."""
    inst = _instances(q, prior, valid)
    total = 0.0
    for qi, pi in inst:
        total -= math.log(sum(pi[c] * qi[c] for c in range(len(qi))))
    return total / len(inst)


def ref_smooth(p: Tensor, eps: float) -> Tensor:
    """``(p + eps) / (1 + C eps)`` by hand."""
    return (p + eps) / (1 + p.shape[1] * eps)


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """The tensors here are tiny: extra intra-op threads only spin (3x slower on a
    busy machine). Restored afterwards for the rest of the session."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------
# Inputs and the table of losses under test.
# --------------------------------------------------------------------------------------


def make_inputs(
    shape: tuple[int, ...],
    seed: int = 0,
    masked: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Seeded q and P (softmax of random logits), optionally a mixed valid mask."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.softmax(torch.randn(shape, generator=gen, dtype=torch.float64), dim=1)
    prior = torch.softmax(2 * torch.randn(shape, generator=gen, dtype=torch.float64), dim=1)
    valid = None
    if masked:
        mask_shape = shape[:1] + shape[2:]
        valid = torch.rand(mask_shape, generator=gen) < 0.6
        valid.view(-1)[0] = True
        valid.view(-1)[-1] = False
    return q.to(dtype), prior.to(dtype), valid


def one_hot_prior(shape: tuple[int, ...], seed: int = 0) -> tuple[Tensor, Tensor]:
    """A one-hot prior of ``shape`` and its class indices (shape without axis 1)."""
    gen = torch.Generator().manual_seed(seed + 1000)
    labels = torch.randint(shape[1], shape[:1] + shape[2:], generator=gen)
    onehot = torch.nn.functional.one_hot(labels, shape[1]).movedim(-1, 1)
    return onehot.to(torch.float64), labels


def _qr_fe(q: Tensor, p: Tensor, v: Tensor | None = None, **kw: Tensor) -> Tensor:
    return qr_loss(q, p, v, form="free_energy", **kw)


def _qr_kl(q: Tensor, p: Tensor, v: Tensor | None = None, **kw: Tensor) -> Tensor:
    return qr_loss(q, p, v, form="kl", **kw)


# name -> (function, slow reference)
FUNCTIONS: dict[str, tuple[LossFn, Callable[..., float]]] = {
    "qr_free_energy": (_qr_fe, ref_qr_free_energy),
    "qr_kl": (_qr_kl, ref_qr_kl),
    "rq": (rq_loss, ref_rq),
    "em": (em_loss, ref_em),
    "soft_ce": (soft_cross_entropy, ref_soft_ce),
    "hard_ce": (hard_cross_entropy, ref_hard_ce),
    "nll_union": (nll_union, ref_nll_union),
}
#: Losses through the implicit posterior; gradients flow through r in the first three.
DIFFERENTIABLE_R = ["qr_free_energy", "qr_kl", "rq"]
IMPLICIT = [*DIFFERENTIABLE_R, "em"]


def make_module(name: str, eps_prior: float = 0.0, eps_out: float = 0.0) -> LossFn:
    """The module form of ``FUNCTIONS[name]`` with the given smoothing."""
    kw = {"prior_smoothing": eps_prior, "output_smoothing": eps_out}
    match name:
        case "qr_free_energy":
            return QRLoss("free_energy", **kw)
        case "qr_kl":
            return QRLoss("kl", **kw)
        case "rq":
            return RQLoss(**kw)
        case "em":
            return EMLoss(**kw)
        case "soft_ce":
            return SoftCrossEntropyLoss(**kw)
        case "hard_ce":
            return HardCrossEntropyLoss(**kw)
        case "nll_union":
            return NLLUnionLoss(**kw)
    raise AssertionError(name)


# Every callable a user can reach: functions, modules with default smoothing, and
# modules with an online denominator.
ALL_LOSSES: dict[str, Callable[[], LossFn]] = {
    **{f"fn_{n}": (lambda n=n: FUNCTIONS[n][0]) for n in FUNCTIONS},
    **{f"module_{n}": (lambda n=n: make_module(n, 1e-4, 1e-4)) for n in FUNCTIONS},
    "module_qr_kl_momentum": lambda: QRLoss("kl", momentum=0.9),
    "module_qr_fe_momentum": lambda: QRLoss("free_energy", momentum=0.9),
    "module_rq_momentum": lambda: RQLoss(momentum=0.9),
    "module_em_momentum": lambda: EMLoss(momentum=0.9),
}


# --------------------------------------------------------------------------------------
# 1. Values against the slow references.
# --------------------------------------------------------------------------------------


class TestValues:
    @pytest.mark.parametrize("name", list(FUNCTIONS))
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_matches_reference(self, name: str, shape: tuple[int, ...], masked: bool) -> None:
        fn, ref = FUNCTIONS[name]
        q, p, v = make_inputs(shape, seed=1, masked=masked)
        got = fn(q, p, v)
        assert got.shape == ()
        assert got.item() == pytest.approx(ref(q, p, v), **TOL)

    @pytest.mark.parametrize("name", list(FUNCTIONS))
    def test_float32(self, name: str) -> None:
        fn, ref = FUNCTIONS[name]
        q, p, v = make_inputs((2, 3, 4, 5), seed=2, masked=True, dtype=torch.float32)
        got = fn(q, p, v)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(ref(q, p, v), rel=1e-5, abs=1e-6)

    @pytest.mark.parametrize("name", IMPLICIT)
    @pytest.mark.parametrize("shape", SHAPES)
    def test_explicit_q_mean(self, name: str, shape: tuple[int, ...]) -> None:
        fn, ref = FUNCTIONS[name]
        q, p, v = make_inputs(shape, seed=3, masked=True)
        q_hat = torch.tensor([0.1 * (c + 1) for c in range(shape[1])]).double()
        q_hat = q_hat / q_hat.sum()
        got = fn(q, p, v, q_mean=q_hat)
        assert got.item() == pytest.approx(ref(q, p, v, q_hat.tolist()), **TOL)

    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_implicit_posterior(self, shape: tuple[int, ...], masked: bool) -> None:
        q, p, v = make_inputs(shape, seed=4, masked=masked)
        r = implicit_posterior(q, p, valid=v)
        log_r = log_implicit_posterior(q, p, valid=v)
        assert r.shape == q.shape
        torch.testing.assert_close(log_r.exp(), r)
        valid = torch.ones(q.shape[:1] + q.shape[2:], dtype=torch.bool) if v is None else v
        got = r.movedim(1, -1)[valid].tolist()
        expected = ref_posterior(q, p, v)
        assert len(got) == len(expected)
        for got_i, exp_i in zip(got, expected, strict=True):
            assert got_i == pytest.approx(exp_i, **TOL)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_class_mean(self, shape: tuple[int, ...]) -> None:
        q, _, v = make_inputs(shape, seed=5, masked=True)
        assert class_mean(q, v).tolist() == pytest.approx(ref_mean(q, v), **TOL)
        assert class_mean(q).tolist() == pytest.approx(ref_mean(q), **TOL)

    def test_smooth_probs(self) -> None:
        p = torch.tensor([[1.0, 0.0]])
        torch.testing.assert_close(smooth_probs(p, 0.5), torch.tensor([[0.75, 0.25]]))
        q, _, _ = make_inputs((2, 3, 4, 5), seed=6)
        torch.testing.assert_close(smooth_probs(q, 1e-2), ref_smooth(q, 1e-2))
        torch.testing.assert_close(smooth_probs(q, 1e-2).sum(1), torch.ones(2, 4, 5).double())
        assert torch.equal(smooth_probs(q, 0.0), q)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_kl_minus_free_energy_is_mean_log_normaliser(self, shape: tuple[int, ...]) -> None:
        """KL form = free-energy form + (1/N) Σ_i log Σ_k P_i(k) q_i(k) / q̄_k."""
        q, p, v = make_inputs(shape, seed=7, masked=True)
        q_bar = ref_mean(q, v)
        inst = _instances(q, p, v)
        mean_log_z = sum(
            math.log(sum(pi[c] * qi[c] / q_bar[c] for c in range(len(qi)))) for qi, pi in inst
        ) / len(inst)
        diff = _qr_kl(q, p, v) - _qr_fe(q, p, v)
        assert diff.item() == pytest.approx(mean_log_z, **TOL)


# --------------------------------------------------------------------------------------
# 2. Gradients.
# --------------------------------------------------------------------------------------


class TestGradcheck:
    @pytest.mark.parametrize("name", [*DIFFERENTIABLE_R, "soft_ce", "nll_union"])
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 3)])
    def test_gradcheck(self, name: str, shape: tuple[int, ...], masked: bool) -> None:
        fn = FUNCTIONS[name][0]
        _, p, v = make_inputs(shape, seed=8, masked=masked)
        gen = torch.Generator().manual_seed(9)
        logits = torch.randn(shape, generator=gen, dtype=torch.float64)
        logits.requires_grad_(True)

        def f(x: Tensor) -> Tensor:
            return fn(torch.softmax(x, dim=1), p, v)

        assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-6)

    @pytest.mark.parametrize("name", DIFFERENTIABLE_R)
    def test_gradcheck_through_q_mean(self, name: str) -> None:
        """Gradients flow through an explicit ``q_mean`` too."""
        fn = FUNCTIONS[name][0]
        q, p, v = make_inputs((2, 3, 2, 3), seed=10, masked=True)
        q_hat = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)

        def f(x: Tensor, m: Tensor) -> Tensor:
            return fn(torch.softmax(x, dim=1), p, v, q_mean=m)

        logits = q.log().requires_grad_(True)
        assert torch.autograd.gradcheck(f, (logits, q_hat), eps=1e-6, atol=1e-6)


#: LossName -> key of FUNCTIONS
LOSS_NAMES = {
    "qr": "qr_free_energy",
    "qr_kl": "qr_kl",
    "rq": "rq",
    "em": "em",
    "ce_soft": "soft_ce",
    "ce_hard": "hard_ce",
    "nll_union": "nll_union",
}


class TestMakeLoss:
    @pytest.mark.parametrize("name", list(LOSS_NAMES))
    def test_each_name_is_its_loss(self, name: str) -> None:
        module = make_loss(name, prior_smoothing=0.05, output_smoothing=0.002)  # type: ignore[arg-type]
        q, p, v = make_inputs((2, 3, 4, 5), seed=17, masked=True)
        expected = FUNCTIONS[LOSS_NAMES[name]][0](ref_smooth(q, 0.002), ref_smooth(p, 0.05), v)
        torch.testing.assert_close(module(q, p, v), expected)

    @pytest.mark.parametrize("name", ["qr", "qr_kl", "rq", "em"])
    def test_online_options_reach_the_implicit_losses(self, name: str) -> None:
        module = make_loss(name, momentum=0.5, num_classes=3)  # type: ignore[arg-type]
        assert isinstance(module, QRLoss | RQLoss | EMLoss)
        assert module.momentum == 0.5
        assert module.running_mean is not None
        assert module.running_mean.shape == (3,)

    def test_unknown_name_lists_the_names(self) -> None:
        with pytest.raises(ValueError, match="loss must be one of qr, qr_kl, rq, em, ce_soft"):
            make_loss("ce")  # type: ignore[arg-type]


class TestEM:
    """RQ's EM form: r is a fixed target, so the logit gradient is (q - r) / N."""

    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_logit_gradient_is_q_minus_r(self, shape: tuple[int, ...], masked: bool) -> None:
        q, p, v = make_inputs(shape, seed=14, masked=masked)
        logits = q.log().requires_grad_(True)
        em_loss(torch.softmax(logits, dim=1), p, v).backward()
        assert logits.grad is not None
        valid = torch.ones(q.shape[:1] + q.shape[2:], dtype=torch.bool) if v is None else v
        got = logits.grad.movedim(1, -1)
        assert torch.all(got[~valid] == 0)
        n = int(valid.sum())
        rows = zip(
            got[valid].tolist(),
            q.movedim(1, -1)[valid].tolist(),
            ref_posterior(q, p, v),
            strict=True,
        )
        for got_i, qi, ri in rows:
            expected = [(qi[c] - ri[c]) / n for c in range(len(qi))]
            assert got_i == pytest.approx(expected, rel=1e-9, abs=1e-12)

    @pytest.mark.parametrize("shape", SHAPES)
    def test_is_rq_plus_entropy_of_r(self, shape: tuple[int, ...]) -> None:
        """KL(r‖q) = Σ r log r − Σ r log q, so EM's value − RQ's is the mean entropy of r."""
        q, p, v = make_inputs(shape, seed=15, masked=True)
        posts = ref_posterior(q, p, v)
        entropy = -sum(_xlogy(ri[c], ri[c]) for ri in posts for c in range(len(ri))) / len(posts)
        assert (em_loss(q, p, v) - rq_loss(q, p, v)).item() == pytest.approx(entropy, **TOL)

    def test_no_gradient_reaches_q_mean(self) -> None:
        q, p, v = make_inputs((2, 3, 4, 5), seed=16, masked=True)
        q_hat = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
        logits = q.log().requires_grad_(True)
        em_loss(torch.softmax(logits, dim=1), p, v, q_mean=q_hat).backward()
        assert q_hat.grad is None
        assert logits.grad is not None
        assert logits.grad.abs().sum() > 0

    def test_confidently_wrong_pixel_keeps_its_gradient(self) -> None:
        """A class the network has stopped predicting anywhere (q ≈ 1e-6, so q̄ ≈ 1e-6)
        keeps r's support where the prior wants it. There QR's logit gradient vanishes
        with q and EM's does not (the failure seen on the sample city's water)."""
        q = torch.tensor(
            [[1 - 2e-6, 1e-6, 1e-6], [0.6, 1e-6, 0.4 - 1e-6], [0.1, 1e-6, 0.9 - 1e-6]]
        ).double()
        p = torch.tensor([[0.01, 0.98, 0.01], [0.5, 0.0, 0.5], [0.1, 0.0, 0.9]]).double()
        grads = {}
        for name, fn in (("qr", _qr_fe), ("em", em_loss)):
            logits = q.log().requires_grad_(True)
            fn(torch.softmax(logits, dim=1), p).backward()
            assert logits.grad is not None
            grads[name] = logits.grad[0, 1].item()  # push towards the prior's class
        assert abs(grads["qr"]) < 1e-4
        assert grads["em"] < -0.01


# --------------------------------------------------------------------------------------
# 3. RQ with one-hot priors is cross-entropy.
# --------------------------------------------------------------------------------------


class TestOneHotPrior:
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_rq_is_cross_entropy(
        self, shape: tuple[int, ...], masked: bool, dtype: torch.dtype
    ) -> None:
        q, _, v = make_inputs(shape, seed=11, masked=masked, dtype=dtype)
        onehot, labels = one_hot_prior(shape, seed=11)
        onehot = onehot.to(dtype)
        valid = torch.ones(labels.shape, dtype=torch.bool) if v is None else v
        picked = q.gather(1, labels.unsqueeze(1)).squeeze(1)
        expected = -picked.double().log()[valid].mean().item()
        tol = TOL if dtype == torch.float64 else {"rel": 1e-6, "abs": 1e-6}
        assert rq_loss(q, onehot, v).item() == pytest.approx(expected, **tol)
        module = RQLoss(prior_smoothing=0, output_smoothing=0)
        assert module(q, onehot, v).item() == pytest.approx(expected, **tol)
        # ... and so do the other one-hot-equivalent baselines.
        assert hard_cross_entropy(q, onehot, v).item() == pytest.approx(expected, **tol)
        assert nll_union(q, onehot, v).item() == pytest.approx(expected, **tol)
        assert soft_cross_entropy(q, onehot, v).item() == pytest.approx(expected, **tol)

    def test_rq_gradient_is_cross_entropy_gradient(self) -> None:
        q, _, _ = make_inputs((2, 3, 4, 5), seed=12)
        onehot, labels = one_hot_prior((2, 3, 4, 5), seed=12)
        logits = q.log().requires_grad_(True)
        rq_loss(torch.softmax(logits, 1), onehot).backward()
        expected = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, labels), logits)[0]
        assert logits.grad is not None
        torch.testing.assert_close(logits.grad, expected, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# 4. Masked instances change nothing.
# --------------------------------------------------------------------------------------


class TestMasking:
    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    @pytest.mark.parametrize("shape", SHAPES)
    def test_invalid_instances_are_ignored(self, name: str, shape: tuple[int, ...]) -> None:
        q, p, v = make_inputs(shape, seed=13, masked=True)
        assert v is not None
        invalid = ~v
        # Rewrite q and P at invalid instances: q one-hot on class 0, P all zeros
        # (a typical nodata prior), or P one-hot on the last class.
        idx = invalid.unsqueeze(1).expand_as(q)
        q2, p2 = q.clone(), p.clone()
        q_fill = torch.zeros_like(q)
        q_fill[:, 0] = 1.0
        q2[idx] = q_fill[idx]
        p2[idx] = 0.0
        p3 = p.clone()
        p_fill = torch.zeros_like(p)
        p_fill[:, -1] = 1.0
        p3[idx] = p_fill[idx]

        def value_and_grad(qq: Tensor, pp: Tensor) -> tuple[Tensor, Tensor]:
            qq = qq.clone().requires_grad_(True)
            loss = ALL_LOSSES[name]()(qq, pp, v)
            (grad,) = torch.autograd.grad(loss, qq)
            return loss.detach(), grad

        base, grad = value_and_grad(q, p)
        cell = invalid.unsqueeze(1).expand_as(grad)
        assert torch.isfinite(base)
        assert torch.all(grad[cell] == 0)
        assert grad[~cell].abs().sum() > 0
        for qq, pp in [(q2, p2), (q2, p3), (q, p3)]:
            other, other_grad = value_and_grad(qq, pp)
            torch.testing.assert_close(other, base, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(other_grad, grad, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("name", list(FUNCTIONS))
    @pytest.mark.parametrize("shape", SHAPES)
    def test_mask_equals_dropping_instances(self, name: str, shape: tuple[int, ...]) -> None:
        """A (B,) mask on (B, C) input equals the loss on the kept rows alone."""
        fn = FUNCTIONS[name][0]
        q, p, v = make_inputs(shape, seed=14, masked=True)
        assert v is not None
        kept_q = q.movedim(1, -1)[v]
        kept_p = p.movedim(1, -1)[v]
        expected = fn(kept_q, kept_p)
        torch.testing.assert_close(fn(q, p, v), expected, rtol=1e-12, atol=1e-12)

    @pytest.mark.parametrize("name", list(FUNCTIONS))
    def test_all_true_mask_equals_no_mask(self, name: str) -> None:
        fn = FUNCTIONS[name][0]
        q, p, _ = make_inputs((2, 3, 4, 5), seed=15)
        full = torch.ones(2, 4, 5, dtype=torch.bool)
        torch.testing.assert_close(fn(q, p, full), fn(q, p))


# --------------------------------------------------------------------------------------
# 5. Priors (and predictions) with exact zeros.
# --------------------------------------------------------------------------------------


def _zero_prior(shape: tuple[int, ...], seed: int) -> Tensor:
    """A prior with exact zeros: class 0 everywhere impossible, one-hot in batch 0."""
    _, p, _ = make_inputs(shape, seed=seed)
    p = p.clone()
    p[:, 0] = 0.0
    p = p / p.sum(1, keepdim=True)
    onehot, _ = one_hot_prior(shape, seed=seed)
    p[0] = onehot[0]
    return p


class TestZeros:
    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    @pytest.mark.parametrize("shape", SHAPES)
    def test_finite_value_and_gradient(self, name: str, shape: tuple[int, ...]) -> None:
        for dtype, masked in itertools.product([torch.float64, torch.float32], [False, True]):
            q, _, v = make_inputs(shape, seed=16, masked=masked, dtype=dtype)
            for prior in (_zero_prior(shape, 16), one_hot_prior(shape)[0]):
                logits = q.log().requires_grad_(True)
                loss = ALL_LOSSES[name]()(torch.softmax(logits, 1), prior.to(dtype), v)
                loss.backward()
                case = f"{dtype}, masked={masked}"
                assert torch.isfinite(loss), case
                assert logits.grad is not None
                assert torch.isfinite(logits.grad).all(), case

    @pytest.mark.parametrize("name", list(FUNCTIONS))
    @pytest.mark.parametrize("shape", SHAPES)
    def test_zero_predictions_finite(self, name: str, shape: tuple[int, ...]) -> None:
        """q with exact zeros, including a class no instance predicts."""
        fn = FUNCTIONS[name][0]
        _, p, v = make_inputs(shape, seed=17, masked=True)
        q, _ = one_hot_prior(shape, seed=18)
        q[:, -1] = 0.0
        q[:, 0] += 1.0 - q.sum(1)  # last class (if hot) moves to class 0
        q = q.requires_grad_(True)
        loss = fn(q, p, v)
        loss.backward()
        assert torch.isfinite(loss)
        assert q.grad is not None
        assert torch.isfinite(q.grad).all()

    @pytest.mark.parametrize("name", ["rq", "soft_ce", "hard_ce", "nll_union"])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_zero_prior_values(self, name: str, shape: tuple[int, ...]) -> None:
        """Where the true value is finite, it is also correct (0 log 0 = 0)."""
        fn, ref = FUNCTIONS[name]
        q, _, v = make_inputs(shape, seed=19, masked=True)
        p = _zero_prior(shape, 19)
        assert fn(q, p, v).item() == pytest.approx(ref(q, p, v), **TOL)


# --------------------------------------------------------------------------------------
# 6. Agreement with TorchGeo.
# --------------------------------------------------------------------------------------


class TestTorchGeo:
    @pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-6), (torch.float32, 1e-5)])
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_qr_and_rq(self, seed: int, dtype: torch.dtype, atol: float) -> None:
        q, p, _ = make_inputs((3, 5, 6, 7), seed=seed, dtype=dtype)
        ours_qr = qr_loss(q, p, form="free_energy")
        theirs_qr = torchgeo.losses.QRLoss(eps=0)(q, p)
        torch.testing.assert_close(ours_qr, theirs_qr, rtol=0, atol=atol)
        torch.testing.assert_close(
            rq_loss(q, p), torchgeo.losses.RQLoss(eps=0)(q, p), rtol=0, atol=atol
        )

    def test_qr_and_rq_gradients(self) -> None:
        q, p, _ = make_inputs((2, 4, 3, 5), seed=20)
        pairs = [
            (lambda x: qr_loss(x, p), torchgeo.losses.QRLoss(eps=0)),
            (lambda x: rq_loss(x, p), torchgeo.losses.RQLoss(eps=0)),
        ]
        for ours, theirs in pairs:
            logits = q.log().requires_grad_(True)
            (g1,) = torch.autograd.grad(ours(torch.softmax(logits, 1)), logits)
            (g2,) = torch.autograd.grad(theirs(torch.softmax(logits, 1), p), logits)
            torch.testing.assert_close(g1, g2, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------
# 7. Module equals function.
# --------------------------------------------------------------------------------------


class TestModuleEqualsFunction:
    @pytest.mark.parametrize("name", list(FUNCTIONS))
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_no_smoothing(self, name: str, shape: tuple[int, ...], masked: bool) -> None:
        q, p, v = make_inputs(shape, seed=21, masked=masked)
        fn = FUNCTIONS[name][0]
        module = make_module(name)
        torch.testing.assert_close(module(q, p, v), fn(q, p, v), rtol=0, atol=0)

    @pytest.mark.parametrize("name", list(FUNCTIONS))
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_smoothing(self, name: str, shape: tuple[int, ...], masked: bool) -> None:
        """Different eps for P and q, so swapped arguments would show."""
        q, _, v = make_inputs(shape, seed=22, masked=masked)
        p = _zero_prior(shape, 22)
        fn, ref = FUNCTIONS[name]
        module = make_module(name, eps_prior=0.05, eps_out=0.002)
        qs, ps = ref_smooth(q, 0.002), ref_smooth(p, 0.05)
        expected = ref(qs, ps, v)
        assert module(q, p, v).item() == pytest.approx(expected, **TOL)
        torch.testing.assert_close(module(q, p, v), fn(qs, ps, v))

    def test_default_smoothing_is_paper_value(self) -> None:
        q, p, _ = make_inputs((4, 3), seed=23)
        p = _zero_prior((4, 3), 23)
        for name in FUNCTIONS:
            default = make_module(name, 1e-4, 1e-4)
            # Constructed with no smoothing arguments at all:
            ctor = type(default)
            plain = ctor(default.form) if isinstance(default, QRLoss) else ctor()
            torch.testing.assert_close(plain(q, p), default(q, p))
            assert plain(q, p).item() != pytest.approx(
                FUNCTIONS[name][0](q, p).item(), rel=1e-12, abs=0
            )


# --------------------------------------------------------------------------------------
# 8. Online denominator.
# --------------------------------------------------------------------------------------


def _mix(m: float, past: Sequence[float], batch: Sequence[float]) -> Vector:
    return [m * a + (1 - m) * b for a, b in zip(past, batch, strict=True)]


class TestOnlineDenominator:
    M = 0.7

    @pytest.mark.parametrize("name", IMPLICIT)
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("shape", SHAPES)
    def test_running_estimate(self, name: str, shape: tuple[int, ...], masked: bool) -> None:
        ref = FUNCTIONS[name][1]
        module = self._module(name, momentum=self.M)
        batches = [make_inputs(shape, seed=30 + k, masked=masked) for k in range(4)]

        module.train()
        q1, p1, v1 = batches[0]
        est = ref_mean(q1, v1)  # the first training batch initialises the estimate
        assert module(q1, p1, v1).item() == pytest.approx(ref(q1, p1, v1), **TOL)

        q2, p2, v2 = batches[1]
        est = _mix(self.M, est, ref_mean(q2, v2))
        assert module(q2, p2, v2).item() == pytest.approx(ref(q2, p2, v2, est), **TOL)

        # Eval mode uses the estimate but does not update it.
        module.eval()
        q3, p3, v3 = batches[2]
        eval_est = _mix(self.M, est, ref_mean(q3, v3))
        for _ in range(2):
            got = module(q3, p3, v3).item()
            assert got == pytest.approx(ref(q3, p3, v3, eval_est), **TOL)

        module.train()
        q4, p4, v4 = batches[3]
        est = _mix(self.M, est, ref_mean(q4, v4))
        assert module(q4, p4, v4).item() == pytest.approx(ref(q4, p4, v4, est), **TOL)

    @pytest.mark.parametrize("name", IMPLICIT)
    def test_eval_leaves_state_unchanged(self, name: str) -> None:
        ref = FUNCTIONS[name][1]
        module = self._module(name, momentum=self.M)
        q0, p0, v0 = make_inputs((2, 3, 4, 5), seed=39, masked=True)
        q1, p1, v1 = make_inputs((2, 3, 4, 5), seed=40, masked=True)
        module.eval()
        # Before any training: the batch mean, and nothing is remembered ...
        assert module(q0, p0, v0).item() == pytest.approx(ref(q0, p0, v0), **TOL)
        module.train()
        # ... so the first training batch still initialises the estimate.
        assert module(q1, p1, v1).item() == pytest.approx(ref(q1, p1, v1), **TOL)
        state = {k: t.clone() for k, t in module.state_dict().items()}
        assert state  # the running estimate is saved in checkpoints
        module.eval()
        q2, p2, v2 = make_inputs((2, 3, 4, 5), seed=41, masked=True)
        module(q2, p2, v2)
        after = module.state_dict()
        assert after.keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(after[key], value), key

    @pytest.mark.parametrize("name", IMPLICIT)
    @pytest.mark.parametrize("shape", SHAPES)
    def test_gradient_stops_at_past_batches(self, name: str, shape: tuple[int, ...]) -> None:
        fn = FUNCTIONS[name][0]
        module = self._module(name, momentum=self.M)
        q1, p1, v1 = make_inputs(shape, seed=42, masked=True)
        q2, p2, v2 = make_inputs(shape, seed=43, masked=True)
        assert v1 is not None
        assert v2 is not None
        q1 = q1.clone().requires_grad_(True)
        q2 = q2.clone().requires_grad_(True)
        module.train()
        module(q1, p1, v1)
        loss2 = module(q2, p2, v2)
        g_q1, g_q2 = torch.autograd.grad(loss2, (q1, q2), allow_unused=True)
        assert g_q1 is None or torch.all(g_q1 == 0)

        # Same gradient as the function with m * (constant past) + (1 - m) * live mean.
        q2b = q2.detach().clone().requires_grad_(True)
        past = torch.tensor(ref_mean(q1, v1), dtype=torch.float64)
        live = q2b.movedim(1, -1)[v2].mean(0)
        expected = fn(q2b, p2, v2, q_mean=self.M * past + (1 - self.M) * live)
        torch.testing.assert_close(loss2, expected)
        (g_expected,) = torch.autograd.grad(expected, q2b)
        torch.testing.assert_close(g_q2, g_expected, rtol=1e-9, atol=1e-12)

    @pytest.mark.parametrize("name", IMPLICIT)
    def test_momentum_with_smoothing(self, name: str) -> None:
        ref = FUNCTIONS[name][1]
        eps_p, eps_q = 0.01, 0.003
        module = self._module(name, momentum=self.M, eps_prior=eps_p, eps_out=eps_q)
        q1, p1, v1 = make_inputs((2, 3, 4, 5), seed=44, masked=True)
        q2, p2, v2 = make_inputs((2, 3, 4, 5), seed=45, masked=True)
        module(q1, p1, v1)
        q1s, q2s, p2s = (
            ref_smooth(q1, eps_q),
            ref_smooth(q2, eps_q),
            ref_smooth(p2, eps_p),
        )
        est = _mix(self.M, ref_mean(q1s, v1), ref_mean(q2s, v2))
        assert module(q2, p2, v2).item() == pytest.approx(ref(q2s, p2s, v2, est), **TOL)

    @pytest.mark.parametrize("name", IMPLICIT)
    def test_num_classes_preallocates_but_first_batch_initialises(self, name: str) -> None:
        ref = FUNCTIONS[name][1]
        module = self._module(name, momentum=self.M, num_classes=3)
        assert "running_mean" in module.state_dict()
        q1, p1, v1 = make_inputs((6, 3), seed=46, masked=True)
        q2, p2, v2 = make_inputs((6, 3), seed=47, masked=True)
        assert module(q1, p1, v1).item() == pytest.approx(ref(q1, p1, v1), **TOL)
        est = _mix(self.M, ref_mean(q1, v1), ref_mean(q2, v2))
        assert module(q2, p2, v2).item() == pytest.approx(ref(q2, p2, v2, est), **TOL)

    @pytest.mark.parametrize("name", IMPLICIT)
    def test_zero_momentum_is_batch_mean(self, name: str) -> None:
        module = self._module(name, momentum=0.0)
        fn = FUNCTIONS[name][0]
        for seed in (48, 49):
            q, p, v = make_inputs((2, 3, 4, 5), seed=seed, masked=True)
            torch.testing.assert_close(module(q, p, v), fn(q, p, v))

    @staticmethod
    def _module(
        name: str,
        momentum: float,
        eps_prior: float = 0.0,
        eps_out: float = 0.0,
        num_classes: int | None = None,
    ) -> QRLoss | RQLoss | EMLoss:
        kw = {
            "prior_smoothing": eps_prior,
            "output_smoothing": eps_out,
            "momentum": momentum,
            "num_classes": num_classes,
        }
        match name:
            case "qr_free_energy":
                return QRLoss("free_energy", **kw)
            case "qr_kl":
                return QRLoss("kl", **kw)
            case "em":
                return EMLoss(**kw)
        return RQLoss(**kw)


# --------------------------------------------------------------------------------------
# 9. Bad input.
# --------------------------------------------------------------------------------------


NDIM_MESSAGE = r"q must have shape \(B, C\) or \(B, C, H, W\)"
ONE_D_CASES = list(ALL_LOSSES)


class TestBadInput:
    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_shape_mismatch(self, name: str) -> None:
        q, p, _ = make_inputs((2, 3, 4, 5))
        with pytest.raises(ValueError, match="prior must have the same shape as q"):
            ALL_LOSSES[name]()(q, p[:, :, :3])
        with pytest.raises(ValueError, match="prior must have the same shape as q"):
            ALL_LOSSES[name]()(q[:, :, 0, 0], p)

    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_wrong_valid_shape(self, name: str) -> None:
        q, p, _ = make_inputs((2, 3, 4, 5))
        for shape in [(2, 3), (3,), (2, 3, 4, 5), (2, 5, 4)]:
            bad = torch.ones(shape, dtype=torch.bool)
            with pytest.raises(ValueError, match=r"valid must have shape \(2, 4, 5\)"):
                ALL_LOSSES[name]()(q, p, bad)
        q, p, _ = make_inputs((4, 3))
        with pytest.raises(ValueError, match=r"valid must have shape \(4,\)"):
            ALL_LOSSES[name]()(q, p, torch.ones(4, 1, dtype=torch.bool))

    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_non_bool_valid(self, name: str) -> None:
        q, p, _ = make_inputs((4, 3))
        for dtype in [torch.float32, torch.uint8, torch.int64]:
            with pytest.raises(TypeError, match="valid must be a boolean tensor"):
                ALL_LOSSES[name]()(q, p, torch.ones(4, dtype=dtype))

    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_wrong_ndim(self, name: str) -> None:
        for shape in [(2, 3, 4), (1, 2, 3, 4, 5)]:
            x = torch.full(shape, 1.0 / shape[1], dtype=torch.float64)
            with pytest.raises(ValueError, match=NDIM_MESSAGE):
                ALL_LOSSES[name]()(x, x)

    @pytest.mark.parametrize("name", ONE_D_CASES)
    def test_one_dimensional_input(self, name: str) -> None:
        x = torch.full((3,), 1.0 / 3, dtype=torch.float64)
        with pytest.raises(ValueError, match=NDIM_MESSAGE):
            ALL_LOSSES[name]()(x, x)

    def test_bad_form(self) -> None:
        q, p, _ = make_inputs((4, 3))
        with pytest.raises(ValueError, match="form must be 'free_energy' or 'kl'"):
            qr_loss(q, p, form="forward")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="form must be 'free_energy' or 'kl'"):
            QRLoss("rq")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "ctor",
        [QRLoss, RQLoss, SoftCrossEntropyLoss, HardCrossEntropyLoss, NLLUnionLoss],
    )
    @pytest.mark.parametrize("arg", ["prior_smoothing", "output_smoothing"])
    def test_negative_smoothing(self, ctor: type[torch.nn.Module], arg: str) -> None:
        with pytest.raises(ValueError, match="smoothing must be >= 0"):
            ctor(**{arg: -1e-4})

    def test_negative_smoothing_function(self) -> None:
        with pytest.raises(ValueError, match="smoothing must be >= 0"):
            smooth_probs(torch.ones(1, 2) / 2, -0.1)

    @pytest.mark.parametrize("ctor", [QRLoss, RQLoss])
    @pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
    def test_bad_momentum(self, ctor: type[torch.nn.Module], momentum: float) -> None:
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
            ctor(momentum=momentum)


# --------------------------------------------------------------------------------------
# 10. Properties.
# --------------------------------------------------------------------------------------


class TestProperties:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_uniform_prior_posterior(self, shape: tuple[int, ...]) -> None:
        """With P_i uniform, r_i(l) = (q_i(l) / S_l) / Σ_k q_i(k) / S_k."""
        for seed in range(8):
            self._check_uniform_prior(shape, seed)

    @staticmethod
    def _check_uniform_prior(shape: tuple[int, ...], seed: int) -> None:
        q, _, v = make_inputs(shape, seed=50 + seed, masked=seed % 2 == 1)
        uniform = torch.full_like(q, 1.0 / shape[1])
        inst = _instances(q, q, v)
        s = [sum(qi[c] for qi, _ in inst) for c in range(shape[1])]
        expected = []
        for qi, _ in inst:
            z = sum(qi[k] / s[k] for k in range(shape[1]))
            expected.append([qi[c] / s[c] / z for c in range(shape[1])])
        r = implicit_posterior(q, uniform, valid=v)
        valid = torch.ones(q.shape[:1] + q.shape[2:], dtype=torch.bool) if v is None else v
        got = r.movedim(1, -1)[valid].tolist()
        for got_i, exp_i in zip(got, expected, strict=True):
            assert got_i == pytest.approx(exp_i, **TOL)
        assert _qr_kl(q, uniform, v).item() >= 0
        assert rq_loss(q, uniform, v).item() >= 0

    @pytest.mark.parametrize("shape", SHAPES)
    def test_kl_losses_nonnegative(self, shape: tuple[int, ...]) -> None:
        for seed in range(8):
            q, p, v = make_inputs(shape, seed=60 + seed, masked=seed % 2 == 1)
            assert _qr_kl(q, p, v).item() >= 0, seed
            assert rq_loss(q, p, v).item() >= 0, seed
            r = implicit_posterior(q, p, valid=v)
            torch.testing.assert_close(r.sum(1), torch.ones_like(r.sum(1)))

    @pytest.mark.parametrize("shape", SHAPES)
    def test_prior_equal_to_class_mean_is_a_fixed_point(self, shape: tuple[int, ...]) -> None:
        """With P_i = q̄ for every i, r_i = q_i, so both KL losses vanish."""
        q, _, v = make_inputs(shape, seed=71, masked=True)
        q_bar = torch.tensor(ref_mean(q, v), dtype=torch.float64)
        view = (1, -1) + (1,) * (q.ndim - 2)
        prior = q_bar.reshape(view).expand_as(q)
        torch.testing.assert_close(implicit_posterior(q, prior, valid=v), q)
        assert _qr_kl(q, prior, v).item() == pytest.approx(0.0, abs=1e-12)
        assert rq_loss(q, prior, v).item() == pytest.approx(0.0, abs=1e-12)

    def test_no_valid_instance_has_zero_gradient(self) -> None:
        """No valid instance: loss 0 (QR free energy: Σ ū log ū, ū uniform), grad 0."""
        q, p, _ = make_inputs((2, 3, 4, 5), seed=70)
        logits = q.log().requires_grad_(True)
        none = torch.zeros(2, 4, 5, dtype=torch.bool)
        for name, (fn, _) in FUNCTIONS.items():
            loss = fn(torch.softmax(logits, 1), p, none)
            if name != "qr_free_energy":  # its entropy term uses a uniform q̄
                assert loss.item() == 0.0, name
            (g,) = torch.autograd.grad(loss, logits)
            assert torch.all(g == 0), name


class TestEdgeCases:
    """Behaviour where no instance is valid, or invalid ones hold NaN."""

    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_nothing_valid_gives_zero_with_a_graph(self, name: str) -> None:
        logits = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
        p = torch.softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), dim=1)
        none = torch.zeros(2, 4, 5, dtype=torch.bool)
        loss = ALL_LOSSES[name]()(torch.softmax(logits, dim=1), p, none)
        assert loss.item() == 0.0
        loss.backward()
        assert logits.grad is not None
        assert (logits.grad == 0).all()

    @pytest.mark.parametrize("name", list(ALL_LOSSES))
    def test_nan_at_invalid_pixels_does_not_leak(self, name: str) -> None:
        q, p, valid = make_inputs((2, 3, 4, 5), masked=True)
        assert valid is not None
        expected = ALL_LOSSES[name]()(q, p, valid)
        # an undefined prior where the mask is off
        p_nan = torch.where(valid[:, None], p, torch.full_like(p, float("nan")))
        torch.testing.assert_close(ALL_LOSSES[name]()(q, p_nan, valid), expected)

    @pytest.mark.parametrize("cls", [QRLoss, RQLoss])
    def test_all_invalid_batch_leaves_running_estimate(self, cls: type) -> None:
        loss = cls(momentum=0.5, prior_smoothing=0, output_smoothing=0).train()
        q, p, _ = make_inputs((2, 3, 4, 5))
        none = torch.zeros(2, 4, 5, dtype=torch.bool)
        loss(q, p, none)
        assert int(loss.num_updates) == 0  # a batch with nothing valid is not "the first"
        loss(q, p)
        first = loss.running_mean.clone()
        loss(q.flip(0), p, none)
        torch.testing.assert_close(loss.running_mean, first)
        assert int(loss.num_updates) == 1
