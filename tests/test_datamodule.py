"""Tests for :mod:`torchgeo_lsr.datamodules` on the tiny fixture region.

Batches are checked against windows read straight from the GeoTIFFs with rasterio,
coverage by painting every ``location`` into per-tile count arrays, normalisation
against an explicit per-band loop, and augmentation against the eight dihedral
transforms enumerated with numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window
from torch import Tensor

from torchgeo_lsr.datamodules import LSRDataModule, dihedral_augment

TINY = Path(__file__).parent / "data" / "tiny"
STEMS = ["m_3507801_ne_17_060_20200101", "m_3507801_nw_17_060_20200101"]
LABEL_MAP = {1: 0, 2: 1, 3: 2, 4: 3}
SIZE = 64  # fixture tiles are 64 x 64


def make_dm(**kwargs: Any) -> LSRDataModule:
    """A data module on the fixture with small, fast defaults."""
    options: dict[str, Any] = {
        "images": TINY / "naip",
        "priors": TINY / "prior",
        "labels": TINY / "labels",
        "label_map": LABEL_MAP,
        "patch_size": 16,
        "batch_size": 4,
        "train_length": 16,
        "num_workers": 0,
    }
    options.update(kwargs)
    return LSRDataModule(**options)


def window(path: Path, row: int, col: int, size: int) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(window=Window(col, row, size, size))


def check_against_files(batch: dict[str, Tensor], stems: list[str]) -> None:
    """Every sample equals the windows of its source files at its ``location``."""
    for i, (t, r, c, s) in enumerate(batch["location"].tolist()):
        stem = stems[t]
        image = window(TINY / "naip" / f"{stem}.tif", r, c, s)
        np.testing.assert_array_equal(batch["image"][i].numpy(), image.astype(np.float32))
        if "mask" in batch:
            raw = window(TINY / "labels" / f"{stem}.tif", r, c, s)[0].astype(np.int64)
            expected = np.where(raw == 255, 255, raw - 1)
            np.testing.assert_array_equal(batch["mask"][i].numpy(), expected)


def paint(batches: Iterable[dict[str, Tensor]], n_tiles: int) -> np.ndarray:
    counts = np.zeros((n_tiles, SIZE, SIZE), dtype=np.int64)
    for batch in batches:
        for t, r, c, s in batch["location"].tolist():
            assert r >= 0
            assert c >= 0
            assert r + s <= SIZE
            assert c + s <= SIZE
            counts[t, r : r + s, c : c + s] += 1
    return counts


def dihedral(a: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of the last two axes of ``a`` (numpy, independent)."""
    flipped = np.flip(a, axis=-1)
    return [np.rot90(a, k, axes=(-2, -1)) for k in range(4)] + [
        np.rot90(flipped, k, axes=(-2, -1)) for k in range(4)
    ]


def which_transform(before: np.ndarray, after: np.ndarray) -> int:
    matches = [k for k, t in enumerate(dihedral(before)) if np.array_equal(t, after)]
    assert len(matches) == 1, f"output matches dihedral transforms {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def fitted() -> LSRDataModule:
    """Transductive data module (every tile trains and validates), set up once."""
    dm = make_dm()
    dm.setup("fit")
    return dm


@pytest.fixture
def pixel_batch() -> dict[str, Tensor]:
    """A batch whose prior, mask and valid are functions of the image's pixel values.

    Channel 0 holds distinct values in each sample, so every dihedral transform of a
    sample is a different array and the transform applied can be identified.
    """
    g = torch.Generator().manual_seed(0)
    b, s = 64, 6
    image = torch.stack(
        [
            torch.stack([torch.randperm(s * s, generator=g).reshape(s, s) for _ in range(3)])
            for _ in range(b)
        ]
    ).float()
    v = image[:, 0]
    return {
        "image": image,
        "prior": torch.stack([v / 100, 1 - v / 100, (v % 3) / 2], dim=1),
        "mask": v.long() % 5,
        "valid": v > 10,
        "location": torch.arange(b * 4).reshape(b, 4),
    }


# --------------------------------------------------------------------------------------
# setup and datasets
# --------------------------------------------------------------------------------------


def test_setup_reads_every_tile(fitted: LSRDataModule) -> None:
    assert [t.name for t in fitted.tiles] == STEMS
    for dataset in (
        fitted.train_dataset,
        fitted.val_dataset,
        fitted.test_dataset,
        fitted.predict_dataset,
    ):
        assert [t.name for t in dataset.tiles] == STEMS


def test_setup_twice_reuses_the_tiles() -> None:
    dm = make_dm()
    dm.setup("fit")
    tiles = dm.tiles
    dm.setup("test")
    assert dm.tiles is tiles
    assert all(a is b for a, b in zip(dm.test_dataset.tiles, tiles, strict=True))


def test_train_batch_shapes_dtypes_and_values(fitted: LSRDataModule) -> None:
    loader = fitted.train_dataloader()
    batch = next(iter(loader))
    b, s = 4, 16
    assert batch["image"].shape == (b, 4, s, s)
    assert batch["image"].dtype == torch.uint8  # as stored; floats after batch transfer
    assert batch["prior"].shape == (b, 4, s, s)
    assert batch["prior"].dtype == torch.float32
    assert batch["mask"].shape == (b, s, s)
    assert batch["mask"].dtype == torch.long
    assert batch["location"].shape == (b, 4)
    torch.testing.assert_close(batch["prior"].sum(dim=1), torch.ones(b, s, s), atol=1e-5, rtol=0)
    check_against_files(batch, STEMS)
    # What the model sees: float imagery scaled by the default std of 255.
    out = fitted.on_after_batch_transfer(batch, 0)
    assert out["image"].shape == (b, 4, s, s)
    assert out["image"].dtype == torch.float32
    torch.testing.assert_close(out["image"], batch["image"].float() / 255)
    assert out["mask"].dtype == torch.long


def test_train_epoch_has_train_length_patches(fitted: LSRDataModule) -> None:
    dm = make_dm(train_length=10, batch_size=4)
    dm.tiles = fitted.tiles
    dm.setup("fit")
    loader = dm.train_dataloader()
    sizes = [len(batch["image"]) for batch in loader]
    assert sizes == [4, 4, 2]
    assert len(loader) == math.ceil(10 / 4)


def test_train_patches_are_seeded_and_change_between_epochs(fitted: LSRDataModule) -> None:
    def locations(loader: Any) -> Tensor:
        return torch.cat([batch["location"] for batch in loader])

    def epochs(seed: int) -> tuple[Tensor, Tensor, Tensor]:
        dm = make_dm(train_length=32, batch_size=8, seed=seed)
        dm.tiles = fitted.tiles
        dm.setup("fit")
        loader = dm.train_dataloader()
        first, second = locations(loader), locations(loader)
        loader.sampler.set_epoch(0)  # what Lightning does at the start of epoch 0
        return first, second, locations(loader)

    first, second, replay = epochs(5)
    again, _, _ = epochs(5)
    other, _, _ = epochs(6)
    assert torch.equal(first, again)
    assert torch.equal(first, replay)
    assert not torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("patch_size", [16, 32, 64])
def test_val_loader_covers_divisible_tiles_exactly_once(
    fitted: LSRDataModule, patch_size: int
) -> None:
    dm = make_dm(patch_size=patch_size, batch_size=3)
    dm.tiles = fitted.tiles
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    pixels = sum(int(batch["mask"].numel()) for batch in batches)
    assert pixels == len(STEMS) * SIZE * SIZE
    counts = paint(batches, len(STEMS))
    assert (counts == 1).all()
    check_against_files(batches[-1], STEMS)


def test_val_loader_covers_non_divisible_tiles(fitted: LSRDataModule) -> None:
    dm = make_dm(patch_size=24, batch_size=5)
    dm.tiles = fitted.tiles
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    counts = paint(batches, len(STEMS))
    assert (counts >= 1).all()
    # Offsets [0, 24, 40] per axis: 9 patches per tile, rows/cols 40..47 seen twice.
    assert sum(len(batch["image"]) for batch in batches) == 9 * len(STEMS)
    line = np.array([1] * 40 + [2] * 8 + [1] * 16)
    np.testing.assert_array_equal(counts, np.broadcast_to(np.outer(line, line), counts.shape))
    for batch in batches:
        check_against_files(batch, STEMS)


def test_predict_loader_with_overlap_covers_every_tile(fitted: LSRDataModule) -> None:
    dm = make_dm(patch_size=24, predict_stride=16, batch_size=8, val_tiles=[STEMS[0]])
    dm.tiles = fitted.tiles
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    counts = paint(batches, len(STEMS))  # prediction covers every tile, held out or not
    assert (counts >= 1).all()
    # Offsets [0, 16, 32, 40] per axis: windows 0-23, 16-39, 32-55 and 40-63.
    assert sum(len(batch["image"]) for batch in batches) == 16 * len(STEMS)
    line = np.array([1] * 16 + [2] * 8 + [1] * 8 + [2] * 24 + [1] * 8)
    np.testing.assert_array_equal(counts, np.broadcast_to(np.outer(line, line), counts.shape))


def test_val_tiles_hold_a_tile_out_of_training(fitted: LSRDataModule) -> None:
    held, kept = STEMS
    dm = make_dm(val_tiles=[held], train_length=64, batch_size=64)
    dm.tiles = fitted.tiles
    dm.setup("fit")
    assert [t.name for t in dm.train_dataset.tiles] == [kept]
    assert [t.name for t in dm.val_dataset.tiles] == [held]
    assert [t.name for t in dm.test_dataset.tiles] == [held]  # test defaults to val
    assert [t.name for t in dm.predict_dataset.tiles] == STEMS
    train = next(iter(dm.train_dataloader()))
    assert (train["location"][:, 0] == 0).all()
    check_against_files(train, [kept])
    val = list(dm.val_dataloader())
    assert (paint(val, 1) == 1).all()
    for batch in val:
        check_against_files(batch, [held])


def test_test_tiles_are_separate_from_val_tiles(fitted: LSRDataModule) -> None:
    dm = make_dm(test_tiles=[STEMS[1]])
    dm.tiles = fitted.tiles
    dm.setup("test")
    assert [t.name for t in dm.train_dataset.tiles] == STEMS  # transductive training
    assert [t.name for t in dm.val_dataset.tiles] == STEMS
    assert [t.name for t in dm.test_dataset.tiles] == [STEMS[1]]
    batch = next(iter(dm.test_dataloader()))
    check_against_files(batch, [STEMS[1]])


@pytest.mark.parametrize("option", ["val_tiles", "test_tiles"])
def test_unknown_tile_name_errors(fitted: LSRDataModule, option: str) -> None:
    dm = make_dm(**{option: [STEMS[0], "m_9999999_sw_17_060_20200101"]})
    dm.tiles = fitted.tiles
    with pytest.raises(ValueError, match=rf"{option}: no imagery tile named \['m_9999999_sw_"):
        dm.setup("fit")


def test_holding_out_every_tile_errors(fitted: LSRDataModule) -> None:
    dm = make_dm(val_tiles=list(STEMS))
    dm.tiles = fitted.tiles
    with pytest.raises(ValueError, match=r"val_tiles holds out every tile"):
        dm.setup("fit")


def test_without_labels_batches_have_no_mask() -> None:
    dm = make_dm(labels=None, label_map=None)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"image", "prior", "location"}
    check_against_files(batch, STEMS)


def test_paths_as_files_and_lists() -> None:
    dm = make_dm(
        images=[TINY / "naip" / f"{s}.tif" for s in reversed(STEMS)],
        priors=str(TINY / "prior" / "prior.tif"),
        labels=[TINY / "labels" / f"{s}.tif" for s in STEMS],
    )
    dm.setup("fit")
    assert [t.name for t in dm.tiles] == list(reversed(STEMS))
    batch = next(iter(dm.val_dataloader()))
    check_against_files(batch, list(reversed(STEMS)))


def test_priors_without_matching_stems_error(tmp_path: Path) -> None:
    for name in ("a.tif", "b.tif"):
        (tmp_path / name).write_bytes((TINY / "prior" / "prior.tif").read_bytes())
    dm = make_dm(priors=tmp_path)
    with pytest.raises(ValueError, match=rf"priors: .*no match for \['{STEMS[0]}.tif'"):
        dm.setup("fit")


@pytest.mark.parametrize(("mean", "std"), [([0.0, 1.0, 2.0], 1.0), (0.0, [1.0, 2.0])])
def test_mean_std_with_wrong_band_count_error(mean: Any, std: Any) -> None:
    dm = make_dm(mean=mean, std=std)
    with pytest.raises(ValueError, match=r"mean/std need 1 or 4 values"):
        dm.setup("fit")


@pytest.mark.parametrize("std", [0.0, [1.0, 0.0, 1.0, 1.0]])
def test_zero_std_errors(std: Any) -> None:
    with pytest.raises(ValueError, match=r"std must be non-zero"):
        make_dm(std=std)


def test_auto_normalisation_uses_the_tiles_statistics() -> None:
    """mean/std 'auto': per-band statistics of every imagery tile, pooled (numpy reference)."""
    pixels = []
    for stem in STEMS:
        with rasterio.open(TINY / "naip" / f"{stem}.tif") as src:
            pixels.append(src.read().reshape(src.count, -1).astype(np.float64))
    stacked = np.concatenate(pixels, axis=1)
    dm = make_dm(mean="auto", std="auto")
    dm.setup("fit")
    np.testing.assert_allclose(dm.mean.numpy(), stacked.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(dm.std.numpy(), stacked.std(axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="both 'auto' or both numbers"):
        make_dm(mean="auto")


def test_band_statistics_count_valid_pixels_only(tmp_path: Path) -> None:
    """A tile's nodata collar neither enters the statistics nor inflates the tile's weight."""
    from rasterio.transform import from_origin

    from torchgeo_lsr.datamodules import band_statistics

    rng = np.random.default_rng(3)
    valid = []
    for i, (size, collar) in enumerate([(40, 0), (60, 20)]):
        data = (rng.integers(1, 200, (3, size, size)) + 50 * i).astype(np.uint8)
        data[:, :collar, :] = 0  # nodata rows on the second tile
        with rasterio.open(
            tmp_path / f"t{i}.tif", "w", driver="GTiff", width=size, height=size, count=3,
            dtype="uint8", crs="EPSG:26917", transform=from_origin(0, 0, 1, 1), nodata=0,
        ) as dst:  # fmt: skip
            dst.write(data)
        valid.append(data[:, collar:, :].reshape(3, -1).astype(np.float64))
    pooled = np.concatenate(valid, axis=1)
    mean, std = band_statistics([tmp_path / "t0.tif", tmp_path / "t1.tif"])
    np.testing.assert_allclose(mean, pooled.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(std, pooled.std(axis=1), rtol=1e-9)
    # decimated reads (every 2nd pixel) estimate the same figures
    mean2, _ = band_statistics([tmp_path / "t0.tif", tmp_path / "t1.tif"], max_pixels=900)
    np.testing.assert_allclose(mean2, pooled.mean(axis=1), rtol=0.05)


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader"])
def test_dataloader_before_setup_errors_clearly(loader: str) -> None:
    with pytest.raises(RuntimeError, match=r"call setup\(\)"):
        getattr(make_dm(), loader)()


# --------------------------------------------------------------------------------------
# on_after_batch_transfer: normalisation and augmentation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "std"),
    [(0.0, 255.0), (100.0, 50.0), ([10.0, 20.0, 30.0, 40.0], [2.0, 4.0, 5.0, 10.0])],
)
@pytest.mark.parametrize("trainer", [None, SimpleNamespace(training=False)])
def test_normalisation(mean: Any, std: Any, trainer: Any) -> None:
    dm = make_dm(mean=mean, std=std)
    dm.trainer = trainer
    g = torch.Generator().manual_seed(1)
    batch = {
        "image": torch.randint(0, 256, (3, 4, 5, 5), generator=g).to(torch.uint8),
        "prior": torch.rand(3, 4, 5, 5, generator=g),
        "mask": torch.randint(0, 4, (3, 5, 5), generator=g),
        "location": torch.arange(12).reshape(3, 4),
    }
    out = dm.on_after_batch_transfer(batch, 0)
    means = np.broadcast_to(np.asarray(mean, dtype=np.float64), (4,))
    stds = np.broadcast_to(np.asarray(std, dtype=np.float64), (4,))
    raw = batch["image"].numpy().astype(np.float64)
    expected = np.empty_like(raw)
    for c in range(4):
        expected[:, c] = (raw[:, c] - means[c]) / stds[c]
    assert out["image"].dtype == torch.float32
    np.testing.assert_allclose(out["image"].numpy(), expected, rtol=1e-6, atol=1e-6)
    for key in ("prior", "mask", "location"):
        assert torch.equal(out[key], batch[key]), f"{key} changed outside training"
    assert batch["image"].dtype == torch.uint8, "the input batch must not be modified"


def test_augmentation_only_in_training(pixel_batch: dict[str, Tensor]) -> None:
    dm = make_dm(mean=10.0, std=2.0)
    normalised = (pixel_batch["image"] - 10.0) / 2.0
    for trainer in (None, SimpleNamespace(training=False)):
        dm.trainer = trainer
        out = dm.on_after_batch_transfer(pixel_batch, 0)
        assert torch.equal(out["image"], normalised)
        for key in ("prior", "mask", "valid"):
            assert torch.equal(out[key], pixel_batch[key])

    dm.trainer = SimpleNamespace(training=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        out = dm.on_after_batch_transfer(pixel_batch, 0)
    draws = [
        which_transform(normalised[i].numpy(), out["image"][i].numpy())
        for i in range(len(normalised))
    ]
    assert len(set(draws)) > 1, "training batches must be augmented"
    # Same transform for prior and labels: they are still the image's functions.
    raw0 = (out["image"][:, 0] * 2.0 + 10.0).round()
    assert torch.equal(out["mask"], raw0.long() % 5)
    assert torch.equal(out["valid"], raw0 > 10)
    torch.testing.assert_close(out["prior"][:, 0], raw0 / 100)

    no_aug = make_dm(mean=10.0, std=2.0, augment=False)
    no_aug.trainer = SimpleNamespace(training=True)
    out = no_aug.on_after_batch_transfer(pixel_batch, 0)
    assert torch.equal(out["image"], normalised)
    assert torch.equal(out["mask"], pixel_batch["mask"])


# --------------------------------------------------------------------------------------
# dihedral_augment
# --------------------------------------------------------------------------------------


def test_dihedral_augment_transforms_all_keys_alike(pixel_batch: dict[str, Tensor]) -> None:
    out = dihedral_augment(pixel_batch, torch.Generator().manual_seed(3))
    draws = []
    for i in range(len(pixel_batch["image"])):
        d = which_transform(pixel_batch["image"][i].numpy(), out["image"][i].numpy())
        draws.append(d)
        for key in ("prior", "mask", "valid"):
            expected = dihedral(pixel_batch[key][i].numpy())[d]
            np.testing.assert_array_equal(out[key][i].numpy(), expected, err_msg=key)
    # The relations that defined prior/mask/valid from the image still hold.
    v = out["image"][:, 0]
    assert torch.equal(out["mask"], v.long() % 5)
    assert torch.equal(out["valid"], v > 10)
    torch.testing.assert_close(out["prior"], torch.stack([v / 100, 1 - v / 100, (v % 3) / 2], 1))
    # All eight transforms are used (64 draws), and draws are per sample.
    assert sorted(set(draws)) == list(range(8))
    # Non-spatial keys pass through; dtypes and shapes are kept.
    assert out["location"] is pixel_batch["location"]
    for key in ("image", "prior", "mask", "valid"):
        assert out[key].dtype == pixel_batch[key].dtype
        assert out[key].shape == pixel_batch[key].shape


def test_dihedral_augment_is_reproducible_and_pure(pixel_batch: dict[str, Tensor]) -> None:
    before = {k: v.clone() for k, v in pixel_batch.items()}
    a = dihedral_augment(pixel_batch, torch.Generator().manual_seed(11))
    b = dihedral_augment(pixel_batch, torch.Generator().manual_seed(11))
    c = dihedral_augment(pixel_batch, torch.Generator().manual_seed(12))
    for key in before:
        assert torch.equal(pixel_batch[key], before[key]), f"input {key} was modified"
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["image"], c["image"])


def test_dihedral_augment_on_a_fixture_batch(fitted: LSRDataModule) -> None:
    batch = next(iter(fitted.val_dataloader()))
    out = dihedral_augment(batch, torch.Generator().manual_seed(0))
    for i in range(len(batch["image"])):
        d = which_transform(batch["image"][i].numpy(), out["image"][i].numpy())
        np.testing.assert_array_equal(
            out["prior"][i].numpy(), dihedral(batch["prior"][i].numpy())[d]
        )
        np.testing.assert_array_equal(out["mask"][i].numpy(), dihedral(batch["mask"][i].numpy())[d])


def _fake_trainer(rank: int, world: int, use_distributed_sampler: bool = False) -> Any:
    connector = SimpleNamespace(use_distributed_sampler=use_distributed_sampler)
    return SimpleNamespace(global_rank=rank, world_size=world, _accelerator_connector=connector)


@pytest.mark.parametrize("sampler", ["random", "per_tile", "mixed_batch"])
def test_ddp_ranks_draw_their_own_share(fitted: LSRDataModule, sampler: str) -> None:
    def draw(rank: int, world: int) -> Tensor:
        dm = make_dm(train_length=32, batch_size=4, train_sampler=sampler, patches_per_tile=16)
        dm.tiles = fitted.tiles
        dm.setup("fit")
        dm.trainer = _fake_trainer(rank, world)
        return torch.cat([batch["location"] for batch in dm.train_dataloader()])

    one, zero, first = draw(0, 1), draw(0, 2), draw(1, 2)
    assert len(zero) == len(first) == len(one) // 2  # an epoch keeps its total length
    assert not torch.equal(zero, first)  # independent streams per rank
    assert torch.equal(zero, draw(0, 2))  # and seeded


def test_ddp_grid_shards_are_disjoint_and_cover(fitted: LSRDataModule) -> None:
    def grid(rank: int, world: int) -> set[tuple[int, ...]]:
        dm = make_dm()
        dm.tiles = fitted.tiles
        dm.setup("fit")
        dm.trainer = _fake_trainer(rank, world)
        locations = torch.cat([batch["location"] for batch in dm.val_dataloader()])
        return {tuple(x) for x in locations.tolist()}

    whole, a, b = grid(0, 1), grid(0, 2), grid(1, 2)
    assert a | b == whole
    assert not a & b


def test_ddp_with_lightning_sampler_injection_errors(fitted: LSRDataModule) -> None:
    dm = make_dm()
    dm.tiles = fitted.tiles
    dm.setup("fit")
    dm.trainer = _fake_trainer(0, 2, use_distributed_sampler=True)
    with pytest.raises(ValueError, match="use_distributed_sampler=False"):
        dm.train_dataloader()
