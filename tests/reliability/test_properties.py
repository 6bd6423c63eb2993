"""Property tests (hypothesis) of the losses and the prior transforms.

For every valid input, including exact zeros in q and the prior and one-class priors:
finite values and gradients, outputs on the simplex, and equivariance to a permutation of
the classes (relabelling the classes relabels the output and leaves a loss unchanged).
Derandomised and without an example database, so a run is repeatable.
"""

from __future__ import annotations

import typing

import hypothesis.extra.numpy as hnp
import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from torchgeo_lsr.losses import LossName, implicit_posterior, make_loss
from torchgeo_lsr.priors.blur import blur_probs
from torchgeo_lsr.priors.simplex import to_simplex

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
LOSSES = typing.get_args(LossName)


@st.composite
def prob_maps(draw: st.DrawFn, zeros: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, prior) of shape (B, C, H, W) on the simplex, with exact zeros and one-hot pixels."""
    b, c = draw(st.integers(1, 2)), draw(st.integers(2, 5))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    shape = (2, b, c, h, w)
    mass = draw(
        hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1e-12, 0.3, 1.0, 7.0]))
    )
    mass[:, :, 0] += 1e-3 if not zeros else 0.0
    total = mass.sum(axis=2, keepdims=True)
    onehot = np.zeros_like(mass)
    onehot[:, :, 0] = 1.0  # an all-zero pixel becomes a one-class one
    probs = np.where(total > 0, mass / np.where(total > 0, total, 1), onehot)
    q, prior = torch.from_numpy(probs).float()
    return q, prior


@SETTINGS
@given(maps=prob_maps(), name=st.sampled_from(LOSSES))
def test_losses_finite_with_finite_gradients(
    maps: tuple[torch.Tensor, torch.Tensor], name: str
) -> None:
    q, prior = maps
    q = q.clone().requires_grad_(True)
    loss = make_loss(name)(q, prior)  # type: ignore[arg-type]
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert q.grad is not None
    assert torch.isfinite(q.grad).all()


@SETTINGS
@given(maps=prob_maps(), name=st.sampled_from(LOSSES), seed=st.integers(0, 1000))
def test_losses_invariant_to_a_class_permutation(
    maps: tuple[torch.Tensor, torch.Tensor], name: str, seed: int
) -> None:
    q, prior = maps
    if name == "ce_hard":  # the prior's argmax must be unique for its label to be defined
        top = prior.topk(2, dim=1).values
        assume(bool((top[:, 0] > top[:, 1]).all()))
    perm = torch.randperm(q.shape[1], generator=torch.Generator().manual_seed(seed))
    loss = make_loss(name)  # type: ignore[arg-type]
    a, b = loss(q, prior), loss(q[:, perm], prior[:, perm])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(maps=prob_maps(), seed=st.integers(0, 1000))
def test_posterior_on_the_simplex_and_equivariant(
    maps: tuple[torch.Tensor, torch.Tensor], seed: int
) -> None:
    q, prior = maps
    r = implicit_posterior(q, prior)
    assert torch.isfinite(r).all()
    assert (r >= 0).all()
    torch.testing.assert_close(r.sum(dim=1), torch.ones_like(r[:, 0]), rtol=0, atol=1e-5)
    perm = torch.randperm(q.shape[1], generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(implicit_posterior(q[:, perm], prior[:, perm]), r[:, perm])


@SETTINGS
@given(maps=prob_maps(), eps=st.sampled_from([0.0, 1e-4, 0.1]), seed=st.integers(0, 1000))
def test_to_simplex_on_the_simplex_and_equivariant(
    maps: tuple[torch.Tensor, torch.Tensor], eps: float, seed: int
) -> None:
    _, mass = maps
    mass = mass * 3.0
    out = to_simplex(mass, eps=eps)
    p = out[0]
    assert torch.isfinite(p).all()
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(dim=1), torch.ones_like(p[:, 0]), rtol=0, atol=1e-5)
    perm = torch.randperm(mass.shape[1], generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(to_simplex(mass[:, perm], eps=eps)[0], p[:, perm])


@SETTINGS
@given(maps=prob_maps(), sigma=st.sampled_from([0.5, 1.0, 2.0]), seed=st.integers(0, 1000))
def test_blur_keeps_the_simplex_and_commutes_with_a_permutation(
    maps: tuple[torch.Tensor, torch.Tensor], sigma: float, seed: int
) -> None:
    _, prior = maps
    blurred = blur_probs(prior.double(), sigma)
    assert torch.isfinite(blurred).all()
    assert (blurred >= -1e-12).all()
    torch.testing.assert_close(
        blurred.sum(dim=1), torch.ones_like(blurred[:, 0]), rtol=0, atol=1e-6
    )
    perm = torch.randperm(prior.shape[1], generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(blur_probs(prior[:, perm].double(), sigma), blurred[:, perm])
