"""Tests for :mod:`torchgeo_lsr.samplers.geo`: our patch samplers on TorchGeo GeoDatasets.

The datasets are TorchGeo's own ``RasterDataset`` over small GeoTIFFs written here with
rasterio (tiles of different sizes in different places, one too small for the patches,
x and y res unequal so a swapped axis shows). Expected queries are computed by hand from
each file's origin; pixels read through a DataLoader are compared with an independent
rasterio window read of the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window
from torch.utils.data import DataLoader
from torchgeo.datasets import GeoDataset, IntersectionDataset, RasterDataset, stack_samples
from torchgeo.samplers import BatchGeoSampler, GeoSampler

from torchgeo_lsr.samplers import (
    GeoTile,
    GridGeoPatchSampler,
    GridPatchSampler,
    MixedTileBatchGeoSampler,
    MixedTileBatchSampler,
    PatchIndex,
    RandomGeoPatchSampler,
    RandomPatchSampler,
    TileQuotaGeoSampler,
    TileQuotaSampler,
    geo_tiles,
    grid_offsets,
    patch_query,
)

XRES, YRES = 2.0, 1.0
CRS = "EPSG:32618"
SIZE = 8


class Spec(NamedTuple):
    name: str
    west: float
    north: float
    height: int
    width: int
    value: int  # pixel (r, c) holds value + r * width + c


IMAGES = [
    Spec("tile_20200101_a.tif", 500_000.0, 4_100_000.0, 40, 50, 0),
    Spec("tile_20210601_b.tif", 503_000.0, 4_110_000.0, 24, 33, 100_000),
    Spec("tile_20220301_c.tif", 510_000.0, 4_100_000.0, 6, 9, 200_000),  # < SIZE rows
]
#: Mask A covers rows 10..40, columns 5..45 of image A; mask B covers image B exactly.
MASKS = [
    Spec("mask_a.tif", 500_000.0 + 5 * XRES, 4_100_000.0 - 10 * YRES, 30, 40, 300_000),
    Spec("mask_b.tif", 503_000.0, 4_110_000.0, 24, 33, 400_000),
]


class Images(RasterDataset):
    filename_glob = "tile_*.tif"
    filename_regex = r"^tile_(?P<date>\d{8})_\w+\.tif$"
    date_format = "%Y%m%d"
    is_image = True


class Masks(RasterDataset):
    filename_glob = "mask_*.tif"
    is_image = False


def pixels(spec: Spec) -> np.ndarray:
    return (spec.value + np.arange(spec.height * spec.width).reshape(spec.height, spec.width))[
        None
    ].astype(np.float32 if spec.name.startswith("tile") else np.int32)


def write(root: Path, specs: Iterable[Spec]) -> None:
    for s in specs:
        data = pixels(s)
        with rasterio.open(
            root / s.name,
            "w",
            driver="GTiff",
            height=s.height,
            width=s.width,
            count=1,
            dtype=data.dtype,
            crs=CRS,
            transform=from_origin(s.west, s.north, XRES, YRES),
        ) as dst:
            dst.write(data)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path, IMAGES)
    write(tmp_path, MASKS)
    return tmp_path


@pytest.fixture
def images(root: Path) -> Images:
    return Images(str(root))


def spec_of(ds: GeoDataset, iloc: int, specs: list[Spec] = IMAGES) -> Spec:
    name = Path(ds.index.filepath.iloc[iloc]).name
    return next(s for s in specs if s.name == name)


def kept(ds: GeoDataset) -> list[Spec]:
    """The image specs of the tiles a sampler keeps, in index order (C is too small)."""
    return [spec_of(ds, i) for i in range(len(ds.index)) if spec_of(ds, i).height >= SIZE]


def expected(ds: GeoDataset, specs: list[Spec], p: PatchIndex) -> tuple[slice, slice, slice]:
    """The query of pixel patch ``p`` of ``specs[p.tile]``, written out from the file."""
    s = specs[p.tile]
    iloc = next(i for i in range(len(ds.index)) if spec_of(ds, i).name == s.name)
    interval = ds.index.index[iloc]
    minx = s.west + p.col * XRES
    maxy = s.north - p.row * YRES
    return (
        slice(minx, minx + p.size * XRES, XRES),
        slice(maxy - p.size * YRES, maxy, YRES),
        slice(interval.left, interval.right, 1),
    )


def footprint_of(query: tuple[slice, slice, slice], specs: list[Spec]) -> Spec:
    """The one spec whose footprint holds the query's window (fails if none or several)."""
    x, y, _ = query
    hits = [
        s
        for s in specs
        if s.west <= x.start
        and x.stop <= s.west + s.width * XRES
        and s.north - s.height * YRES <= y.start
        and y.stop <= s.north
    ]
    assert len(hits) == 1, f"{query} lies in {[h.name for h in hits]}"
    return hits[0]


def read(root: Path, spec: Spec, row: int, col: int, size: int) -> np.ndarray:
    """An independent read: the ``size`` px window at ``(row, col)`` of ``spec``'s file."""
    with rasterio.open(root / spec.name) as src:
        return src.read(window=Window(col, row, size, size))


def window_of(query: tuple[slice, slice, slice], spec: Spec) -> tuple[int, int]:
    """Pixel (row, col) of the query's top-left corner in ``spec``'s file (exact integers)."""
    x, y, _ = query
    col = (x.start - spec.west) / XRES
    row = (spec.north - y.stop) / YRES
    assert col == int(col), (row, col)
    assert row == int(row), (row, col)
    return int(row), int(col)


# --------------------------------------------------------------------------------------
# tiles and queries
# --------------------------------------------------------------------------------------


def test_tiles_are_the_footprints_in_pixels(images: Images) -> None:
    tiles, res = geo_tiles(images, SIZE)
    assert res == (XRES, YRES)
    specs = kept(images)
    assert [spec_of(images, t.iloc).name for t in tiles] == [s.name for s in specs]
    assert "tile_20220301_c.tif" not in [s.name for s in specs]  # 6 rows < SIZE: dropped
    for t, s in zip(tiles, specs, strict=True):
        assert (t.left, t.top, t.shape) == (s.west, s.north, (s.height, s.width))
        assert t.interval == images.index.index[t.iloc]
    date = pd.Timestamp(specs[0].name.split("_")[1])  # the date in the file name
    assert tiles[0].interval.left == date
    assert tiles[0].interval.right < date + pd.Timedelta(days=1)


def test_patch_query_row_zero_is_the_top_edge() -> None:
    t = pd.Timestamp("2020-01-01")
    tile = GeoTile(0, left=10.0, top=100.0, shape=(20, 30), interval=pd.Interval(t, t))
    x, y, time = patch_query(tile, PatchIndex(0, 0, 0, 4), (2.0, 1.0))
    assert (x.start, x.stop, x.step) == (10.0, 18.0, 2.0)
    assert (y.start, y.stop, y.step) == (96.0, 100.0, 1.0)
    assert (time.start, time.stop, time.step) == (t, t, 1)
    x, y, _ = patch_query(tile, PatchIndex(0, 16, 26, 4), (2.0, 1.0))
    assert (x.start, x.stop, y.start, y.stop) == (62.0, 70.0, 80.0, 84.0)  # bottom-right


def check_queries(
    ds: GeoDataset, queries: Iterable[tuple[slice, slice, slice]], size: int = SIZE
) -> None:
    """Every query lies in one footprint, spans size * res, steps res, has its row's time."""
    for q in queries:
        x, y, t = q
        s = footprint_of(q, IMAGES)
        assert (x.stop - x.start, y.stop - y.start) == (size * XRES, size * YRES)
        assert (x.step, y.step, t.step) == (XRES, YRES, 1)
        iloc = next(i for i in range(len(ds.index)) if spec_of(ds, i).name == s.name)
        assert (t.start, t.stop) == (ds.index.index[iloc].left, ds.index.index[iloc].right)
        window_of(q, s)  # on the file's pixel grid


# --------------------------------------------------------------------------------------
# the same random stream as the pixel samplers
# --------------------------------------------------------------------------------------


def test_random_stream_is_the_pixel_samplers(images: Images) -> None:
    sampler = RandomGeoPatchSampler(images, SIZE, length=60, seed=7)
    assert isinstance(sampler, GeoSampler)
    specs = kept(images)
    shapes = [(s.height, s.width) for s in specs]
    assert sampler.shapes == shapes
    pixel = RandomPatchSampler(shapes, SIZE, 60, seed=7)
    for epoch in range(2):
        got = list(sampler)
        assert got == [expected(images, specs, p) for p in pixel]
        check_queries(images, got)
        assert sampler.epoch == pixel.epoch == epoch + 1
    assert len(sampler) == 60
    assert {footprint_of(q, IMAGES).name for q in got} == {s.name for s in specs}
    sampler.set_epoch(5)
    pixel.set_epoch(5)
    assert list(sampler) == [expected(images, specs, p) for p in pixel]


def test_tile_quota_stream_is_the_pixel_samplers(images: Images) -> None:
    sampler = TileQuotaGeoSampler(images, SIZE, per_tile=9, seed=3)
    specs = kept(images)
    pixel = TileQuotaSampler([(s.height, s.width) for s in specs], SIZE, 9, seed=3)
    got = list(sampler)
    assert got == [expected(images, specs, p) for p in pixel]
    check_queries(images, got)
    assert len(sampler) == len(got) == 9 * len(specs)
    counts = {s.name: 0 for s in specs}
    for q in got:
        counts[footprint_of(q, IMAGES).name] += 1
    assert set(counts.values()) == {9}


def test_batches_are_the_pixel_samplers_and_mix_tiles(images: Images) -> None:
    sampler = MixedTileBatchGeoSampler(images, SIZE, batch_size=4, length=12, seed=1)
    assert isinstance(sampler, BatchGeoSampler)
    specs = kept(images)
    pixel = MixedTileBatchSampler([(s.height, s.width) for s in specs], SIZE, 4, 12, seed=1)
    got = list(sampler)
    assert got == [[expected(images, specs, p) for p in batch] for batch in pixel]
    assert len(sampler) == len(got) == 12
    for batch in got:
        assert len(batch) == 4
        check_queries(images, batch)
        assert len({footprint_of(q, IMAGES).name for q in batch}) == len(specs)


@pytest.mark.parametrize("kind", ["random", "quota", "batch"])
def test_resume_at_skips_exactly(images: Images, kind: str) -> None:
    def make() -> RandomGeoPatchSampler | TileQuotaGeoSampler | MixedTileBatchGeoSampler:
        if kind == "random":
            return RandomGeoPatchSampler(images, SIZE, length=20, seed=11)
        if kind == "quota":
            return TileQuotaGeoSampler(images, SIZE, per_tile=7, seed=11)
        return MixedTileBatchGeoSampler(images, SIZE, batch_size=3, length=9, seed=11)

    full = make()
    full.set_epoch(2)
    epoch2, epoch3 = list(full), list(full)
    resumed = make()
    resumed.set_epoch(2)
    resumed.resume_at(2, 5)
    assert list(resumed) == epoch2[5:]
    assert list(resumed) == epoch3  # the skip is spent; the next epoch is whole
    other = make()
    other.set_epoch(2)
    other.resume_at(4, 5)  # asks for another epoch: nothing skipped in this one
    assert list(other) == epoch2
    with pytest.raises(ValueError, match="items must be >= 0"):
        full.resume_at(0, -1)


# --------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [None, 5])
def test_grid_covers_each_tile_as_grid_offsets_says(images: Images, stride: int | None) -> None:
    sampler = GridGeoPatchSampler(images, SIZE, stride=stride)
    specs = kept(images)
    step = SIZE if stride is None else stride
    got = list(sampler)
    check_queries(images, got)
    want = [
        expected(images, specs, PatchIndex(t, r, c, SIZE))
        for t, s in enumerate(specs)
        for r in grid_offsets(s.height, SIZE, step)
        for c in grid_offsets(s.width, SIZE, step)
    ]
    assert got == want
    assert len(sampler) == len(want)
    assert list(sampler.patches) == GridPatchSampler(sampler.shapes, SIZE, stride).indices
    for s in specs:  # every pixel of every kept tile, none outside
        count = np.zeros((s.height, s.width), dtype=np.int64)
        for q in got:
            if footprint_of(q, IMAGES) == s:
                r, c = window_of(q, s)
                count[r : r + SIZE, c : c + SIZE] += 1
        assert count.min() >= 1


def test_grid_shards_are_disjoint_and_cover(images: Images) -> None:
    whole = list(GridGeoPatchSampler(images, SIZE))
    shards = [list(GridGeoPatchSampler(images, SIZE, rank=r, num_replicas=3)) for r in range(3)]
    assert sorted(repr(q) for shard in shards for q in shard) == sorted(map(repr, whole))
    assert sum(map(len, shards)) == len(whole)


# --------------------------------------------------------------------------------------
# through a DataLoader: pixels equal a rasterio window read of the file
# --------------------------------------------------------------------------------------


def check_batch(
    root: Path, batch: dict[str, torch.Tensor], queries: list[tuple[slice, slice, slice]]
) -> None:
    assert batch["image"].shape == (len(queries), 1, SIZE, SIZE)
    for image, q in zip(batch["image"], queries, strict=True):
        s = footprint_of(q, IMAGES)
        want = read(root, s, *window_of(q, s), SIZE)
        np.testing.assert_array_equal(image.numpy(), want)


def test_loader_reads_the_expected_pixels(root: Path, images: Images) -> None:
    sampler = RandomGeoPatchSampler(images, SIZE, length=10, seed=2)
    queries = list(sampler)
    sampler.set_epoch(0)
    loader = DataLoader(images, sampler=sampler, batch_size=5, collate_fn=stack_samples)
    batches = list(loader)
    assert len(batches) == 2
    for i, batch in enumerate(batches):
        check_batch(root, batch, queries[5 * i : 5 * i + 5])


def test_batch_sampler_loader_reads_the_expected_pixels(root: Path, images: Images) -> None:
    sampler = MixedTileBatchGeoSampler(images, SIZE, batch_size=4, length=3, seed=4)
    queries = list(sampler)
    sampler.set_epoch(0)
    loader = DataLoader(images, batch_sampler=sampler, collate_fn=stack_samples)
    batches = list(loader)
    assert len(batches) == 3
    for batch, qs in zip(batches, queries, strict=True):
        check_batch(root, batch, qs)


def test_grid_loader_reads_the_expected_pixels(root: Path, images: Images) -> None:
    sampler = GridGeoPatchSampler(images, SIZE, stride=6)
    queries = list(sampler)
    loader = DataLoader(images, sampler=sampler, batch_size=16, collate_fn=stack_samples)
    start = 0
    for batch in loader:
        n = len(batch["image"])
        check_batch(root, batch, queries[start : start + n])
        start += n
    assert start == len(queries)


def test_intersection_dataset(root: Path) -> None:
    images = Images(str(root))
    masks = Masks(str(root))
    both = images & masks
    assert isinstance(both, IntersectionDataset)
    sampler = RandomGeoPatchSampler(both, SIZE, length=12, seed=5)
    tiles = {(t.left, t.top): t.shape for t in sampler.tiles}
    # The footprints of the intersection: mask A inside image A, and image B.
    assert tiles == {(m.west, m.north): (m.height, m.width) for m in MASKS}
    queries = list(sampler)
    sampler.set_epoch(0)
    loader = DataLoader(both, sampler=sampler, batch_size=6, collate_fn=stack_samples)
    done = 0
    for batch in loader:
        assert batch["mask"].shape == (6, SIZE, SIZE)
        for image, mask, q in zip(batch["image"], batch["mask"], queries[done:], strict=False):
            image_spec, mask_spec = footprint_of(q, IMAGES), footprint_of(q, MASKS)
            np.testing.assert_array_equal(
                image.numpy(), read(root, image_spec, *window_of(q, image_spec), SIZE)
            )
            np.testing.assert_array_equal(
                mask.numpy(), read(root, mask_spec, *window_of(q, mask_spec), SIZE)[0]
            )
        done += len(batch["image"])
    assert done == 12
    assert {footprint_of(q, MASKS).name for q in queries} == {"mask_a.tif", "mask_b.tif"}


# --------------------------------------------------------------------------------------
# roi and errors
# --------------------------------------------------------------------------------------


def test_roi_keeps_whole_pixels_of_the_footprint_grid(images: Images) -> None:
    a = IMAGES[0]
    # Cuts image A mid-pixel on every side; misses B and C entirely.
    roi = shapely.box(
        a.west + 3.3 * XRES, a.north - 30.5 * YRES, a.west + 41.7 * XRES, a.north - 2.2 * YRES
    )
    sampler = RandomGeoPatchSampler(images, SIZE, length=50, seed=0, roi=roi)
    assert len(sampler.tiles) == 1
    t = sampler.tiles[0]
    assert (t.left, t.top, t.shape) == (a.west + 4 * XRES, a.north - 3 * YRES, (27, 37))
    for q in sampler:
        x, y, _ = q
        assert roi.covers(shapely.box(x.start, y.start, x.stop, y.stop))
        r, c = window_of(q, a)
        assert 3 <= r <= 30 - SIZE
        assert 4 <= c <= 41 - SIZE


def test_too_small_tiles_raise_one_clear_error(images: Images) -> None:
    with pytest.raises(ValueError, match=r"no footprint of dataset.index holds a 41 x 41 px"):
        RandomGeoPatchSampler(images, 41, length=5)
    with pytest.raises(ValueError, match=r"shapes \(H, W\) px"):
        GridGeoPatchSampler(images, 60)
    with pytest.raises(ValueError, match="patch_size must be >= 1"):
        TileQuotaGeoSampler(images, 0, per_tile=1)


def test_empty_dataset_raises_one_clear_error(images: Images) -> None:
    far = shapely.box(0, 0, 10, 10)
    with pytest.raises(ValueError, match="inside roi"):
        MixedTileBatchGeoSampler(images, SIZE, batch_size=2, length=2, roi=far)
    images.index = images.index.iloc[:0]
    with pytest.raises(ValueError, match=r"dataset\.index is empty"):
        RandomGeoPatchSampler(images, SIZE, length=5)


def test_pixel_sampler_errors_pass_through(images: Images) -> None:
    with pytest.raises(ValueError, match="length must be >= 1"):
        RandomGeoPatchSampler(images, SIZE, length=0)
    with pytest.raises(ValueError, match="stride must be in"):
        GridGeoPatchSampler(images, SIZE, stride=SIZE + 1)
