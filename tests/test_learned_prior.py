"""The learned prior (paper §4.4): input stack, task, data module, applying, and the claim.

The acceptance check trains the learned prior on two tiles of the sample city and scores it
against the hand-made prior (NLCD only, and NLCD + OSM + buildings) on the two held-out
tiles: NLL = mean over labelled pixels of -log P(true class), both priors smoothed by 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from lightning.pytorch import Trainer, seed_everything

from torchgeo_lsr.cli import lightning_main
from torchgeo_lsr.datamodules.learned_prior import LearnedPriorDataModule
from torchgeo_lsr.losses import prior_nll
from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors
from torchgeo_lsr.priors.learned import (
    LEARNED_PRIOR_CHANNELS,
    LearnedPriorInputs,
    apply_learned_prior,
    learned_prior_inputs,
    prior_config_from_hparams,
    score_prior_dir,
)
from torchgeo_lsr.sample_city import make_sample_city
from torchgeo_lsr.trainers.learned_prior import LearnedPriorTask, PixelNLL

ROOT = Path(__file__).parents[1]
CONFIG = str(ROOT / "configs" / "learned_prior.yaml")
NE, SW, SE, NW2 = (f"m_35078{q}_17_060_20220615" for q in ("01_ne", "01_sw", "01_se", "02_nw"))
#: Tiles 0 and 3 (diagonal) train, tiles 1 and 2 are held out.
TRAIN, HELD_OUT = [NE, NW2], [SW, SE]
EPS = 1e-4


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lp") / "city"
    make_sample_city(root, tiles=2, size=256, progress=False)
    return root


@pytest.fixture(scope="module")
def city4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lp4") / "city"
    make_sample_city(root, tiles=4, size=512, progress=False)
    return root


def tiny_task(**kwargs: object) -> LearnedPriorTask:
    return LearnedPriorTask(num_filters=16, **kwargs)  # type: ignore[arg-type]


def train(region: Path, tiles: list[str], steps: int, path: Path) -> Path:
    """Train a small learned prior with Lightning (``steps`` batches of 8 x 64 px)."""
    seed_everything(0)
    dm = LearnedPriorDataModule(region, tiles, patch_size=64, batch_size=8, train_length=8 * steps)
    task = tiny_task()
    task.configure_optimizers = lambda: torch.optim.Adam(task.parameters(), lr=1e-3)  # type: ignore[method-assign]
    trainer = Trainer(
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(task, dm)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def quick_checkpoint(city: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Barely trained: enough to test files, not quality."""
    return train(city, [NE], 3, tmp_path_factory.mktemp("ckpt") / "quick.ckpt")


# --------------------------------------------------------------------------- inputs
def test_channel_order() -> None:
    assert LEARNED_PRIOR_CHANNELS == (
        "prior_water",
        "prior_impervious",
        "prior_barren",
        "prior_trees",
        "prior_grass",
        "buildings",
        "roads",
        "water_bodies",
        "waterways",
    )


def test_input_stack_prior_channels_are_the_builders_nlcd_prior(city: Path, tmp_path: Path) -> None:
    stack = learned_prior_inputs(city, NE)
    with rasterio.open(city / "naip" / f"{NE}.tif") as src:
        assert stack.shape == (9, src.height, src.width)
    assert stack.dtype == torch.float32
    report = build_region_priors(city, tmp_path, PriorConfig(), progress=False)
    with rasterio.open(report.outputs[[p.stem for p in report.outputs].index(NE)]) as src:
        handmade = torch.from_numpy(src.read())
    torch.testing.assert_close(stack[:5], handmade, atol=1e-5, rtol=0)
    torch.testing.assert_close(stack[:5].sum(0), torch.ones(stack.shape[1:]))
    masks = stack[5:]
    assert set(masks.unique().tolist()) == {0.0, 1.0}


def test_input_stack_masks_at_known_pixels(city: Path) -> None:
    inputs = LearnedPriorInputs(city)
    grid = inputs.grid(NE)
    stack = inputs.stack(grid)
    buildings = stack[LEARNED_PRIOR_CHANNELS.index("buildings")]
    # A pixel inside a footprint, found independently from the GeoJSON.
    footprints = gpd.read_file(city / "buildings" / "footprints.geojson").to_crs(grid.crs)
    big = footprints[footprints.area > 60].copy()
    big["point"] = big.geometry.buffer(-2).representative_point()
    checked = 0
    for point in big["point"]:
        if point.is_empty:
            continue
        col, row = ~grid.transform * (point.x, point.y)
        r, c = int(row), int(col)
        if 0 <= r < grid.height and 0 <= c < grid.width:
            assert buildings[r, c] == 1, f"building pixel {(r, c)} has buildings = 0"
            checked += 1
    assert checked >= 3
    # Far from every footprint: 0.
    far = footprints.geometry.buffer(5).union_all()
    rows, cols = np.nonzero(buildings.numpy() == 0)
    xs, ys = grid.transform * (cols[::97] + 0.5, rows[::97] + 0.5)
    for x, y, r, c in zip(xs, ys, rows[::97], cols[::97], strict=True):
        if not far.contains(gpd.points_from_xy([x], [y])[0]):
            assert buildings[r, c] == 0
    # Each mask sits on its own class in the hi-res labels (catches a swapped order).
    labels = rasterio.open(city / "labels" / f"{NE}.tif").read(1)
    water, impervious = labels == 10, labels == 20
    for name, truth, least in (
        ("buildings", impervious, 0.7),
        ("roads", impervious, 0.5),
        ("water_bodies", water, 0.7),
    ):
        mask = stack[LEARNED_PRIOR_CHANNELS.index(name)].numpy() > 0
        if mask.sum() > 50:
            assert truth[mask].mean() > least, name


def test_stack_in_windows_equals_whole(city: Path) -> None:
    from dataclasses import replace

    whole = LearnedPriorInputs(city)
    windowed = LearnedPriorInputs(city, replace(PriorConfig(), window=128))
    grid = whole.grid(NE)
    a, b = windowed.stack(grid), whole.stack(grid)
    torch.testing.assert_close(a[5:], b[5:])
    # The blurred prior is read with its margin, so windows agree up to the fast blur.
    torch.testing.assert_close(a[:5], b[:5], atol=2e-3, rtol=0)


def test_inputs_errors(city: Path) -> None:
    with pytest.raises(ValueError, match="no imagery tile named"):
        learned_prior_inputs(city, "nope")
    with pytest.raises(FileNotFoundError, match="nlcd"):
        learned_prior_inputs(city / "naip", NE)


def test_prior_config_from_hparams() -> None:
    config = prior_config_from_hparams(
        {"blur_kernel_size": 51, "sigma": 9.0, "prior_eps": 0.0, "num_filters": 3}
    )
    assert (config.kernel_size, config.sigma, config.eps) == (51, 9.0, 0.0)


# ----------------------------------------------------------------------- data module
def test_datamodule_batches_and_cache(city: Path) -> None:
    dm = LearnedPriorDataModule(city, [NE], [SW], patch_size=64, batch_size=4, train_length=8)
    dm.setup("fit")
    assert [t.name for t in dm.tiles] == [NE, SW]
    tiles = dm.tiles
    dm.setup("validate")
    assert dm.tiles is tiles  # stacks built once
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 9, 64, 64)
    assert batch["mask"].shape == (4, 64, 64)
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 2, 3, 4, 255}
    # No normalisation: the stack reaches the task as stored.
    out = dm.on_after_batch_transfer(batch, 0)
    torch.testing.assert_close(out["image"], batch["image"].float())
    assert dm.hparams["blur_kernel_size"] == 101
    assert dm.prior_config == PriorConfig()


def test_datamodule_errors(city: Path) -> None:
    with pytest.raises(ValueError, match="both"):
        LearnedPriorDataModule(city, [NE], [NE])
    with pytest.raises(ValueError, match="at least one"):
        LearnedPriorDataModule(city, [])
    dm = LearnedPriorDataModule(city, ["nope"])
    with pytest.raises(ValueError, match="no imagery tile named"):
        dm.setup("fit")


# ------------------------------------------------------------------------------ task
def test_pixel_nll_against_formula() -> None:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(2, 5, 6, 7, generator=g), dim=1)
    target = torch.randint(0, 5, (2, 6, 7), generator=g)
    target[0, 0, :3] = 255
    p = (probs + EPS) / (1 + 5 * EPS)
    keep = target != 255
    expected = np.mean(
        [-np.log(float(p[b, int(target[b, i, j]), i, j])) for b, i, j in keep.nonzero().tolist()]
    )
    metric = PixelNLL(EPS)
    metric.update(probs[:1], target[:1])
    metric.update(probs[1:], target[1:])
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)
    total, count = prior_nll(probs, target, EPS)
    assert float(total / count) == pytest.approx(expected, rel=1e-5)


def test_task_loss_decreases(city: Path) -> None:
    torch.manual_seed(0)
    dm = LearnedPriorDataModule(
        city, [NE], patch_size=48, batch_size=4, train_length=32, augment=False
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    task = tiny_task()
    assert task.model.receptive_field == 21
    assert task.border == 10
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    losses = []
    for step in range(24):
        loss = task.training_step(batches[step % len(batches)], step)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.75 * losses[0], losses


def test_task_unlabelled_batch_and_errors() -> None:
    task = tiny_task(in_channels=9)
    batch = {"image": torch.rand(2, 9, 32, 32), "mask": torch.full((2, 32, 32), 255)}
    loss = task.training_step(batch, 0)
    assert float(loss) == 0.0
    assert loss.requires_grad
    with pytest.raises(ValueError, match="too small"):
        task.training_step({"image": torch.rand(1, 9, 20, 20), "mask": torch.zeros(1, 20, 20)}, 0)
    with pytest.raises(ValueError, match="learned_prior_fcn"):
        LearnedPriorTask(model="fcn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels"):
        LearnedPriorTask(labels=["a"])
    probs = task.predict_step({"image": torch.rand(1, 9, 24, 24)}, 0)["prior"]
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 24, 24))
    assert float(probs.min()) >= EPS / (1 + 5 * EPS) - 1e-9


def test_fast_dev_run_from_config(city: Path, tmp_path: Path) -> None:
    cli = lightning_main(
        [
            "fit",
            "--config",
            CONFIG,
            "--data.init_args.region",
            str(city),
            "--data.init_args.train_tiles",
            f"[{NE}]",
            "--data.init_args.val_tiles",
            f"[{SW}]",
            "--data.init_args.patch_size",
            "48",
            "--data.init_args.batch_size",
            "2",
            "--model.init_args.num_filters",
            "8",
            "--trainer.fast_dev_run",
            "true",
            "--trainer.default_root_dir",
            str(tmp_path),
        ]
    )
    assert isinstance(cli.model, LearnedPriorTask)
    assert isinstance(cli.datamodule, LearnedPriorDataModule)
    assert cli.trainer.state.finished
    logged = set(cli.trainer.callback_metrics)
    assert {"train_loss", "val_loss", "val_acc", "val_miou", "val_nll"} <= logged
    assert np.isfinite(float(cli.trainer.callback_metrics["val_nll"]))


# -------------------------------------------------------------------------- applying
def numpy_score(region: Path, prior_dir: Path, tiles: list[str]) -> tuple[float, float]:
    """NLL and accuracy from the files, written out independently of the package."""
    lut = np.full(256, 255)
    lut[[10, 20, 30, 40, 52, 70]] = [0, 1, 2, 3, 3, 4]
    nll, correct, n = 0.0, 0, 0
    for name in tiles:
        with rasterio.open(region / "labels" / f"{name}.tif") as src:
            labels = lut[src.read(1)]
            labels[src.read_masks(1) == 0] = 255
        with rasterio.open(prior_dir / f"{name}.tif") as src:
            prior = src.read().astype(np.float64)
        p = (prior + EPS) / (prior.sum(0) + prior.shape[0] * EPS)
        keep = labels != 255
        true = np.take_along_axis(p, np.where(keep, labels, 0)[None], 0)[0]
        nll += float(-np.log(true[keep]).sum())
        correct += int((p.argmax(0) == labels)[keep].sum())
        n += int(keep.sum())
    return nll / n, correct / n


@pytest.mark.slow
def test_learned_prior_beats_handmade_on_held_out_tiles(city4: Path, tmp_path: Path) -> None:
    """Tiles 0 and 3 of a 4 x 512 px city train (60 steps), tiles 1 and 2 are scored."""
    checkpoint = train(city4, TRAIN, 60, tmp_path / "learned.ckpt")
    learned = tmp_path / "learned"
    apply_learned_prior(checkpoint, city4, learned, tiles=HELD_OUT)
    scores = {"learned": numpy_score(city4, learned, HELD_OUT)}
    for name, aux in (("nlcd", ()), ("nlcd+osm+buildings", ("osm", "buildings"))):
        out = tmp_path / name
        build_region_priors(city4, out, PriorConfig(aux=aux), progress=False)  # type: ignore[arg-type]
        scores[name] = numpy_score(city4, out, HELD_OUT)
    print("held-out (nll, acc):", scores)
    for name in ("nlcd", "nlcd+osm+buildings"):
        assert scores["learned"][0] < scores[name][0] - 0.03, scores
        assert scores["learned"][1] > scores[name][1] + 0.03, scores
    # The package's own scorer agrees with the independent one.
    mine = score_prior_dir(city4, learned, HELD_OUT, eps=EPS)
    assert mine.nll == pytest.approx(scores["learned"][0], rel=1e-3)
    assert mine.acc == pytest.approx(scores["learned"][1], abs=1e-3)


def test_learned_prior_beats_nlcd_prior_on_held_out_tile(city: Path, tmp_path: Path) -> None:
    """Fast variant: train on one 256 px tile (40 steps), score on the other."""
    checkpoint = train(city, [NE], 40, tmp_path / "learned.ckpt")
    apply_learned_prior(checkpoint, city, tmp_path / "learned", tiles=[SW])
    build_region_priors(city, tmp_path / "nlcd", PriorConfig(), progress=False)
    learned = numpy_score(city, tmp_path / "learned", [SW])
    handmade = numpy_score(city, tmp_path / "nlcd", [SW])
    print("held-out (nll, acc): learned", learned, "nlcd", handmade)
    assert learned[0] < handmade[0], (learned, handmade)
    assert learned[1] > handmade[1], (learned, handmade)


def test_apply_writes_aligned_priors_and_resumes(
    city: Path, quick_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "prior"
    report = apply_learned_prior(quick_checkpoint, city, out, tiles=[SW], window=100)
    assert report.written == [out / f"{SW}.tif"]
    assert not report.skipped
    assert not list(out.glob("*.partial"))
    with rasterio.open(city / "naip" / f"{SW}.tif") as img, rasterio.open(out / f"{SW}.tif") as pr:
        assert (pr.crs, pr.transform, pr.shape) == (img.crs, img.transform, img.shape)
        assert pr.count == 5
        assert pr.dtypes[0] == "float32"
        assert pr.descriptions == ("water", "impervious", "barren", "trees", "grass")
        data = pr.read()
    np.testing.assert_allclose(data.sum(0), 1.0, atol=1e-5)
    assert data.min() >= EPS / (1 + 5 * EPS) - 1e-7
    # Windows see their margin: the same as one window over the whole tile.
    whole = apply_learned_prior(quick_checkpoint, city, tmp_path / "whole", tiles=[SW], window=1024)
    with rasterio.open(whole.written[0]) as src:
        np.testing.assert_allclose(src.read(), data, atol=2e-3)
    # Same key: skipped; another smoothing: rewritten.
    again = apply_learned_prior(quick_checkpoint, city, out, tiles=[SW], window=100)
    assert again.skipped == [out / f"{SW}.tif"]
    assert not again.written
    other = apply_learned_prior(quick_checkpoint, city, out, tiles=[SW], eps=1e-3)
    assert other.written == [out / f"{SW}.tif"]
    with pytest.raises(ValueError, match="no imagery tile named"):
        apply_learned_prior(quick_checkpoint, city, out, tiles=["nope"])


def test_apply_rejects_a_mismatched_stack(
    city: Path, quick_checkpoint: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="in_channels"):
        apply_learned_prior(
            quick_checkpoint, city, tmp_path, tiles=[SW], config=PriorConfig(classes="enviroatlas")
        )
