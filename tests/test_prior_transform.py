"""PriorTransform: the recipe on sample dicts equals what ``torchgeo-lsr prior`` writes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from torchgeo_lsr.datasets import Grid
from torchgeo_lsr.formats import read_prior
from torchgeo_lsr.priors.blur import blur_probs
from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors, resolve_cooccurrence
from torchgeo_lsr.priors.simplex import to_simplex
from torchgeo_lsr.priors.transform import PriorTransform
from torchgeo_lsr.region import Region
from torchgeo_lsr.sample_city import make_sample_city

#: The fast blur's stated error with the paper's kernel (priors/blur.py), twice: two fast
#: computations on canvases anchored at different origins.
FAST_ERROR = 2 * 8.9e-3


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Region:
    root = tmp_path_factory.mktemp("transform") / "city"
    make_sample_city(root, tiles=2, size=192, progress=False)
    return Region.open(root)


def _written(region: Region, out: Path, config: PriorConfig) -> dict[str, np.ndarray]:
    build_region_priors(region, out, config, progress=False)
    found = {}
    for tile in region.images:
        with rasterio.open(out / tile.name) as src:
            found[tile.stem] = read_prior(src)
    return found


def _sample(region: Region, grid: Grid, aux: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    nlcd = region.nlcd()[grid]
    sample = {"mask": nlcd["mask"][None], "valid": nlcd["valid"][None]}
    for name, source in region.aux_sources(aux).items():  # type: ignore[arg-type]
        sample[name] = (source[grid]["mask"] > 0)[None]
    return sample


@pytest.mark.parametrize("aux", [(), ("osm", "buildings")])
def test_equals_the_written_prior_over_the_commands_window(
    city: Region, tmp_path: Path, aux: tuple[str, ...]
) -> None:
    config = PriorConfig(aux=aux)  # type: ignore[arg-type]
    written = _written(city, tmp_path / "prior", config)
    layers = {n: n for n in city.aux_sources(aux)}  # type: ignore[arg-type]
    transform = PriorTransform(config, aux=layers, crop=config.margin)
    for tile in city.images:
        grid = Grid.of_raster(tile)
        ((_, padded),) = grid.windows(config.window, config.margin)  # one window per tile
        out = transform(_sample(city, padded, aux))["prior"][0].numpy()
        assert out.shape == written[tile.stem].shape
        np.testing.assert_allclose(out, written[tile.stem], atol=1e-6)


def test_a_sub_window_within_the_fast_blurs_error(city: Region, tmp_path: Path) -> None:
    config = PriorConfig()
    written = _written(city, tmp_path / "prior", config)
    transform = PriorTransform(config, crop=config.margin)
    tile = city.images[0]
    grid = Grid.of_raster(tile)
    r0, c0, h, w = 37, 61, 64, 80
    padded = grid.window(
        r0 - config.margin, c0 - config.margin, h + 2 * config.margin, w + 2 * config.margin
    )
    out = transform(_sample(city, padded))["prior"][0].numpy()
    expected = written[tile.stem][:, r0 : r0 + h, c0 : c0 + w]
    err = np.abs(out - expected).max()
    assert err <= FAST_ERROR
    # and with the exact blur, the window's prior is the tile's prior (no canvas to align)
    exact = dataclasses.replace(config, blur="fft")
    written_exact = _written(city, tmp_path / "prior_fft", exact)
    out = PriorTransform(exact, crop=config.margin)(_sample(city, padded))["prior"][0].numpy()
    np.testing.assert_allclose(
        out, written_exact[tile.stem][:, r0 : r0 + h, c0 : c0 + w], atol=2e-5
    )


def test_against_the_recipe_written_out(city: Region) -> None:
    """An independent reference: remap by the matrix, exact blur, smooth (no aux)."""
    config = PriorConfig(blur="exact", sigma=5.0, kernel_size=21)
    grid = Grid.of_raster(city.images[1]).window(10, 20, 40, 50)
    sample = _sample(city, grid)
    out = PriorTransform(config)(dict(sample))["prior"][0]
    matrix = torch.from_numpy(resolve_cooccurrence(config)).float()
    index, valid = sample["mask"][0].long(), sample["valid"][0]
    valid = valid & (matrix.sum(0) > 0)[index]
    base = matrix[:, index] * valid
    blurred = blur_probs(base, 5.0, kernel_size=21, valid=valid, method="exact", fill=True)
    p = blurred / blurred.sum(0, keepdim=True)
    p = (p + config.eps) / (1 + len(p) * config.eps)
    torch.testing.assert_close(out, p, atol=1e-6, rtol=0)


def test_stacked_masks_and_shapes(city: Region) -> None:
    """Aux masks stacked under one key (as TorchGeo concatenates ``mask``), unbatched input."""
    config = PriorConfig(aux=("buildings",), sigma=4.0, kernel_size=None)
    grid = Grid.of_raster(city.images[0]).window(0, 0, 48, 48)
    sample = _sample(city, grid, ("buildings",))
    stacked = {"mask": torch.stack([sample["mask"][0], sample["buildings"][0].long()])[None]}
    by_key = PriorTransform(config, aux={"buildings": "buildings"})(dict(sample))["prior"]
    t = PriorTransform(config, nlcd_key="nlcd", aux={"buildings": ("mask", 1)})
    stacked["nlcd"] = stacked["mask"][:, 0]
    torch.testing.assert_close(t(stacked)["prior"], by_key)
    single = PriorTransform(config, aux={"buildings": "buildings"})(
        {
            "mask": sample["mask"][0],
            "valid": sample["valid"][0],
            "buildings": sample["buildings"][0],
        }
    )["prior"]
    assert single.shape == (5, 48, 48)
    torch.testing.assert_close(single, by_key[0])


def test_refusals() -> None:
    with pytest.raises(ValueError, match="estimate"):
        PriorTransform(PriorConfig(cooccurrence="estimate"))
    with pytest.raises(ValueError, match=r"matrix must have shape \(5, 17\)"):
        PriorTransform(matrix=torch.ones(4, 17))
    t = PriorTransform()
    with pytest.raises(KeyError, match="no 'mask'"):
        t({"image": torch.zeros(1, 4, 8, 8)})
    with pytest.raises(ValueError, match="not NLCD codes"):
        t({"mask": torch.full((1, 8, 8), 41)})
    with pytest.raises(KeyError, match="aux 'roads' reads key 'roads'"):
        PriorTransform(aux={"roads": "roads"})({"mask": torch.ones(1, 8, 8, dtype=torch.long)})


@pytest.mark.parametrize("blur", ["fast", "exact"])
def test_stages_are_forwards_steps(city: Region, blur: str) -> None:
    config = PriorConfig(aux=("buildings",), sigma=4.0, kernel_size=None, blur=blur)  # type: ignore[arg-type]
    c = config.margin
    grid = Grid.of_raster(city.images[0]).window(0, 0, 40 + 2 * c, 48 + 2 * c)
    sample = _sample(city, grid, ("buildings",))
    sample["buildings"][:, c + 10 : c + 20, c + 10 : c + 30] = True  # a building for sure
    t = PriorTransform(config, aux={"buildings": "buildings"}, crop=c)
    stages = t.stages(sample)
    assert list(stages) == ["nlcd", "cooccurrence", "blur", "fusion", "prior"]
    assert stages["nlcd"].shape == (1, 40, 48)
    for key in ("cooccurrence", "blur", "fusion", "prior"):
        assert stages[key].shape == (1, 5, 40, 48), key
    # "prior" is forward's output, exactly; the sample is not modified by stages
    assert "prior" not in sample
    assert torch.equal(stages["prior"], t(dict(sample))["prior"])
    # the NLCD index cropped, and each pixel's column of the matrix (zero without information)
    index = sample["mask"][0].long()[c:-c, c:-c]
    valid = sample["valid"][0][c:-c, c:-c]
    assert torch.equal(stages["nlcd"][0], index)
    matrix = t.matrix
    assert isinstance(matrix, torch.Tensor)
    for i, j in [(0, 0), (5, 7), (39, 47), (20, 30)]:
        expected = matrix[:, index[i, j]] if valid[i, j] else torch.zeros(5)
        torch.testing.assert_close(stages["cooccurrence"][0, :, i, j], expected)
    informative = valid & (matrix.sum(0) > 0)[index]
    torch.testing.assert_close(
        stages["cooccurrence"][0], matrix[:, index] * informative, atol=0, rtol=0
    )
    # fusion adds the buildings' mass to impervious (index 1) where they are
    assert bool((stages["fusion"][0, 1] >= stages["blur"][0, 1] - 1e-6).all())
    assert not torch.equal(stages["fusion"], stages["blur"])
    # the prior is the fused map on the simplex (exactly so for the exact blur)
    simplex, _ = to_simplex(stages["fusion"][0], eps=config.eps)
    atol = 1e-6 if blur == "exact" else FAST_ERROR
    torch.testing.assert_close(stages["prior"][0], simplex, atol=atol, rtol=0)
    # unbatched: (H, W) and (K, H, W), the same values
    single = t.stages({k: v[0] for k, v in sample.items()})
    assert single["nlcd"].shape == (40, 48)
    for key, value in single.items():
        torch.testing.assert_close(value, stages[key][0], atol=0, rtol=0)
