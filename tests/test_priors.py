"""Tests of prior construction: simplex, blur, co-occurrence, fusion."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch.autograd import gradcheck

from torchgeo_lsr.classes import reference_cooccurrence
from torchgeo_lsr.priors import (
    ENVIROATLAS5_FUSION,
    AuxiliaryFusion,
    BlurProbs,
    CooccurrenceRemap,
    ToSimplex,
    blur_probs,
    dilate_mask,
    estimate_cooccurrence,
    fuse_auxiliary,
    one_hot,
    remap,
    to_simplex,
)

# Documented max abs error of method="fast" vs "exact" at sigma 31 (blur.py docstring).
FAST_ERROR_DEFAULT_KERNEL = 5e-3
FAST_ERROR_KERNEL_101 = 1e-2


def nlcd_like(n: int, classes: int = 6, block: int = 30, seed: int = 0) -> torch.Tensor:
    """NLCD-like index map: 30 px blocks (30 m at 1 m), offset from the image origin."""
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, classes, (n // block + 2, n // block + 2), generator=g)
    up = cells.repeat_interleave(block, 0).repeat_interleave(block, 1)
    return up[7 : 7 + n, 10 : 10 + n]


def scipy_blur(x: np.ndarray, sigma: float, ksize: int, mode: str, cval: float = 0.0) -> np.ndarray:
    truncate = (ksize // 2) / sigma
    return ndimage.gaussian_filter(x, sigma, mode=mode, truncate=truncate, cval=cval)


# --- simplex ---------------------------------------------------------------------------


def test_to_simplex_values_and_nodata() -> None:
    p = torch.tensor([[[3.0, 0.0, 1.0, float("nan")]], [[1.0, 0.0, 1.0, 1.0]]])  # (2, 1, 4)
    nodata = torch.tensor([[False, False, True, False]])
    probs, valid = to_simplex(p, eps=0.1, nodata=nodata)
    assert valid.tolist() == [[True, False, False, False]]
    expected = (torch.tensor([0.75, 0.25]) + 0.1) / 1.2
    torch.testing.assert_close(probs[:, 0, 0], expected)
    assert (probs[:, 0, 1:] == 0).all()
    mod_probs, mod_valid = ToSimplex(eps=0.1)(p, nodata)
    torch.testing.assert_close(mod_probs, probs)
    assert torch.equal(mod_valid, valid)


def test_to_simplex_batched_sums_to_one() -> None:
    p = torch.rand(2, 5, 6, 7, dtype=torch.float64)
    p[0, :, 1, 1] = 0
    probs, valid = to_simplex(p)
    sums = probs.sum(dim=1)
    torch.testing.assert_close(sums[valid], torch.ones_like(sums[valid]))
    assert not valid[0, 1, 1]
    assert valid.sum() == 2 * 6 * 7 - 1
    assert probs.min() > 0 or not valid.all()


def test_one_hot() -> None:
    index = torch.tensor([[[0, 2], [255, 1]]], dtype=torch.uint8)
    out = one_hot(index, 3, ignore_index=255)
    assert out.shape == (1, 3, 2, 2)
    ref = np.zeros((1, 3, 2, 2), dtype=np.float32)
    for (y, x), v in np.ndenumerate(index[0].numpy()):
        if v != 255:
            ref[0, v, y, x] = 1
    np.testing.assert_array_equal(out.numpy(), ref)
    with pytest.raises(ValueError, match="outside"):
        one_hot(index, 3)
    with pytest.raises(ValueError, match="shape"):
        one_hot(torch.zeros(5, dtype=torch.long), 3)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: to_simplex(torch.rand(5, 5)), "shape"),
        (lambda: to_simplex(torch.rand(2, 3, 5, 5), eps=-1), "eps"),
        (lambda: to_simplex(torch.rand(2, 3, 5, 5), nodata=torch.zeros(2, 5, 4).bool()), "nodata"),
    ],
)
def test_to_simplex_errors(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


# --- blur ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("border", "mode"),
    [
        ("constant", "constant"),
        ("reflect", "mirror"),
        ("replicate", "nearest"),
        ("circular", "wrap"),
    ],
)
def test_blur_exact_matches_scipy(border: str, mode: str) -> None:
    x = torch.rand(2, 3, 23, 19, dtype=torch.float64)
    out = blur_probs(x, 2.5, 9, border=border)  # type: ignore[arg-type]
    ref = np.stack([[scipy_blur(c, 2.5, 9, mode) for c in b] for b in x.numpy()])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


def test_blur_anisotropic_matches_scipy() -> None:
    x = torch.rand(1, 2, 20, 21, dtype=torch.float64)
    out = blur_probs(x, (1.5, 3.0), (7, 13), border="replicate")
    ref = np.stack(
        [
            ndimage.gaussian_filter(c, (1.5, 3.0), mode="nearest", radius=(3, 6))
            for c in x[0].numpy()
        ]
    )
    np.testing.assert_allclose(out[0].numpy(), ref, atol=1e-12)


def test_blur_normalized_matches_scipy_ratio() -> None:
    x = torch.rand(1, 2, 24, 24, dtype=torch.float64)
    valid = torch.rand(1, 24, 24) > 0.3
    out = blur_probs(x, 3.0, 13, valid=valid)
    v = valid[0].numpy().astype(float)
    den = scipy_blur(v, 3.0, 13, "constant")
    for c in range(2):
        num = scipy_blur(x[0, c].numpy() * v, 3.0, 13, "constant")
        np.testing.assert_allclose(out[0, c].numpy(), num / den, atol=1e-12)
    kept = blur_probs(x, 3.0, 13, valid=valid, fill=False)
    assert (kept[0][:, ~valid[0]] == 0).all()


@pytest.mark.parametrize("method", ["exact", "fft", "fast"])
def test_blur_normalized_constant_stays_constant(method: str) -> None:
    x = torch.full((1, 3, 64, 48), 1 / 3, dtype=torch.float64)
    out = blur_probs(x, 9.0, method=method)  # type: ignore[arg-type]
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)
    # A hole does not darken the map either.
    valid = torch.ones(1, 64, 48, dtype=torch.bool)
    valid[:, 20:30, 10:20] = False
    out = blur_probs(x, 9.0, valid=valid, method=method)  # type: ignore[arg-type]
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_blur_normalized_keeps_simplex_and_empty_stays_empty() -> None:
    p = one_hot(nlcd_like(96, classes=4), 4, dtype=torch.float64)
    valid = torch.ones(96, 96, dtype=torch.bool)
    valid[:, 60:] = False  # far from the rest: more than the kernel radius
    out = blur_probs(p, 3.0, 13, valid=valid)
    sums = out.sum(dim=0)
    torch.testing.assert_close(sums[:, :66], torch.ones(96, 66, dtype=torch.float64))
    assert (out[:, :, 67:] == 0).all()


def test_blur_constant_border_preserves_mass() -> None:
    x = torch.zeros(1, 2, 80, 80, dtype=torch.float64)
    x[0, :, 30:50, 25:55] = torch.rand(2, 20, 30, dtype=torch.float64)
    out = blur_probs(x, 4.0, border="constant")  # support + radius 16 inside the image
    torch.testing.assert_close(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)))
    out = blur_probs(x, 4.0, border="reflect")  # mirror reflection also keeps the mass
    assert out.sum() > 0


@pytest.mark.parametrize("border", ["normalized", "constant", "replicate"])
def test_blur_fft_equals_exact(border: str) -> None:
    p = one_hot(nlcd_like(128), 6, dtype=torch.float64)[None]
    exact = blur_probs(p, 11.0, border=border)  # type: ignore[arg-type]
    fft = blur_probs(p, 11.0, method="fft", border=border)  # type: ignore[arg-type]
    torch.testing.assert_close(fft, exact, atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    ("kernel_size", "bound"), [(None, FAST_ERROR_DEFAULT_KERNEL), (101, FAST_ERROR_KERNEL_101)]
)
def test_blur_fast_within_documented_error(kernel_size: int | None, bound: float) -> None:
    p = one_hot(nlcd_like(512, classes=5), 5)[None]
    exact = blur_probs(p, 31.0, kernel_size)
    fast = blur_probs(p, 31.0, kernel_size, method="fast")
    err = (fast - exact).abs().max().item()
    assert err < bound
    assert err > 1e-5  # it is an approximation: a silent fallback to exact would show here
    torch.testing.assert_close(fast.sum(dim=1), torch.ones(1, 512, 512))


def test_blur_fast_with_holes_and_factor_one() -> None:
    p = one_hot(nlcd_like(96, classes=3), 3, dtype=torch.float64)
    valid = torch.rand(96, 96, generator=torch.Generator().manual_seed(1)) > 0.2
    exact = blur_probs(p, 8.0, valid=valid)
    fast = blur_probs(p, 8.0, valid=valid, method="fast", factor=2)
    assert (fast - exact).abs().max() < 5e-3
    same = blur_probs(p, 8.0, valid=valid, method="fast", factor=1)
    torch.testing.assert_close(same, exact)


def test_blur_module_equals_function_and_unbatched() -> None:
    p = torch.rand(2, 3, 30, 30)
    valid = torch.rand(2, 30, 30) > 0.1
    module = BlurProbs(4.0, 17, method="fft")
    torch.testing.assert_close(module(p, valid), blur_probs(p, 4.0, 17, valid, method="fft"))
    torch.testing.assert_close(blur_probs(p[0], 4.0)[None], blur_probs(p[:1], 4.0))


@pytest.mark.parametrize("border", ["normalized", "reflect"])
def test_blur_gradcheck(border: str) -> None:
    p = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    valid = torch.rand(1, 5, 6) > 0.3 if border == "normalized" else None
    assert gradcheck(lambda t: blur_probs(t, 1.2, 3, valid, border=border), (p,))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": 1.0, "kernel_size": 4}, "odd"),
        ({"sigma": 1.0, "method": "gpu"}, "method"),
        ({"sigma": 1.0, "border": "zeros"}, "border"),
        ({"sigma": 5.0, "kernel_size": 41, "border": "reflect"}, "radius"),
        ({"sigma": 1.0, "valid": torch.ones(1, 10, 9).bool()}, "valid"),
        ({"sigma": 1.0, "valid": torch.ones(1, 10, 10).bool(), "border": "constant"}, "normalized"),
        ({"sigma": 31.0, "method": "fast", "factor": 80}, "factor"),
    ],
)
def test_blur_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        blur_probs(torch.rand(1, 2, 10, 10), **kwargs)  # type: ignore[arg-type]


def test_blur_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        blur_probs(torch.rand(10, 10), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        BlurProbs(-2.0)


# --- co-occurrence ---------------------------------------------------------------------


def brute_force_cooccurrence(
    coarse: np.ndarray, fine: np.ndarray, valid: np.ndarray, kc: int, kf: int, tiles: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled and tile-averaged P(fine | coarse) by explicit Python loops."""
    pooled = np.zeros((kf, kc))
    per_tile: dict[int, np.ndarray] = {}
    for idx in itertools.product(*(range(s) for s in coarse.shape)):
        if not valid[idx]:
            continue
        c, f, t = int(coarse[idx]), int(fine[idx]), int(tiles[idx])
        pooled[f, c] += 1
        per_tile.setdefault(t, np.zeros((kf, kc)))[f, c] += 1
    pooled_sums = pooled.sum(axis=0)
    pooled = np.divide(pooled, pooled_sums, out=np.zeros_like(pooled), where=pooled_sums > 0)
    acc, seen = np.zeros((kf, kc)), np.zeros(kc)
    for counts in per_tile.values():
        sums = counts.sum(axis=0)
        for c in range(kc):
            if sums[c] > 0:
                acc[:, c] += counts[:, c] / sums[c]
                seen[c] += 1
    average = np.divide(acc, seen, out=np.zeros_like(acc), where=seen > 0)
    return pooled, average


def test_estimate_cooccurrence_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 5, (3, 12, 10))
    coarse[coarse == 4] = 3  # coarse class 4 never occurs: an all-zero column
    coarse[0][coarse[0] == 2] = 1  # class 2 absent from tile 0: averaged over 2 tiles only
    fine = rng.integers(0, 4, (3, 12, 10))
    valid = rng.random((3, 12, 10)) > 0.1
    fine[~valid] = 255  # ignored values at invalid pixels
    tiles = np.broadcast_to(np.arange(3)[:, None, None], coarse.shape)
    pooled_ref, average_ref = brute_force_cooccurrence(coarse, fine, valid, 5, 4, tiles)
    pooled = estimate_cooccurrence(coarse, fine, 5, 4, torch.from_numpy(valid), mode="pooled")
    average = estimate_cooccurrence(coarse, fine, 5, 4, torch.from_numpy(valid))
    np.testing.assert_allclose(pooled.numpy(), pooled_ref, atol=1e-12)
    np.testing.assert_allclose(average.numpy(), average_ref, atol=1e-12)
    assert not np.allclose(pooled_ref, average_ref)  # the two modes differ on this pair
    assert (average[:, 4] == 0).all()
    torch.testing.assert_close(average[:, :4].sum(dim=0), torch.ones(4, dtype=torch.float64))


def test_estimate_cooccurrence_square_tiles_and_tile_raster() -> None:
    rng = np.random.default_rng(1)
    coarse = torch.from_numpy(rng.integers(0, 3, (2, 9, 8)))
    fine = torch.from_numpy(rng.integers(0, 3, (2, 9, 8)))
    ids = np.zeros((2, 9, 8), dtype=np.int64)
    for b, y, x in itertools.product(range(2), range(9), range(8)):
        ids[b, y, x] = (b * 3 + y // 4) * 2 + x // 4
    _, ref = brute_force_cooccurrence(
        coarse.numpy(), fine.numpy(), np.ones((2, 9, 8), bool), 3, 3, ids
    )
    by_size = estimate_cooccurrence(coarse, fine, 3, 3, tiles=4)
    by_raster = estimate_cooccurrence(coarse, fine, 3, 3, tiles=torch.from_numpy(ids * 7 + 3))
    np.testing.assert_allclose(by_size.numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(by_raster.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fine": torch.zeros(4, 5, dtype=torch.long)}, "aligned"),
        ({"num_coarse": 2}, "outside"),
        ({"mode": "mean"}, "mode"),
        ({"valid": torch.ones(4, 4)}, "boolean"),
        ({"tiles": torch.zeros(3, 4, dtype=torch.long)}, "shape"),
    ],
)
def test_estimate_cooccurrence_errors(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "coarse": torch.arange(16).view(4, 4) % 3,
        "fine": torch.zeros(4, 4, dtype=torch.long),
        "num_coarse": 3,
        "num_fine": 2,
    }
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        estimate_cooccurrence(**args)  # type: ignore[arg-type]


def test_remap_one_hot_equals_column_and_sums() -> None:
    matrix = reference_cooccurrence("pittsburgh", "enviroatlas5")  # column 0 (nodata) is empty
    index = torch.arange(17).view(1, 17).expand(3, 17)
    out = remap(one_hot(index, 17, dtype=torch.float64), matrix)
    for c in range(17):
        np.testing.assert_allclose(out[:, 0, c].numpy(), matrix[:, c], atol=1e-12)
    blurred = blur_probs(one_hot(nlcd_like(64, classes=17), 17, dtype=torch.float64), 5.0)
    out = remap(blurred, matrix)
    sums = out.sum(dim=0)
    has_info = blurred[1:].sum(dim=0) > 0
    torch.testing.assert_close(sums[has_info], torch.ones_like(sums[has_info]))
    assert (sums[~has_info] == 0).all()


def test_remap_renormalises_over_informative_mass() -> None:
    matrix = torch.tensor([[0.0, 0.2, 1.0], [0.0, 0.8, 0.0]], dtype=torch.float64)
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64).view(3, 1, 1)
    torch.testing.assert_close(remap(p, matrix).flatten(), torch.tensor([0.6, 0.4]).double())
    raw = remap(p, matrix, renormalize=False).flatten()
    torch.testing.assert_close(raw, torch.tensor([0.3, 0.2]).double())
    empty = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64).view(3, 1, 1)
    assert (remap(empty, matrix) == 0).all()


def test_remap_module_equals_function_and_gradcheck() -> None:
    matrix = reference_cooccurrence("austin", "enviroatlas5")
    module = CooccurrenceRemap(matrix)
    assert "matrix" in module.state_dict()
    p = torch.rand(2, 17, 5, 6)
    torch.testing.assert_close(module(p), remap(p, matrix))
    torch.testing.assert_close(
        CooccurrenceRemap.from_reference("austin")(p), module(p), atol=1e-6, rtol=0
    )
    q = torch.rand(1, 17, 2, 2, dtype=torch.float64, requires_grad=True)
    positive = torch.rand(5, 17, dtype=torch.float64) + 0.1  # gradcheck's steps stay >= 0
    m = (positive / positive.sum(dim=0)).requires_grad_(True)
    assert gradcheck(lambda t: remap(t, matrix), (q,))
    assert gradcheck(lambda mm: remap(q.detach(), mm, renormalize=False), (m,))


def test_remap_errors() -> None:
    matrix = reference_cooccurrence("durham", "enviroatlas5")
    with pytest.raises(ValueError, match="17 columns"):
        remap(torch.rand(1, 16, 4, 4), matrix)
    with pytest.raises(ValueError, match="sum to 1"):
        remap(torch.rand(1, 17, 4, 4), matrix * 2)
    with pytest.raises(ValueError, match="shape"):
        remap(torch.rand(17, 4), matrix)


def test_nlcd_prior_recipe() -> None:
    """one-hot NLCD -> blur -> remap -> to_simplex, as the paper, on a small map."""
    nlcd = nlcd_like(128, classes=17)
    nlcd[:20, :20] = 0  # NLCD nodata: no information before the blur
    valid_in = nlcd != 0
    blurred = blur_probs(one_hot(nlcd, 17), 31.0, 101, valid=valid_in)
    prior, valid = to_simplex(remap(blurred, reference_cooccurrence("phoenix", "enviroatlas5")))
    assert prior.shape == (5, 128, 128)
    assert valid.all()
    torch.testing.assert_close(prior.sum(dim=0), torch.ones(128, 128))


# --- fusion ----------------------------------------------------------------------------


def road_scene() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(3)
    prior = torch.softmax(torch.randn(2, 5, 40, 40, generator=g), dim=1)
    roads = torch.zeros(2, 40, 40, dtype=torch.bool)
    roads[:, 10, 5:30] = True
    water = torch.zeros(2, 1, 40, 40)
    water[1, 0, 30:34, 30:36] = 1.0
    return prior, {"roads": roads, "water_bodies": water}


def test_fusion_on_simplex_local_and_adds_mass() -> None:
    prior, layers = road_scene()
    out = AuxiliaryFusion()(prior, layers)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2, 40, 40))
    # Roads are dilated by 3 px: rows 7..13; pixels beyond are untouched bit for bit.
    far = torch.ones(40, 40, dtype=torch.bool)
    far[6:15, 1:34] = False
    far[29:35, 29:37] = False
    assert torch.equal(out[0][:, far], prior[0][:, far])
    assert torch.equal(out[0, :, 20, :], prior[0, :, 20, :])
    on_road = out[:, 1, 10, 5:30]
    assert (on_road > prior[:, 1, 10, 5:30]).all()
    torch.testing.assert_close(on_road, (prior[:, 1, 10, 5:30] + 1) / 2)
    assert (out[1, 0, 30:34, 30:36] > prior[1, 0, 30:34, 30:36]).all()
    assert torch.equal(out[0, :, 30:34, 30:36], prior[0, :, 30:34, 30:36])  # no water in 0


def test_fusion_dilate_and_blur_support() -> None:
    prior, layers = road_scene()
    out = fuse_auxiliary(
        prior,
        {"roads": layers["roads"]},
        {"roads": 1},
        {"roads": 2.0},
        dilate={"roads": 2},
        sigma={"roads": 1.0},
    )
    changed = (out != prior).any(dim=1)[0]
    rows = torch.nonzero(changed.any(dim=1)).flatten()
    # dilation 2 + blur kernel radius 4 (truncate 4 sigma) around row 10
    assert rows.min() == 10 - 6
    assert rows.max() == 10 + 6
    ref = ndimage.binary_dilation(
        layers["roads"][0].numpy(), ndimage.generate_binary_structure(2, 1), iterations=1
    )
    assert torch.equal(
        dilate_mask(layers["roads"][:1, None].float(), 1)[0, 0].bool(), torch.from_numpy(ref)
    )


def test_dilate_mask_matches_disk() -> None:
    g = torch.Generator().manual_seed(5)
    mask = torch.rand(1, 1, 25, 27, generator=g)
    radius = 4
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (yy**2 + xx**2) <= radius**2
    ref = ndimage.grey_dilation(mask[0, 0].numpy(), footprint=disk, mode="constant", cval=-np.inf)
    np.testing.assert_allclose(dilate_mask(mask, radius)[0, 0].numpy(), ref)


def test_fusion_module_equals_function_and_unbatched() -> None:
    prior, layers = road_scene()
    cfg = ENVIROATLAS5_FUSION
    fused = fuse_auxiliary(
        prior,
        layers,
        {k: int(v["target"]) for k, v in cfg.items()},
        {k: float(v["weight"]) for k, v in cfg.items()},
        {k: int(v["dilate"]) for k, v in cfg.items()},
        {k: float(v["sigma"]) for k, v in cfg.items()},
    )
    torch.testing.assert_close(AuxiliaryFusion(cfg)(prior, layers), fused)
    single = AuxiliaryFusion()(prior[1], {k: v[1] for k, v in layers.items()})
    torch.testing.assert_close(single, fused[1])


def test_fusion_errors() -> None:
    prior, layers = road_scene()
    with pytest.raises(ValueError, match="no target"):
        fuse_auxiliary(prior, {"rivers": layers["roads"]}, {"roads": 1})
    with pytest.raises(ValueError, match="5 classes"):
        fuse_auxiliary(prior, layers, {"roads": 7, "water_bodies": 0})
    with pytest.raises(ValueError, match="shape"):
        fuse_auxiliary(prior, {"roads": layers["roads"][:, :20]}, {"roads": 1})
    with pytest.raises(ValueError, match="weight"):
        fuse_auxiliary(prior, layers, {"roads": 1, "water_bodies": 0}, {"roads": -1.0})
    with pytest.raises(ValueError, match="target"):
        AuxiliaryFusion({"roads": {"weight": 1.0}})


@pytest.mark.parametrize(("ksize", "sigma"), [((101, 101), (31.0, 31.0)), ((9, 5), (2.0, 0.0))])
def test_separable_fft_blur_equals_the_spatial_one(
    ksize: tuple[int, int], sigma: tuple[float, float]
) -> None:
    from torchgeo_lsr.priors.blur import _gauss, _gauss_separable_fft

    x = torch.rand(2, 3, 70, 90, dtype=torch.float64)
    torch.testing.assert_close(
        _gauss_separable_fft(x, ksize, sigma), _gauss(x, ksize, sigma, "constant")
    )


def test_fill_unseen_takes_only_empty_columns() -> None:
    from torchgeo_lsr.priors import fill_unseen

    estimate = np.array([[0.2, 0.0, 1.0], [0.8, 0.0, 0.0]])
    reference = np.array([[0.5, 0.3, 0.1], [0.5, 0.7, 0.9]])
    filled = fill_unseen(estimate, reference)
    np.testing.assert_array_equal(filled[:, [0, 2]], estimate[:, [0, 2]])
    np.testing.assert_array_equal(filled[:, 1], reference[:, 1])
    assert estimate[0, 1] == 0.0  # the input is not changed
    with pytest.raises(ValueError, match="fallback must be"):
        fill_unseen(estimate, reference[:, :2])
