"""Every dataset class loads the generated sample city, on a NAIP tile's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from torchgeo_lsr.classes import ENVIROATLAS
from torchgeo_lsr.datasets import (
    NAIP,
    NLCD,
    BuildingFootprints,
    Grid,
    OSMRoads,
    OSMWaterBodies,
    OSMWaterways,
    RasterSource,
)
from torchgeo_lsr.sample_city import make_sample_city


class Labels(RasterSource):
    is_image = False
    what = "labels"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city") / "region"
    make_sample_city(root, seed=3, tiles=2, size=192, progress=False)
    return root


def test_every_dataset_loads_the_city(city: Path) -> None:
    naip = NAIP(city / "naip")
    assert len(naip.files) == 2
    assert [int(t["zone"]) for t in naip.tiles] == [17, 17]
    grid = Grid.of_raster(naip.files[0])
    image = naip[grid]["image"]
    with rasterio.open(naip.files[0]) as src:
        np.testing.assert_array_equal(image.numpy(), src.read().astype(np.float32))
    labels = Labels(city / "labels")[grid]["mask"].numpy()
    truth = ENVIROATLAS.code_to_index(labels, unknown=0)
    nlcd = NLCD(city / "nlcd")[grid]
    assert nlcd["valid"].all()
    # NLCD says water (index 1, code 11) somewhere the labels are mostly water, or the city
    # has no open water in this tile; it is never water where there is none within 60 m
    water = truth == 1
    masks = {
        "roads": OSMRoads(city / "osm")[grid]["mask"].numpy(),
        "waterways": OSMWaterways(city / "osm")[grid]["mask"].numpy(),
        "water_bodies": OSMWaterBodies(city / "osm")[grid]["mask"].numpy(),
        "buildings": BuildingFootprints(city / "buildings")[grid]["mask"].numpy(),
    }
    for name, mask in masks.items():
        assert mask.shape == grid.shape, name
    # footprints and roads sit mostly on impervious labels (misregistered by a few metres)
    impervious = truth == 2
    assert masks["buildings"].any()
    assert impervious[masks["buildings"] > 0].mean() > 0.5
    assert masks["roads"].any()
    assert impervious[masks["roads"] > 0].mean() > 0.4
    if masks["water_bodies"].any():
        assert water[masks["water_bodies"] > 0].mean() > 0.5
