"""Tests for :mod:`torchgeo_lsr.samplers`.

Grid coverage is checked by painting every patch into per-tile count arrays (so a gap or
an overhang shows up as a pixel, not as a formula); random draws are checked against
their documented distribution with fixed seeds and chi-square bounds.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pytest

from torchgeo_lsr.samplers import (
    GridPatchSampler,
    MixedTileBatchSampler,
    PatchIndex,
    RandomPatchSampler,
    TileQuotaSampler,
    grid_offsets,
)

Shapes = list[tuple[int, int]]

#: Upper 0.1 % points of the chi-square distribution, by degrees of freedom.
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46, 7: 24.32}


def paint(shapes: Sequence[tuple[int, int]], patches: Iterable[PatchIndex]) -> list[np.ndarray]:
    """Count how often each pixel is covered; fail on any patch that leaves its tile."""
    counts = [np.zeros(shape, dtype=np.int64) for shape in shapes]
    for p in patches:
        h, w = shapes[p.tile]
        inside = p.row >= 0 and p.col >= 0 and p.row + p.size <= h and p.col + p.size <= w
        assert inside, f"{p} leaves tile of shape {(h, w)}"
        counts[p.tile][p.row : p.row + p.size, p.col : p.col + p.size] += 1
    return counts


def chi_square(observed: Sequence[int], expected: Sequence[float]) -> float:
    return float(sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True)))


@pytest.fixture
def mixed_shapes() -> Shapes:
    """Tiles of unequal area, some not multiples of any patch size used below."""
    return [(64, 64), (50, 37), (24, 24), (100, 30)]


# --------------------------------------------------------------------------------------
# grid_offsets
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extent", "size", "stride", "expected"),
    [
        (10, 4, 4, [0, 4, 6]),
        (8, 4, 4, [0, 4]),
        (4, 4, 4, [0]),
        (4, 4, 1, [0]),
        (10, 4, 3, [0, 3, 6]),
        (11, 4, 3, [0, 3, 6, 7]),
        (64, 24, 24, [0, 24, 40]),
        (7, 2, 2, [0, 2, 4, 5]),
    ],
)
def test_grid_offsets_values(extent: int, size: int, stride: int, expected: list[int]) -> None:
    assert grid_offsets(extent, size, stride) == expected


@pytest.mark.parametrize("extent", [5, 17, 24, 64, 99])
@pytest.mark.parametrize(("size", "stride"), [(5, 5), (5, 3), (5, 1), (4, 4), (3, 2)])
def test_grid_offsets_cover_exactly(extent: int, size: int, stride: int) -> None:
    offsets = grid_offsets(extent, size, stride)
    covered = np.zeros(extent, dtype=np.int64)
    for o in offsets:
        assert 0 <= o <= extent - size
        covered[o : o + size] += 1
    assert (covered >= 1).all()
    assert offsets[0] == 0
    assert offsets[-1] == extent - size
    assert offsets == sorted(set(offsets)), "offsets must be increasing without repeats"
    # Every step but the last (shifted inward) one is exactly the stride.
    steps = np.diff(offsets)
    assert (steps[:-1] == stride).all()
    assert len(steps) == 0 or 1 <= steps[-1] <= stride


def test_grid_offsets_errors() -> None:
    with pytest.raises(ValueError, match=r"window 5 is larger than the extent 4"):
        grid_offsets(4, 5, 1)
    with pytest.raises(ValueError, match=r"stride must be in \[1, window=4\].*got 0"):
        grid_offsets(10, 4, 0)
    with pytest.raises(ValueError, match=r"stride must be in \[1, window=4\].*got -2"):
        grid_offsets(10, 4, -2)


def test_grid_stride_larger_than_patch_is_refused_or_covers() -> None:
    shapes = [(64, 64)]
    try:
        sampler = GridPatchSampler(shapes, 8, stride=16)
    except ValueError as err:
        message = str(err)
    else:
        (counts,) = paint(shapes, sampler)
        assert (counts >= 1).all(), f"{int((counts == 0).sum())} pixels never covered"
        return
    assert "stride" in message


# --------------------------------------------------------------------------------------
# GridPatchSampler
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "stride"),
    [(16, None), (24, None), (24, 16), (24, 7), (13, 13), (8, 1), (24, 24)],
)
def test_grid_covers_every_pixel_and_stays_inside(
    mixed_shapes: Shapes, size: int, stride: int | None
) -> None:
    sampler = GridPatchSampler(mixed_shapes, size, stride)
    patches = list(sampler)
    assert len(patches) == len(sampler)
    assert all(isinstance(p, PatchIndex) and p.size == size for p in patches)
    assert len(set(patches)) == len(patches), "duplicate patches"
    counts = paint(mixed_shapes, patches)
    for tile, ((h, w), count) in enumerate(zip(mixed_shapes, counts, strict=True)):
        assert (count >= 1).all(), f"tile {tile}: {int((count == 0).sum())} pixels uncovered"
        rows = sorted({p.row for p in patches if p.tile == tile})
        cols = sorted({p.col for p in patches if p.tile == tile})
        assert rows[0] == 0
        assert cols[0] == 0
        assert rows[-1] == h - size, "last row offset must end at the tile's bottom edge"
        assert cols[-1] == w - size, "last column offset must end at the tile's right edge"
        # A full grid: every (row, col) pair of the offsets.
        assert len(rows) * len(cols) == sum(p.tile == tile for p in patches)


def test_grid_without_overlap_on_divisible_tiles_covers_each_pixel_once() -> None:
    shapes = [(64, 64), (32, 96), (16, 16)]
    sampler = GridPatchSampler(shapes, 16)
    counts = paint(shapes, sampler)
    assert all((c == 1).all() for c in counts)
    assert len(sampler) == 16 + 12 + 1


def test_grid_overlap_counts() -> None:
    # 40 px with size 24 and stride 16: offsets [0, 16]; rows 16..23 are covered twice.
    shapes = [(40, 40)]
    (counts,) = paint(shapes, GridPatchSampler(shapes, 24, stride=16))
    line = np.array([1] * 16 + [2] * 8 + [1] * 16)
    np.testing.assert_array_equal(counts, np.outer(line, line))


def test_grid_order_is_tile_by_tile_row_major() -> None:
    shapes = [(8, 12), (8, 8)]
    got = [tuple(p) for p in GridPatchSampler(shapes, 4)]
    expected = [(0, r, c, 4) for r in (0, 4) for c in (0, 4, 8)]
    expected += [(1, r, c, 4) for r in (0, 4) for c in (0, 4)]
    assert got == expected


@pytest.mark.parametrize("sampler_cls", [GridPatchSampler, RandomPatchSampler])
def test_tile_smaller_than_patch_errors(sampler_cls: type) -> None:
    shapes = [(64, 64), (20, 64), (64, 31)]
    kwargs = {"length": 4} if sampler_cls is RandomPatchSampler else {}
    with pytest.raises(ValueError, match=r"tiles \[1, 2\] are smaller than patch_size=32"):
        sampler_cls(shapes, 32, **kwargs)


@pytest.mark.parametrize("sampler_cls", [GridPatchSampler, RandomPatchSampler])
@pytest.mark.parametrize("size", [0, -3])
def test_patch_size_below_one_errors(sampler_cls: type, size: int) -> None:
    kwargs = {"length": 4} if sampler_cls is RandomPatchSampler else {}
    with pytest.raises(ValueError, match=rf"patch_size must be >= 1, got {size}"):
        sampler_cls([(8, 8)], size, **kwargs)


@pytest.mark.parametrize("stride", [0, -1])
def test_grid_stride_below_one_errors(stride: int) -> None:
    with pytest.raises(ValueError, match=rf"stride must be in \[1, window=\d+\].*got {stride}"):
        GridPatchSampler([(8, 8)], 4, stride=stride)


# --------------------------------------------------------------------------------------
# RandomPatchSampler
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, -5])
def test_random_length_below_one_errors(length: int) -> None:
    with pytest.raises(ValueError, match=rf"length must be >= 1, got {length}"):
        RandomPatchSampler([(8, 8)], 4, length)


def test_random_without_tiles_errors_early() -> None:
    with pytest.raises(ValueError, match=r"tile"):
        RandomPatchSampler([], 4, 4)


def test_random_patches_stay_inside_their_tile(mixed_shapes: Shapes) -> None:
    sampler = RandomPatchSampler(mixed_shapes, 24, 3000, seed=1)
    patches = list(sampler)
    assert len(patches) == len(sampler) == 3000
    assert all(isinstance(p, PatchIndex) and p.size == 24 for p in patches)
    paint(mixed_shapes, patches)  # asserts containment
    assert {p.tile for p in patches} == set(range(len(mixed_shapes)))


def test_random_offsets_are_uniform_and_reach_both_edges() -> None:
    # A 10 x 13 tile and 8 px patches: rows 0..2 and columns 0..5 are the valid offsets.
    sampler = RandomPatchSampler([(10, 13)], 8, 6000, seed=3)
    patches = list(sampler)
    rows = Counter(p.row for p in patches)
    cols = Counter(p.col for p in patches)
    assert sorted(rows) == [0, 1, 2]
    assert sorted(cols) == [0, 1, 2, 3, 4, 5]
    assert chi_square([rows[i] for i in range(3)], [2000.0] * 3) < CHI2_999[2]
    assert chi_square([cols[i] for i in range(6)], [1000.0] * 6) < CHI2_999[5]


def test_random_patch_equal_to_tile_is_the_whole_tile() -> None:
    patches = list(RandomPatchSampler([(16, 16), (16, 16)], 16, 50, seed=0))
    assert all(p.row == 0 and p.col == 0 for p in patches)


def test_random_is_reproducible_for_a_seed(mixed_shapes: Shapes) -> None:
    a = list(RandomPatchSampler(mixed_shapes, 16, 200, seed=7))
    b = list(RandomPatchSampler(mixed_shapes, 16, 200, seed=7))
    c = list(RandomPatchSampler(mixed_shapes, 16, 200, seed=8))
    assert a == b
    assert a != c
    # Not a shifted copy either: most positions differ.
    assert sum(x == y for x, y in zip(a, c, strict=True)) < 20


def test_random_epochs_differ_and_set_epoch_replays(mixed_shapes: Shapes) -> None:
    sampler = RandomPatchSampler(mixed_shapes, 16, 200, seed=7)
    epoch0 = list(sampler)
    epoch1 = list(sampler)  # a full pass moves on to the next epoch
    assert epoch0 != epoch1
    assert sum(x == y for x, y in zip(epoch0, epoch1, strict=True)) < 20
    sampler.set_epoch(0)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) == epoch1
    fresh = RandomPatchSampler(mixed_shapes, 16, 200, seed=7)
    fresh.set_epoch(1)
    assert list(fresh) == epoch1


def test_random_draws_tiles_in_proportion_to_area(mixed_shapes: Shapes) -> None:
    n = 5000
    areas = np.array([h * w for h, w in mixed_shapes], dtype=np.float64)
    expected = n * areas / areas.sum()
    for seed in range(3):
        counts = Counter(p.tile for p in RandomPatchSampler(mixed_shapes, 16, n, seed=seed))
        observed = [counts[i] for i in range(len(mixed_shapes))]
        stat = chi_square(observed, expected.tolist())
        assert stat < CHI2_999[len(mixed_shapes) - 1], (observed, expected.round(1).tolist())


def test_random_batches_mix_tiles() -> None:
    # 4 equal tiles, batches of 8: P(one tile only) = 4 / 4**8 ~ 6e-5 per batch, and
    # E[distinct tiles] = 4 * (1 - (3/4)**8) ~ 3.6 for independent draws.
    batch, n_batches = 8, 1000
    tiles = [p.tile for p in RandomPatchSampler([(32, 32)] * 4, 8, batch * n_batches, seed=0)]
    distinct = [len(set(tiles[i : i + batch])) for i in range(0, len(tiles), batch)]
    assert sum(d == 1 for d in distinct) <= 1
    assert 3.45 < float(np.mean(distinct)) < 3.75
    # Consecutive draws are not correlated: the next tile equals the current one ~1/4.
    same = np.mean([a == b for a, b in itertools.pairwise(tiles)])
    assert 0.22 < same < 0.28


# --------------------------------------------------------------------------------------
# TileQuotaSampler and MixedTileBatchSampler
# --------------------------------------------------------------------------------------


def test_quota_gives_every_tile_its_share_inside_bounds() -> None:
    shapes = [(64, 64), (100, 80), (40, 200)]
    patches = list(TileQuotaSampler(shapes, 32, per_tile=7, seed=3))
    assert len(patches) == 21
    assert Counter(p.tile for p in patches) == {0: 7, 1: 7, 2: 7}
    for t, r, c, s in patches:
        h, w = shapes[t]
        assert 0 <= r <= h - s
        assert 0 <= c <= w - s
    # interleaved: the first 6 patches already come from more than one tile
    assert len({p.tile for p in patches[:6]}) > 1


def test_quota_reproducible_per_epoch() -> None:
    sampler = TileQuotaSampler([(64, 64)] * 3, 16, per_tile=4, seed=1)
    sampler.set_epoch(2)
    first = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) == first
    sampler.set_epoch(3)
    assert list(sampler) != first


def test_mixed_batches_use_distinct_tiles() -> None:
    shapes = [(64, 64)] * 5
    batches = list(MixedTileBatchSampler(shapes, 16, batch_size=8, length=20, seed=0))
    assert len(batches) == 20
    for batch in batches:
        assert len(batch) == 8
        assert len({p.tile for p in batch}) == 5  # every tile in every batch of 8
    capped = list(MixedTileBatchSampler(shapes, 16, 8, 10, tiles_per_batch=2, seed=0))
    assert all(len({p.tile for p in b}) == 2 for b in capped)


@pytest.mark.parametrize(
    ("cls", "args", "match"),
    [
        (TileQuotaSampler, ([(8, 8)], 4, 0), "per_tile must be >= 1"),
        (MixedTileBatchSampler, ([(8, 8)], 4, 0, 1), "batch_size and length"),
        (MixedTileBatchSampler, ([], 4, 2, 1), "no tiles"),
    ],
)
def test_batch_sampler_errors(cls: type, args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(*args)


@pytest.mark.parametrize("world", [2, 3])
def test_grid_shards_partition_the_grid(world: int) -> None:
    shapes = [(40, 56), (33, 20)]
    whole = list(GridPatchSampler(shapes, 16, stride=12))
    shards = [list(GridPatchSampler(shapes, 16, 12, rank, world)) for rank in range(world)]
    assert sorted(p for shard in shards for p in shard) == sorted(whole)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    with pytest.raises(ValueError, match="rank must be in"):
        GridPatchSampler(shapes, 16, rank=world, num_replicas=world)
