"""Our datasets as TorchGeo ``GeoDataset``s: composed with TorchGeo's own, drawn by its samplers.

Values are checked against independent reads: rasterio windows, ``rasterio.features.rasterize``
of the file as geopandas reads it, and NLCD cells looked up pixel centre by pixel centre with
pyproj. The generated sample city is the region (NAIP, NLCD, OSM and footprints overlap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import torch
import torchgeo.datasets as tgd
import torchgeo.samplers
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.windows import Window
from torch.utils.data import DataLoader
from torchgeo.datasets import IntersectionDataset, stack_samples

from torchgeo_lsr.classes import NLCD as NLCD_CLASSES
from torchgeo_lsr.classes import get_scheme
from torchgeo_lsr.datasets import (
    NAIP,
    NLCD,
    BuildingFootprints,
    Grid,
    LSRLayers,
    OSMRoads,
    Prior,
)
from torchgeo_lsr.formats import read_prior, write_prior
from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors
from torchgeo_lsr.priors.transform import PriorTransform
from torchgeo_lsr.region import Region
from torchgeo_lsr.sample_city import make_sample_city

# TorchGeo's samplers on both lines (0.10 renames them and keeps the old names, deprecated).
RandomSampler = (
    getattr(torchgeo.samplers, "RandomPatchSampler", None) or torchgeo.samplers.RandomGeoSampler
)
GridSampler = (
    getattr(torchgeo.samplers, "GriddedPatchSampler", None) or torchgeo.samplers.GridGeoSampler
)
#: 0.9+ puts the resolved slice in ``bounds`` as 9 numbers and adds ``transform``.
TENSOR_METADATA = hasattr(tgd.GeoDataset, "_slice_to_tensor")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compose") / "city"
    make_sample_city(root, seed=3, tiles=2, size=192, progress=False)
    return root


def _grid(crs: Any, q: tuple[float, float, float, float, float]) -> Grid:
    x0, x1, y0, y1, res = q
    return Grid(crs, from_origin(x0, y1, res, res), round((y1 - y0) / res), round((x1 - x0) / res))


def _nlcd_by_centres(path: Path, grid: Grid) -> np.ndarray:
    """NLCD index at each pixel centre of ``grid``: the 30 m cell that holds it (pyproj)."""
    with rasterio.open(path) as src:
        codes, inverse, crs = src.read(1), ~src.transform, src.crs
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width] + 0.5
    xs, ys = grid.transform * (cols, rows)
    to = pyproj.Transformer.from_crs(grid.crs.to_wkt(), crs.to_wkt(), always_xy=True)
    cx, cy = to.transform(xs, ys)
    c, r = inverse * (cx, cy)
    r, c = np.floor(r).astype(int), np.floor(c).astype(int)
    inside = (r >= 0) & (r < codes.shape[0]) & (c >= 0) & (c < codes.shape[1])
    raw = np.where(
        inside, codes[np.clip(r, 0, codes.shape[0] - 1), np.clip(c, 0, codes.shape[1] - 1)], 0
    )
    return np.where(raw > 0, NLCD_CLASSES.code_to_index(np.where(raw > 0, raw, 11)), 0)


def test_every_source_is_a_geodataset_with_torchgeos_attributes(city: Path) -> None:
    naip, nlcd = NAIP(city / "naip"), NLCD(city / "nlcd")
    roads = OSMRoads(city / "osm")
    for ds in (naip, nlcd, roads):
        assert isinstance(ds, tgd.GeoDataset)
        x, y, _ = ds.bounds
        assert (x.start, y.start, x.stop, y.stop) == pytest.approx(ds.extent)
        assert (x.step, y.step) == ds.res
        assert ds.index.index.name == "datetime"
    # NAIP files span their acquisition day exactly as TorchGeo's NAIP indexes them
    theirs = tgd.NAIP(city / "naip")
    assert list(naip.index.index) == list(theirs.index.index)
    assert naip.res == theirs.res == (1.0, 1.0)
    # NLCD spans all time (TorchGeo's gives 2021 only: a 2022 NAIP tile would not meet it)
    assert nlcd.index.index[0].left.year < 1700
    assert nlcd.index.index[0].right.year > 2200
    assert nlcd.res == (30.0, 30.0)
    assert len(roads) == 1  # the features are read once, as one row


def test_our_naip_answers_as_torchgeos_naip(city: Path) -> None:
    """Same keys, same pixels, same metadata for every query of TorchGeo's grid sampler."""
    theirs, ours = tgd.NAIP(city / "naip"), NAIP(city / "naip")
    queries = list(GridSampler(theirs, size=64, stride=64))
    assert len(queries) == 2 * 9
    for q in queries:
        a, b = theirs[q], ours[q]
        assert set(a) == set(b)
        torch.testing.assert_close(b["image"], a["image"])
        if TENSOR_METADATA:
            torch.testing.assert_close(b["bounds"], a["bounds"])
            torch.testing.assert_close(b["transform"], a["transform"])
        else:
            assert b["bounds"] == a["bounds"]
            assert pyproj.CRS(b["crs"].to_wkt()) == pyproj.CRS(a["crs"])


def test_torchgeo_naip_and_our_footprints(city: Path) -> None:
    naip = tgd.NAIP(city / "naip")
    buildings = BuildingFootprints(city / "buildings")
    ds = naip & buildings
    # The queries as drawn (0.9+ keeps them in ``bounds`` as float32: too coarse at 4e6 m)
    queries = list(RandomSampler(ds, size=48, length=8))
    loader = DataLoader(ds, sampler=queries, batch_size=4, collate_fn=stack_samples)
    frame = gpd.read_file(city / "buildings" / "footprints.geojson").to_crs(naip.crs)
    burnt = 0
    for b, batch in enumerate(loader):
        assert batch["image"].shape == (4, 4, 48, 48)
        assert batch["mask"].shape == (4, 48, 48)
        for i, q in enumerate(queries[4 * b : 4 * b + 4]):
            x, y = q[0], q[1]
            grid = _grid(naip.crs, (x.start, x.stop, y.start, y.stop, naip.res[0]))
            expected = rasterize(
                ((g, 1) for g in frame.geometry),
                out_shape=grid.shape,
                transform=grid.transform,
                fill=0,
                dtype="uint8",
            )
            np.testing.assert_array_equal(batch["mask"][i].numpy(), expected)
            burnt += int(expected.sum())
    assert burnt > 0  # the check saw buildings


def test_our_nlcd_and_torchgeos_raster_dataset_of_priors(city: Path, tmp_path: Path) -> None:
    """A TorchGeo RasterDataset of prior files & our NLCD, reprojected onto the prior's grid."""
    scheme = get_scheme("enviroatlas5")
    rng = np.random.default_rng(0)
    for path in sorted((city / "naip").glob("*.tif")):
        grid = Grid.of_raster(path)
        probs = rng.dirichlet(np.ones(5), size=grid.shape).transpose(2, 0, 1).astype(np.float32)
        write_prior(tmp_path / path.name, probs, grid, scheme, key="test")

    class PriorFiles(tgd.RasterDataset):  # type: ignore[misc]
        filename_glob = "m_*.tif"
        is_image = True

    priors = PriorFiles(tmp_path)
    nlcd_path = next((city / "nlcd").glob("*.tif"))
    ds = priors & NLCD(city / "nlcd")
    queries = list(GridSampler(ds, size=40, stride=40))
    assert queries
    seen = set()
    for q in queries:
        sample = ds[q]
        x, y = q[0], q[1]  # 0.10 samplers yield (x, y)
        grid = _grid(priors.crs, (x.start, x.stop, y.start, y.stop, x.step or priors.res[0]))
        expected = _nlcd_by_centres(nlcd_path, grid)
        np.testing.assert_array_equal(sample["mask"].numpy(), expected)
        assert sample["image"].shape == (5, *grid.shape)
        seen |= set(np.unique(expected).tolist())
    assert len(seen) >= 3


def test_the_grid_face_and_the_geoslice_face_read_the_same(city: Path, tmp_path: Path) -> None:
    naip = NAIP(city / "naip")
    grid = Grid.of_raster(naip.files[0]).window(17, 145, 50, 45)  # where there are buildings
    write_prior(
        tmp_path / "p.tif",
        np.full((5, 192, 192), 0.2, np.float32),
        Grid.of_raster(naip.files[0]),
        get_scheme("enviroatlas5"),
        key="k",
        dtype="uint8",
    )
    w, s, e, n = grid.bounds
    query = (slice(w, e, 1.0), slice(s, n, 1.0))
    for ds, key in (
        (naip, "image"),
        (NLCD(city / "nlcd", crs=naip.crs, res=1.0), "mask"),
        (BuildingFootprints(city / "buildings", crs=naip.crs, res=1.0), "mask"),
        (OSMRoads(city / "osm", crs=naip.crs, res=1.0), "mask"),
        (Prior(tmp_path), "prior"),
    ):
        by_grid, by_slice = ds[grid], ds[query]
        torch.testing.assert_close(by_slice[key], by_grid[key])
        assert "valid" not in by_slice
    with pytest.raises(IndexError, match="not found in index"):
        naip[slice(0.0, 10.0, 1.0), slice(0.0, 10.0, 1.0)]
    with pytest.raises(IndexError, match="not found in index"):
        BuildingFootprints(city / "buildings")[slice(0.0, 1e-3, 1e-5), slice(0.0, 1e-3, 1e-5)]


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_prior_layer_decodes_its_stored_scale(city: Path, tmp_path: Path, dtype: str) -> None:
    naip = NAIP(city / "naip")
    scheme = get_scheme("enviroatlas5")
    rng = np.random.default_rng(1)
    for path in naip.files:
        grid = Grid.of_raster(path)
        probs = rng.dirichlet(np.ones(5), size=grid.shape).transpose(2, 0, 1).astype(np.float32)
        write_prior(tmp_path / Path(path).name, probs, grid, scheme, key="k", dtype=dtype)  # type: ignore[arg-type]
    prior = Prior(tmp_path)
    assert prior.scheme == "enviroatlas5"
    ds = naip & prior
    for path in naip.files:  # windows inside each file, read back with rasterio
        with rasterio.open(tmp_path / Path(path).name) as src:
            for row, col in ((0, 0), (80, 17), (160, 160)):
                window = Window(col, row, 32, 32)
                w, s, e, n = src.window_bounds(window)
                sample = ds[slice(w, e, 1.0), slice(s, n, 1.0)]
                assert set(sample) >= {"image", "prior"}
                expected = read_prior(src, window)
                np.testing.assert_allclose(sample["prior"].numpy(), expected, atol=1e-6)
                if dtype == "uint8":  # decoded, not raw codes
                    assert float(sample["prior"].max()) <= 1.0
    with pytest.raises(TypeError, match="bands"):
        Prior(tmp_path, bands=["a"])


def test_torchgeo_sampler_with_the_prior_transform_matches_the_written_prior(
    city: Path, tmp_path: Path
) -> None:
    """``NAIP & NLCD & BuildingFootprints`` + PriorTransform = ``prior``'s output.

    (TorchGeo's ``&`` cannot chain a fourth dataset: ``gpd.overlay`` refuses the duplicate
    ``filepath_1``/``filepath_2`` columns, for TorchGeo's own datasets as for ours; so the
    OSM layers are left out here and covered by tests/test_prior_transform.py.)
    """
    config = PriorConfig(aux=("buildings",))
    region = Region.open(city)
    build_region_priors(region, tmp_path / "prior", config, progress=False)
    naip = NAIP(city / "naip")
    layers = IntersectionDataset(
        naip & NLCD(city / "nlcd"),
        BuildingFootprints(city / "buildings", sample_key="buildings"),
        transforms=PriorTransform(config, aux={"buildings": "buildings"}, crop=config.margin),
    )
    m = config.margin
    for path in naip.files:
        grid = Grid.of_raster(path)
        ((_, padded),) = grid.windows(config.window, m)  # one window per tile
        w, s, e, n = padded.bounds
        t = layers.bounds[2]
        sample = layers[slice(w, e, 1.0), slice(s, n, 1.0), t]
        with rasterio.open(tmp_path / "prior" / Path(path).name) as src:
            written = read_prior(src)
        assert sample["prior"].shape == written.shape
        np.testing.assert_allclose(sample["prior"].numpy(), written, atol=1e-6)
        assert sample["image"].shape == (4, *padded.shape)


def test_plots_of_vector_sources_and_patches(city: Path) -> None:
    import matplotlib.pyplot as plt

    from torchgeo_lsr.datasets import PatchDataset, read_aligned_tile

    naip = NAIP(city / "naip")
    buildings = BuildingFootprints(city / "buildings")
    ds = naip & buildings
    q = next(iter(RandomSampler(ds, size=64, length=1)))
    sample = ds[q]
    fig = buildings.plot(sample, suptitle="footprints")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Image", "buildings over image", "Mask"]
    overlay = fig.axes[1].get_images()[0].get_array()
    mask = sample["mask"].numpy() > 0
    assert mask.any()
    np.testing.assert_allclose(
        np.asarray(overlay)[mask][:, 1],
        0.4 * np.asarray(fig.axes[0].get_images()[0].get_array())[mask][:, 1],
    )
    plt.close(fig)
    alone = buildings.plot(buildings[q])
    assert [ax.get_title() for ax in alone.axes] == ["Mask"]
    plt.close(alone)
    tile = read_aligned_tile(Path(naip.files[0]), prior_path=None)
    patches = PatchDataset([tile])
    patch = patches[(0, 0, 0, 32)]
    patch["prior"] = torch.full((5, 32, 32), 0.2)
    fig = patches.plot(patch, suptitle="a patch")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["image", "prior"]
    assert fig.axes[1].get_images()[0].get_array().shape == (32, 32, 3)  # 5 default colours
    plt.close(fig)


TINY = Path(__file__).parent / "data" / "tiny"
TINY_MAP = {1: 0, 2: 1, 3: 2, 4: 3}


def test_lsr_layers_reads_imagery_prior_and_mapped_labels() -> None:
    layers = LSRLayers(TINY / "naip", TINY / "prior", TINY / "labels", label_map=TINY_MAP)
    prior = Prior(TINY / "prior")
    for path in sorted((TINY / "naip").glob("*.tif")):
        with rasterio.open(path) as src, rasterio.open(TINY / "labels" / path.name) as lab:
            window = Window(7, 11, 40, 30)
            w, s, e, n = src.window_bounds(window)
            sample = layers[slice(w, e, src.res[0]), slice(s, n, src.res[1])]
            image = src.read(window=window).astype(np.float32)
            codes = lab.read(1, window=lab.window(w, s, e, n))
        np.testing.assert_array_equal(sample["image"].numpy(), image)
        expected = np.vectorize(lambda c: TINY_MAP.get(int(c), 255))(codes)
        np.testing.assert_array_equal(sample["mask"].numpy(), expected)
        grid = _grid(layers.crs, (w, e, s, n, src.res[0]))
        torch.testing.assert_close(sample["prior"], prior[grid]["prior"])
        np.testing.assert_allclose(sample["prior"].sum(0).numpy(), 1.0, atol=1e-5)


def test_lsr_layers_splits_by_imagery_stem() -> None:
    stems = sorted(p.stem for p in (TINY / "naip").glob("*.tif"))
    splits = {"train": stems[:1], "val": stems[1:]}
    train = LSRLayers(TINY / "naip", TINY / "prior", split="train", splits=splits)
    val = LSRLayers(TINY / "naip", TINY / "prior", split="val", splits=splits)
    assert "mask" not in train[train.bounds]
    with rasterio.open(TINY / "naip" / f"{stems[0]}.tif") as src:
        assert train.datasets[0].extent == pytest.approx(tuple(src.bounds))
    with rasterio.open(TINY / "naip" / f"{stems[1]}.tif") as src:
        assert val.datasets[0].extent == pytest.approx(tuple(src.bounds))
    with pytest.raises(ValueError, match=r"splits\['test'\] names no imagery file"):
        LSRLayers(TINY / "naip", TINY / "prior", split="test", splits=splits)


def test_plot_on_every_raster_source_and_key(city: Path, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from torchgeo_lsr.plot import prior_rgb

    naip = NAIP(city / "naip")
    grid = Grid.of_raster(naip.files[0]).window(0, 0, 40, 40)
    scheme = get_scheme("enviroatlas5")
    probs = np.random.default_rng(2).dirichlet(np.ones(5), size=(40, 40)).transpose(2, 0, 1)
    write_prior(tmp_path / "p.tif", probs.astype(np.float32), grid, scheme, key="k")
    nlcd = NLCD(city / "nlcd", sample_key="nlcd")
    sample = nlcd[grid]
    assert "mask" not in sample
    fig = nlcd.plot(sample)
    assert [ax.get_title() for ax in fig.axes] == ["Nlcd"]
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), sample["nlcd"].numpy())
    plt.close(fig)
    fig = naip.plot(naip[grid])
    assert [ax.get_title() for ax in fig.axes] == ["Image"]
    plt.close(fig)
    prior = Prior(tmp_path)
    fig = prior.plot(prior[grid] | {"image": naip[grid]["image"]})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["image", "prior"]
    shown = np.asarray(fig.axes[1].get_images()[0].get_array())
    np.testing.assert_allclose(shown, prior_rgb(prior[grid]["prior"], scheme), atol=1e-6)
    plt.close(fig)
    with pytest.raises(ValueError, match="has none of"):
        naip.plot({"other": torch.zeros(2, 2)})
