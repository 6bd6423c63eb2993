"""Tests of the weak-supervision adapters (synthetic data, seconds)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from torchgeo_lsr.adapters import (
    ClusteringLoss,
    RankingLoss,
    SelfSimilarityPrior,
    apply_assignment,
    assign_clusters,
    box_mean,
    cluster_image,
    clustering_criterion,
    coarse_label_prior,
    fine_to_coarse,
    fit_on_prior,
    fit_on_rankings,
    fit_single_image,
    fit_teacher,
    negative_label_prior,
    negative_labels,
    pair_order_prior,
    partial_label_prior,
    predict_probs,
    prior_from_painting,
    ranking_loss,
    ranking_marginals,
    ranking_posterior,
    ranking_prior,
    self_similarity_prior,
)

# ---------------------------------------------------------------- partial / negative labels


@pytest.mark.parametrize("k", [0, 1, 3, 5, 9])
def test_negative_label_prior(k: int) -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (500,), generator=g)
    prior = negative_label_prior(labels, k, 10, generator=g)
    assert prior.shape == (500, 10)
    torch.testing.assert_close(prior.sum(1), torch.ones(500))
    assert bool((prior[torch.arange(500), labels] == 1 / (10 - k)).all())
    assert bool(((prior == 0).sum(1) == k).all())
    nonzero = prior[prior > 0]
    torch.testing.assert_close(nonzero, torch.full_like(nonzero, 1 / (10 - k)))
    if k == 9:
        assert torch.equal(prior.argmax(1), labels)


def test_negative_labels_exclude_truth_and_are_uniform() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.full((20000,), 3)
    neg = negative_labels(labels, 2, 10, generator=g)
    assert bool((neg != 3).all())
    assert bool((neg[:, 0] != neg[:, 1]).all())
    freq = torch.bincount(neg.flatten(), minlength=10).float() / 20000
    assert freq[3] == 0
    others = torch.cat([freq[:3], freq[4:]])
    torch.testing.assert_close(others, torch.full((9,), 2 / 9), atol=0.01, rtol=0)


def test_negative_label_prior_errors() -> None:
    with pytest.raises(ValueError, match="k must be"):
        negative_label_prior(torch.tensor([0]), 10, 10)
    with pytest.raises(ValueError, match="labels must be"):
        negative_label_prior(torch.tensor([10]), 1, 10)


def test_partial_label_prior_sets_and_matrix_agree() -> None:
    sets = [{0, 2}, [1], (0, 1, 2, 3)]
    prior = partial_label_prior(sets, num_classes=4)
    expected = torch.tensor(
        [[0.5, 0, 0.5, 0], [0, 1.0, 0, 0], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float32
    )
    torch.testing.assert_close(prior, expected)
    torch.testing.assert_close(partial_label_prior(expected > 0), expected)


def test_partial_label_prior_errors() -> None:
    with pytest.raises(ValueError, match="empty candidate set"):
        partial_label_prior([{0}, set()], num_classes=3)
    with pytest.raises(ValueError, match="empty candidate set"):
        partial_label_prior(torch.tensor([[True, False], [False, False]]))
    with pytest.raises(ValueError, match="outside"):
        partial_label_prior([{3}], num_classes=3)
    with pytest.raises(ValueError, match="num_classes is required"):
        partial_label_prior([{0}])


# ---------------------------------------------------------------- rankings


def test_ranking_prior_counts() -> None:
    ties = ranking_prior(10)
    strict = ranking_prior(10, strict=True)
    assert int((ties > 0).sum()) == 55
    assert int((strict > 0).sum()) == 45
    torch.testing.assert_close(ties[ties > 0], torch.full((55,), 1 / 55))
    torch.testing.assert_close(strict[strict > 0], torch.full((45,), 1 / 45))
    for l1, l2 in itertools.product(range(10), repeat=2):
        assert (ties[l1, l2] > 0) == (l1 >= l2)
        assert (strict[l1, l2] > 0) == (l1 > l2)


def test_pair_order_prior() -> None:
    p = pair_order_prior(torch.tensor([1, -1, 0]), 4, strict=True)
    torch.testing.assert_close(p[0], ranking_prior(4, strict=True))
    torch.testing.assert_close(p[1], ranking_prior(4, strict=True).T)
    torch.testing.assert_close(p[2], torch.eye(4) / 4)
    with pytest.raises(ValueError, match="only"):
        pair_order_prior(torch.tensor([2]), 4)


def _brute_force_eq5(
    q1: torch.Tensor, q2: torch.Tensor, prior: torch.Tensor, shared: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 5 by explicit loops: joint r (B, C, C) and its two marginals."""
    b, c = q1.shape
    z1 = [0.0] * c
    z2 = [0.0] * c
    for lab in range(c):
        for i in range(b):
            if shared:
                z1[lab] += float(q1[i, lab]) + float(q2[i, lab])
            else:
                z1[lab] += float(q1[i, lab])
                z2[lab] += float(q2[i, lab])
    if shared:
        z2 = z1
    r = torch.zeros(b, c, c, dtype=torch.float64)
    for i in range(b):
        total = 0.0
        for l1 in range(c):
            for l2 in range(c):
                v = float(prior[i, l1, l2]) * float(q1[i, l1]) * float(q2[i, l2])
                v /= z1[l1] * z2[l2]
                r[i, l1, l2] = v
                total += v
        r[i] /= total
    m1 = torch.zeros(b, c, dtype=torch.float64)
    m2 = torch.zeros(b, c, dtype=torch.float64)
    for i in range(b):
        for l1 in range(c):
            for l2 in range(c):
                m1[i, l1] += r[i, l1, l2]
                m2[i, l2] += r[i, l1, l2]
    return r, m1, m2


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("strict", [True, False])
def test_ranking_posterior_matches_brute_force(shared: bool, strict: bool) -> None:
    g = torch.Generator().manual_seed(2)
    b, c = 5, 4
    q1 = torch.softmax(torch.randn(b, c, generator=g, dtype=torch.float64) * 2, 1)
    q2 = torch.softmax(torch.randn(b, c, generator=g, dtype=torch.float64) * 2, 1)
    order = torch.tensor([1, -1, 1, 0, -1])
    prior = pair_order_prior(order, c, strict).double()
    r, m1, m2 = _brute_force_eq5(q1, q2, prior, shared)
    torch.testing.assert_close(ranking_posterior(q1, q2, prior, shared), r)
    r1, r2 = ranking_marginals(q1, q2, prior, shared)
    torch.testing.assert_close(r1, m1)
    torch.testing.assert_close(r2, m2)
    # No mass where the order is violated.
    assert float(r[0][torch.ones(c, c).triu(1 if not strict else 0) > 0].sum()) < 1e-12

    # Loss values: mean over the 2B members of KL(r_m || q_m) and KL(q_m || r_m).
    def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (p * (p.clamp_min(1e-300).log() - q.log())).sum(1)

    rq = 0.5 * (kl(m1, q1).mean() + kl(m2, q2).mean())
    qr = 0.5 * (kl(q1, m1).mean() + kl(q2, m2).mean())
    torch.testing.assert_close(ranking_loss(q1, q2, prior, "rq", shared), rq)
    if not strict:  # strict priors put zeros into r where q > 0: KL(q||r) is infinite there
        torch.testing.assert_close(ranking_loss(q1, q2, prior, "qr", shared), qr)


def test_ranking_loss_gradcheck() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    prior = pair_order_prior(torch.tensor([1, -1, 1, 0]), 3).double()
    prior = (prior + 0.01) / (1 + 9 * 0.01)

    for form in ("rq", "qr"):

        def f(z: torch.Tensor, form: str = form) -> torch.Tensor:
            q = torch.softmax(z, dim=2)
            return ranking_loss(q[0], q[1], prior, form)  # type: ignore[arg-type]

        assert torch.autograd.gradcheck(f, (logits,))


def test_ranking_module_equals_function() -> None:
    g = torch.Generator().manual_seed(4)
    q1 = torch.softmax(torch.randn(6, 5, generator=g), 1)
    q2 = torch.softmax(torch.randn(6, 5, generator=g), 1)
    order = torch.tensor([1, 1, -1, 0, -1, 1])
    for form in ("rq", "qr"):
        module = RankingLoss(form, prior_smoothing=0, output_smoothing=0)  # type: ignore[arg-type]
        expected = ranking_loss(q1, q2, pair_order_prior(order, 5), form)  # type: ignore[arg-type]
        torch.testing.assert_close(module(q1, q2, order), expected)
        assert torch.isfinite(RankingLoss(form)(q1, q2, order))  # type: ignore[arg-type]


def test_fit_on_rankings_learns_ordered_classes() -> None:
    # Three-way orders (ties reported as 0, so +1 means strictly greater) identify the
    # classes in order: no relabelling is needed.
    g = torch.Generator().manual_seed(5)
    c, n = 4, 400
    y = torch.randint(0, c, (n,), generator=g)
    x = nn.functional.one_hot(y, c).float() * 3 + 0.3 * torch.randn(n, c, generator=g)
    pairs = torch.randint(0, n, (800, 2), generator=g)
    order = torch.sign(y[pairs[:, 0]] - y[pairs[:, 1]])
    torch.manual_seed(0)
    model = nn.Linear(c, c)
    hist = fit_on_rankings(
        model,
        x,
        pairs,
        order,
        "rq",
        num_classes=c,
        strict=True,
        epochs=40,
        batch_size=100,
        lr=0.05,
        generator=g,
    )
    assert hist.loss[-1] < hist.loss[0]
    acc = (predict_probs(model, x).argmax(1) == y).float().mean()
    assert acc > 0.9


# ---------------------------------------------------------------- coarse labels


def test_coarse_prior_zero_outside_coarse_class() -> None:
    hierarchy = [[0, 3], [1, 2, 4], [5]]
    coarse = torch.tensor([0, 1, 2, 1])
    prior = coarse_label_prior(coarse, hierarchy)
    parent = fine_to_coarse(hierarchy)
    assert torch.equal(parent, torch.tensor([0, 1, 1, 0, 1, 2]))
    torch.testing.assert_close(prior.sum(1), torch.ones(4))
    inside = parent[None, :] == coarse[:, None]
    assert bool((prior[~inside] == 0).all())
    torch.testing.assert_close(prior[0], torch.tensor([0.5, 0, 0, 0.5, 0, 0]))
    # A parent tensor gives the same prior as the list of groups.
    torch.testing.assert_close(coarse_label_prior(coarse, parent), prior)


def test_coarse_prior_teacher_by_hand() -> None:
    hierarchy = [[0, 1], [2, 3]]
    coarse = torch.tensor([0, 1, 0])
    t = torch.tensor([[0.5, 0.1, 0.3, 0.1], [0.2, 0.2, 0.2, 0.4], [0.1, 0.6, 0.1, 0.2]])
    prior = coarse_label_prior(coarse, hierarchy, teacher=t)
    mean = [
        (0.5 + 0.2 + 0.1) / 3,
        (0.1 + 0.2 + 0.6) / 3,
        (0.3 + 0.2 + 0.1) / 3,
        (0.1 + 0.4 + 0.2) / 3,
    ]
    rows = []
    for i, c in enumerate(coarse.tolist()):
        w = [(t[i, f].item() / mean[f]) if f in hierarchy[c] else 0.0 for f in range(4)]
        rows.append([v / sum(w) for v in w])
    torch.testing.assert_close(prior, torch.tensor(rows))
    # A teacher that rules out a whole coarse class falls back to uniform there.
    t0 = t.clone()
    t0[1, 2:] = 0
    torch.testing.assert_close(
        coarse_label_prior(coarse, hierarchy, t0)[1], torch.tensor([0, 0, 0.5, 0.5])
    )


def test_coarse_prior_errors() -> None:
    with pytest.raises(ValueError, match="exactly once"):
        coarse_label_prior(torch.tensor([0]), [[0, 1], [1]])
    with pytest.raises(ValueError, match="teacher must have shape"):
        coarse_label_prior(torch.tensor([0]), [[0], [1]], teacher=torch.ones(2, 2))


def test_fit_teacher_then_coarse_prior_sharpens() -> None:
    g = torch.Generator().manual_seed(6)
    centres = torch.tensor([[0.0, 0], [4, 0], [0, 4], [4, 4]])
    y = torch.randint(0, 4, (300,), generator=g)
    x = centres[y] + 0.5 * torch.randn(300, 2, generator=g)
    teacher, _ = fit_teacher(x[:40], y[:40], 4, epochs=100, batch_size=20, lr=0.1, generator=g)
    hierarchy = [[0, 1], [2, 3]]
    coarse = fine_to_coarse(hierarchy)[y]
    plain = coarse_label_prior(coarse, hierarchy)
    sharp = coarse_label_prior(coarse, hierarchy, teacher=predict_probs(teacher, x))
    idx = torch.arange(300)
    assert sharp[idx, y].mean() > plain[idx, y].mean() + 0.3
    assert bool((sharp[plain == 0] == 0).all())


# ---------------------------------------------------------------- clustering


def test_clustering_criterion_by_hand() -> None:
    g = torch.Generator().manual_seed(7)
    q = torch.softmax(torch.randn(6, 3, generator=g, dtype=torch.float64), 1)
    arr = q.numpy()
    mean_entropy = np.mean([-sum(p * math.log(p) for p in row) for row in arr])
    bar = arr.mean(0)
    expected = mean_entropy + sum(p * math.log(p) for p in bar)
    assert clustering_criterion(q).item() == pytest.approx(expected, abs=1e-12)
    assert ClusteringLoss()(q).item() == pytest.approx(expected, abs=1e-12)
    # Valid mask: the same formula over the valid rows only.
    valid = torch.tensor([True, True, False, True, False, True])
    assert clustering_criterion(q, valid).item() == pytest.approx(
        clustering_criterion(q[valid]).item(), abs=1e-12
    )
    # Image shape: every pixel is an instance.
    img = q.T.reshape(1, 3, 2, 3)
    assert clustering_criterion(img).item() == pytest.approx(expected, abs=1e-12)
    # Confident balanced clusters reach -log C; one shared cluster reaches 0.
    assert clustering_criterion(torch.eye(3)).item() == pytest.approx(-math.log(3))
    assert clustering_criterion(torch.tensor([[1.0, 0, 0]] * 4)).item() == pytest.approx(0)


def _slow_box_mean(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    _, _, h, w = x.shape
    out = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            r0, r1 = max(0, i - (kh - 1) // 2), min(h - 1, i + kh // 2)
            c0, c1 = max(0, j - (kw - 1) // 2), min(w - 1, j + kw // 2)
            out[:, :, i, j] = x[:, :, r0 : r1 + 1, c0 : c1 + 1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("size", [1, 3, (2, 5), 4, 50])
def test_box_mean_against_loops(size: int | tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(8)
    x = torch.rand(2, 3, 7, 9, generator=g, dtype=torch.float64)
    kh, kw = (size, size) if isinstance(size, int) else size
    torch.testing.assert_close(
        box_mean(x, size), torch.from_numpy(_slow_box_mean(x.numpy(), kh, kw))
    )


def test_self_similarity_prior_against_loops() -> None:
    g = torch.Generator().manual_seed(9)
    q = torch.softmax(torch.randn(1, 3, 8, 10, generator=g, dtype=torch.float64) * 3, 1)
    eps = 1e-3
    small = _slow_box_mean(q.numpy(), 5, 5)
    large = _slow_box_mean(q.numpy(), 6, 6)
    expected = np.zeros_like(small)
    for i in range(8):
        for j in range(10):
            ratio = [small[0, c, i, j] / (large[0, c, i, j] + eps) for c in range(3)]
            for c in range(3):
                expected[0, c, i, j] = ratio[c] / sum(ratio)
    prior = self_similarity_prior(q, 5, 6, eps)
    torch.testing.assert_close(prior, torch.from_numpy(expected))
    torch.testing.assert_close(SelfSimilarityPrior(5, 6, eps)(q), prior)


def test_assign_clusters_constructed_case() -> None:
    # 12 clusters on a 3 x 4 grid of 2 x 2 blocks; cluster k's block is at (k // 4, k % 4).
    ids = torch.arange(12).reshape(3, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)
    # Votes: clusters 0-2 -> class 1; 3 -> tie between 0 and 2 (smallest wins: 0);
    # 4, 5 -> 3; 6 -> 2 (2 votes vs 1); 7 -> 0; clusters 8-11 get no point.
    points, labels = [], []

    def add(cluster: int, cls: int) -> None:
        points.append((2 * (cluster // 4), 2 * (cluster % 4) + len(points) % 2))
        labels.append(cls)

    for k in (0, 1, 2):
        add(k, 1)
    add(0, 1)
    add(3, 2)
    add(3, 0)
    add(4, 3)
    add(5, 3)
    add(6, 2)
    add(6, 2)
    add(6, 0)
    add(7, 0)
    # Overall counts: class 1: 4, class 0: 3, class 2: 3, class 3: 2 -> default class 1.
    pts = torch.tensor(points)
    lab = torch.tensor(labels)
    mapping = assign_clusters(ids, pts, lab, num_classes=4)
    expected = torch.tensor([1, 1, 1, 0, 3, 3, 2, 0, 1, 1, 1, 1])
    assert torch.equal(mapping, expected)
    # Probabilities give the same answer (argmax), and flat ids work with flat indices.
    probs = nn.functional.one_hot(ids, 12).permute(2, 0, 1).float() * 0.9 + 0.1 / 12
    assert torch.equal(assign_clusters(probs, pts, lab, 4), expected)
    flat = ids.flatten()
    flat_pts = pts[:, 0] * ids.shape[1] + pts[:, 1]
    assert torch.equal(assign_clusters(flat, flat_pts, lab, 4, num_clusters=12), expected)
    # Mapping cluster probabilities to classes.
    cls = apply_assignment(probs[None], mapping, 4)
    torch.testing.assert_close(cls.sum(1), torch.ones(1, 6, 8))
    assert torch.equal(cls[0].argmax(0), expected[ids])


def _two_region_image(h: int = 24, w: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy two-colour image; class 1 right of a slanted boundary (about half the pixels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    truth = (xx + (yy - h / 2) / 3 >= w / 2).astype(np.int64)
    img = np.where(truth[..., None] == 1, [200, 60, 40], [40, 120, 200]).astype(np.float64)
    img += rng.normal(0, 25, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


def test_prior_from_painting() -> None:
    paint = np.zeros((2, 3, 3), dtype=np.uint8)
    paint[0, 0] = (255, 0, 0)
    paint[1, 2] = (0, 255, 0)
    prior = prior_from_painting(paint, {(255, 0, 0): 0, (0, 255, 0): 2}, confidence=0.8)
    assert prior.shape == (3, 2, 3)
    torch.testing.assert_close(prior.sum(0), torch.ones(2, 3))
    torch.testing.assert_close(prior[:, 0, 0], torch.tensor([0.8, 0.1, 0.1]))
    torch.testing.assert_close(prior[:, 1, 2], torch.tensor([0.1, 0.1, 0.8]))
    torch.testing.assert_close(prior[:, 0, 1], torch.full((3,), 1 / 3))


@pytest.mark.parametrize("loss", ["qr", "rq"])
def test_single_image_recovers_painted_truth(loss: str) -> None:
    img, truth = _two_region_image()
    # Rough paint: one small blob per class, far from the boundary.
    paint = np.zeros_like(img)
    paint[9:15, 18:22] = (255, 255, 0)
    paint[9:15, 2:6] = (0, 0, 255)
    res = fit_single_image(
        img,
        paint,
        colour_table={(0, 0, 255): 0, (255, 255, 0): 1},
        loss=loss,  # type: ignore[arg-type]
        steps=150,
        lr=1e-2,
        num_filters=16,
        num_layers=3,
    )
    agreement = (res.q.argmax(0).numpy() == truth).mean()
    assert agreement > 0.95
    assert (res.r.argmax(0).numpy() == truth).mean() > 0.95
    # Uniform prior off the paint: the fit is more than the paint itself.
    assert (res.prior.argmax(0).numpy() == truth).mean() < 0.8


def test_single_image_array_prior_and_pil() -> None:
    from PIL import Image

    img, truth = _two_region_image(seed=1)
    prior = torch.full((2, 24, 24), 0.5)
    prior[:, 9:15, 2:6] = torch.tensor([0.95, 0.05])[:, None, None]
    prior[:, 9:15, 18:22] = torch.tensor([0.05, 0.95])[:, None, None]
    res = fit_single_image(
        Image.fromarray(img), prior.numpy(), steps=150, num_filters=16, num_layers=3
    )
    assert (res.q.argmax(0).numpy() == truth).mean() > 0.95
    with pytest.raises(ValueError, match="sum to 1"):
        fit_single_image(img, np.ones((2, 24, 24)), steps=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_image_then_assign(seed: int) -> None:
    """Every seed separates the two regions (criterion (7) reaches about -log 2)."""
    img, truth = _two_region_image(seed=2)
    res = cluster_image(
        img, 2, warmup_steps=60, rounds=2, steps_per_round=30, small=3, large=12, seed=seed
    )
    assert res.q.shape == (2, 24, 24)
    assert res.loss[59] < -0.65  # warm-up: mean H(q) - H(mean q) near its minimum -log 2
    pts = torch.tensor([[12, 20], [5, 22], [20, 21], [12, 3], [3, 2], [21, 5]])
    lab = torch.tensor([1, 1, 1, 0, 0, 0])
    mapping = assign_clusters(res.q, pts, lab, 2)
    pred = mapping[res.q.argmax(0)].numpy()
    assert (pred == truth).mean() > 0.9


# ---------------------------------------------------------------- training helper


@pytest.mark.parametrize("loss", ["rq", "qr", "qr_kl", "ce_soft", "nll_union", "ce_hard"])
def test_fit_on_prior_reduces_loss(loss: str) -> None:
    g = torch.Generator().manual_seed(10)
    centres = torch.tensor([[0.0, 0], [3, 0], [0, 3], [3, 3]])
    y = torch.randint(0, 4, (400,), generator=g)
    x = centres[y] + 0.4 * torch.randn(400, 2, generator=g)
    prior = negative_label_prior(y, 2, 4, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
    seen: list[int] = []
    hist = fit_on_prior(
        model,
        x,
        prior,
        loss,
        epochs=30,
        batch_size=100,
        lr=0.02,
        generator=g,  # type: ignore[arg-type]
        on_epoch_end=lambda e, m: seen.append(e) or {"e": float(e)},
    )
    assert len(hist.loss) == 30
    assert seen == list(range(30))
    assert hist.metrics[-1] == {"e": 29.0}
    assert hist.loss[-1] < hist.loss[0]
    if loss in ("rq", "nll_union", "qr_kl"):  # these disambiguate the 2 candidates
        assert (predict_probs(model, x).argmax(1) == y).float().mean() > 0.9


def test_fit_on_prior_errors() -> None:
    with pytest.raises(ValueError, match="prior must have shape"):
        fit_on_prior(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="loss must be"):
        fit_on_prior(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4, 2), "bad")  # type: ignore[arg-type]
