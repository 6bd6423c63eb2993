"""The Chesapeake CVPR release as a region: dataset layers, the region layer, prior/map/evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from torchgeo_lsr.classes import CHESAPEAKE4, labels_to_classes, reference_cooccurrence
from torchgeo_lsr.cli import main as cli_main
from torchgeo_lsr.datasets import Grid
from torchgeo_lsr.datasets.chesapeake import ChesapeakeCVPR, find_chesapeake_tiles
from torchgeo_lsr.mapping import MapConfig, map_region
from torchgeo_lsr.region import Region

RELEASE = Path(__file__).parent / "data" / "chesapeake" / "cvpr_chesapeake_landcover"
WV = "wv_1m_2014_extended-debuffered-test_tiles"
NE, NW, MD = "m_3708035_ne_17_1", "m_3708035_nw_17_1", "m_3907822_nw_18_1"
#: The paper's 4-class scoring, written out here independently of the package's table.
LC_TO_CLASS = {1: 0, 2: 1, 3: 2, 4: 3, 5: 3, 6: 3}
TINY = MapConfig(
    classes="chesapeake4",
    cooccurrence="pittsburgh",
    sigma=8.0,
    steps=4,
    batch_size=2,
    patch_size=32,
    num_filters=4,
    num_layers=2,
    window=48,
    accelerator="cpu",
)


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def independent_scores(pairs: list[tuple[Path, Path]]) -> tuple[float, float, list[float | None]]:
    """Accuracy, mIoU and per-class IoU counted with a plain loop over classes."""
    pred_all, true_all = [], []
    for pred_path, lc_path in pairs:
        pred, lc = read(pred_path)[0].ravel(), read(lc_path)[0].ravel()
        true = np.array([LC_TO_CLASS.get(int(v), -1) for v in lc])
        keep = true >= 0
        pred_all.append(pred[keep])
        true_all.append(true[keep])
    pred, true = np.concatenate(pred_all), np.concatenate(true_all)
    ious: list[float | None] = []
    for k in range(4):
        union = int(((pred == k) | (true == k)).sum())
        ious.append(None if union == 0 else int(((pred == k) & (true == k)).sum()) / union)
    present = [v for v in ious if v is not None]
    return float((pred == true).mean()), float(np.mean(present)), ious


# ------------------------------------------------------------------------- tiles
def test_find_tiles_and_selection() -> None:
    every = find_chesapeake_tiles(RELEASE.parent)  # the folder above the release works too
    assert [(t.state, t.split, t.tile) for t in every] == [
        ("md", "train", MD),
        ("wv", "test", NE),
        ("wv", "test", NW),
    ]
    assert every[1].year == 2014
    assert "prior_from_cooccurrences_101_31_no_osm_no_buildings" in every[1].files
    assert [t.tile for t in find_chesapeake_tiles(RELEASE, states=["wv"])] == [NE, NW]
    assert [t.tile for t in find_chesapeake_tiles(RELEASE, splits=["md-train"])] == [MD]
    assert [t.tile for t in find_chesapeake_tiles(RELEASE, splits=["test"], tiles=[NW])] == [NW]
    with pytest.raises(ValueError, match=r"the release holds \['md-train', 'wv-test'\]"):
        find_chesapeake_tiles(RELEASE, states=["de"])
    with pytest.raises(ValueError, match=rf"tiles \['{MD}'\] are not of states=\['wv'\]"):
        find_chesapeake_tiles(RELEASE, states=["wv"], tiles=[NE, MD])
    with pytest.raises(FileNotFoundError, match="no Chesapeake CVPR tile folder"):
        find_chesapeake_tiles(RELEASE / WV)


# ------------------------------------------------------------------------ layers
def test_layers_read_as_documented() -> None:
    grid = Grid.of_raster(RELEASE / WV / f"{NE}_naip-new.tif")
    raw_lc = read(RELEASE / WV / f"{NE}_lc.tif")[0]
    lc = ChesapeakeCVPR(RELEASE, layer="lc", states=["wv"])
    assert lc.tiles == [NE, NW]
    sample = lc[grid]
    expected = np.vectorize(lambda v: LC_TO_CLASS.get(int(v), 255))(raw_lc)
    np.testing.assert_array_equal(sample["mask"].numpy(), expected)
    np.testing.assert_array_equal(sample["valid"].numpy(), expected != 255)
    np.testing.assert_array_equal(
        labels_to_classes(raw_lc, CHESAPEAKE4, "chesapeake"), expected
    )  # the package's table agrees with the paper's mapping written out above

    nlcd = ChesapeakeCVPR(RELEASE, layer="nlcd", tiles=[NE])[grid]
    raw_nlcd = read(RELEASE / WV / f"{NE}_nlcd.tif")[0]
    index = {11: 1, 21: 3, 41: 8, 81: 13}  # positions in the NLCD legend
    np.testing.assert_array_equal(nlcd["mask"].numpy(), np.vectorize(index.get)(raw_nlcd))

    naip = ChesapeakeCVPR(RELEASE, layer="naip-new", bands=["NIR", "R"], tiles=[NE])[grid]
    np.testing.assert_array_equal(
        naip["image"].numpy(), read(RELEASE / WV / f"{NE}_naip-new.tif")[[3, 0]]
    )
    prior = ChesapeakeCVPR(RELEASE, layer="prior_from_cooccurrences_101_31_no_osm_no_buildings")[
        grid
    ]
    stored = read(RELEASE / WV / f"{NE}_prior_from_cooccurrences_101_31_no_osm_no_buildings.tif")
    np.testing.assert_allclose(prior["image"].numpy(), stored / 255.0, atol=1e-6)
    buildings = ChesapeakeCVPR(RELEASE, layer="buildings", tiles=[NE])[grid]
    np.testing.assert_array_equal(
        buildings["mask"].numpy(), read(RELEASE / WV / f"{NE}_buildings.tif")[0]
    )
    with pytest.raises(ValueError, match="unknown Chesapeake CVPR layer"):
        ChesapeakeCVPR(RELEASE, layer="labels")
    with pytest.raises(ValueError, match="unknown bands"):
        ChesapeakeCVPR(RELEASE, layer="naip-new", bands=["SWIR"])


def test_bad_lc_codes_are_named(tmp_path: Path) -> None:
    folder = tmp_path / WV
    folder.mkdir()
    for name in ("naip-new", "lc"):
        shutil.copy(RELEASE / WV / f"{NE}_{name}.tif", folder / f"{NE}_{name}.tif")
    with rasterio.open(folder / f"{NE}_lc.tif", "r+") as dst:
        data = dst.read()
        data[0, 5, 5] = 9
        dst.write(data)
    grid = Grid.of_raster(folder / f"{NE}_naip-new.tif")
    with pytest.raises(ValueError, match=r"lc .*_lc\.tif: codes \[9\]"):
        ChesapeakeCVPR(tmp_path, layer="lc")[grid]


# ------------------------------------------------------------------------ region
def test_region_opens_the_release() -> None:
    region = Region.open(RELEASE, states=["wv"])
    assert region.layout == "chesapeake"
    assert [p.name for p in region.images] == [f"{NE}_naip-new.tif", f"{NW}_naip-new.tif"]
    assert region.label_scheme == "chesapeake"
    assert region.available_aux() == ("buildings",)
    assert region.label_path(f"{NW}_naip-new") == RELEASE / WV / f"{NW}_lc.tif"
    grid = Grid.of_raster(region.images[0])
    expected = np.vectorize(lambda v: LC_TO_CLASS.get(int(v), 255))(
        read(RELEASE / WV / f"{NE}_lc.tif")[0]
    )
    np.testing.assert_array_equal(region.read_labels(f"{NE}_naip-new", grid, CHESAPEAKE4), expected)
    assert sorted(region.aux_sources(["buildings"])) == ["buildings"]
    with pytest.raises(FileNotFoundError, match="--aux osm: the Chesapeake CVPR release has no"):
        region.aux_sources(["osm"])
    assert Region.is_region(RELEASE)
    assert not Region.is_region(RELEASE / WV)
    with pytest.raises(ValueError, match="no imagery tile named"):
        region.label_path("nope")


def test_region_directory_refuses_chesapeake_options(tmp_path: Path) -> None:
    (tmp_path / "naip").mkdir()
    with pytest.raises(ValueError, match="--states and --splits select tiles of a Chesapeake"):
        Region.open(tmp_path, states=["wv"])


def test_reference_matrix_for_chesapeake4() -> None:
    ea = reference_cooccurrence("pittsburgh", "enviroatlas")
    ches = reference_cooccurrence("pittsburgh", "chesapeake4")
    assert ches.shape == (4, 17)
    # deciduous forest (NLCD index 8): trees + orchards + woody wetlands over the kept rows
    col = ea[:, 8]
    kept = col[1:].sum()
    np.testing.assert_allclose(ches[1, 8], (col[4] + col[8] + col[9]) / kept)
    np.testing.assert_allclose(ches[3, 8], (col[2] + col[3]) / kept)
    informative = ea[1:].sum(axis=0) > 0  # Pittsburgh has no ice/snow (NLCD 12)
    np.testing.assert_allclose(ches.sum(axis=0), np.where(informative, 1.0, 0.0))


# ------------------------------------------------------------------ the commands
def test_prior_command_on_the_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, without = tmp_path / "priors", tmp_path / "plain"
    common = ["--states", "wv", "--classes", "chesapeake4", "--cooccurrence", "estimate"]
    common += ["--sigma", "8", "--no-progress"]
    argv = ["prior", str(RELEASE), "--out", str(out), *common, "--aux", "buildings"]
    assert cli_main(argv) == 0
    assert "2 written" in capsys.readouterr().out
    written = sorted(p.name for p in out.glob("*.tif"))
    assert written == [f"{NE}_naip-new.tif", f"{NW}_naip-new.tif"]
    prior = read(out / f"{NE}_naip-new.tif")
    np.testing.assert_allclose(prior.sum(axis=0), 1.0, atol=1e-3)
    # buildings are fused into impervious (class 3), and only there does it gain mass
    assert cli_main(["prior", str(RELEASE), "--out", str(without), *common]) == 0
    plain = read(without / f"{NE}_naip-new.tif")
    b = read(RELEASE / WV / f"{NE}_buildings.tif")[0] == 1
    assert b.any()
    assert (prior[3][b] > plain[3][b] + 0.1).all()
    np.testing.assert_allclose(prior[:, ~b], plain[:, ~b], atol=1e-6)
    assert cli_main(["prior", str(RELEASE), "--out", str(out), "--states", "de"]) == 2
    assert "no Chesapeake tile of states=['de']" in capsys.readouterr().err


def test_map_and_evaluate_score_as_an_independent_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "map"
    region = Region.open(RELEASE, states=["wv"])
    summary = map_region(region, out, TINY, progress=False)
    assert summary["layout"] == "chesapeake"
    assert summary["tiles"] == [f"{NE}_naip-new", f"{NW}_naip-new"]
    pairs = [
        (out / "r" / f"{tile}_naip-new.tif", RELEASE / WV / f"{tile}_lc.tif") for tile in (NE, NW)
    ]
    acc, miou, ious = independent_scores(pairs)
    r = summary["metrics"]["r"]
    assert r["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert r["miou"] == pytest.approx(miou, abs=1e-12)
    assert r["iou"] == pytest.approx(ious, abs=1e-12)
    assert len(summary["normalization"]["mean"]) == 4  # per-band standardisation

    assert cli_main(["evaluate", str(out / "q"), "--labels", str(RELEASE), "--classes",
                     "chesapeake4", "--out", str(tmp_path / "eval")]) == 0  # fmt: skip
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    acc_q, miou_q, _ = independent_scores(
        [(out / "q" / f"{t}_naip-new.tif", RELEASE / WV / f"{t}_lc.tif") for t in (NE, NW)]
    )
    assert metrics["accuracy"] == pytest.approx(acc_q, abs=1e-12)
    assert metrics["miou"] == pytest.approx(miou_q, abs=1e-12)
    assert "accuracy" in capsys.readouterr().out


def test_map_cli_selects_tiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "map"
    argv = ["map", str(RELEASE), "--out", str(out), "--tiles", MD, "--classes", "chesapeake4"]
    argv += ["--steps", "2", "--batch-size", "2", "--patch-size", "32", "--num-filters", "4"]
    argv += ["--num-layers", "2", "--sigma", "8", "--accelerator", "cpu", "--no-progress"]
    assert cli_main(argv) == 0
    assert sorted(p.name for p in (out / "r").glob("*.tif")) == [f"{MD}_naip-new.tif"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"] == [f"{MD}_naip-new"]
    assert cli_main([*argv[:2], "--out", str(tmp_path / "x"), "--tiles", "m_0000000_ne_17_1"]) == 2
    assert "no Chesapeake tile named ['m_0000000_ne_17_1']" in capsys.readouterr().err
    # a selection without a REGION would map the sample city instead: refused
    assert cli_main(["map", "--out", str(tmp_path / "y"), "--tiles", MD, "--steps", "2"]) == 2
    assert "--tiles: select tiles of a REGION; none was given" in capsys.readouterr().err
    assert not (tmp_path / "y" / "region").exists()


def test_init_from_loads_the_network(tmp_path: Path) -> None:
    """map --init-from starts from a checkpoint's weights (and refuses another shape)."""
    first = map_region(Region.open(RELEASE, tiles=[MD]), tmp_path / "a", TINY, progress=False)
    assert first["metrics"]
    ckpt = tmp_path / "a" / "checkpoints" / "final.ckpt"
    zero = dict(TINY.__dict__, init_from=str(ckpt), steps=1, lr=1e-12, lr_schedule="plateau")
    b = tmp_path / "b"
    map_region(Region.open(RELEASE, tiles=[MD]), b, MapConfig(**zero), progress=False)
    start = torch.load(ckpt, weights_only=True)["state_dict"]
    after = torch.load(b / "checkpoints" / "final.ckpt", weights_only=True)["state_dict"]
    for key, value in start.items():  # one step at lr 1e-12: the weights are the loaded ones
        torch.testing.assert_close(after[key], value, atol=1e-6, rtol=0)
    wider = MapConfig(**(zero | {"num_filters": 8}))
    with pytest.raises(ValueError, match="does not fit"):
        map_region(Region.open(RELEASE, tiles=[MD]), tmp_path / "c", wider, progress=False)


def test_label_prior_and_a_network_applied_as_it_is(tmp_path: Path) -> None:
    """prior='labels' is the one-hot labels; steps=0 maps with the init network unchanged."""
    region = Region.open(RELEASE, states=["wv"])
    oracle = MapConfig(**(TINY.__dict__ | {"prior": "labels", "loss": "ce_hard"}))
    a = tmp_path / "a"
    map_region(region, a, oracle, progress=False)
    for tile in (NE, NW):
        prior = read(a / "prior" / f"{tile}_naip-new.tif").astype(float) / 255
        lc = read(RELEASE / WV / f"{tile}_lc.tif")[0]
        target = np.vectorize(lambda v: LC_TO_CLASS.get(int(v), -1))(lc)
        expected = (target[None] == np.arange(4)[:, None, None]).astype(float)
        np.testing.assert_array_equal(prior, expected)
    applied = MapConfig(**(TINY.__dict__ | {"init_from": str(a / "checkpoints" / "final.ckpt"),
                                           "steps": 0}))  # fmt: skip
    b = tmp_path / "b"
    summary = map_region(region, b, applied, progress=False)
    for tile in (NE, NW):  # the same network on the same imagery: the same q map
        np.testing.assert_array_equal(
            read(b / "q" / f"{tile}_naip-new.tif"), read(a / "q" / f"{tile}_naip-new.tif")
        )
    assert summary["metrics"]["q"]["accuracy"] > 0
    with pytest.raises(ValueError, match="steps=0 maps with a given network"):
        MapConfig(steps=0)


def test_a_network_keeps_the_normalisation_it_was_trained_with(tmp_path: Path) -> None:
    """A checkpoint records its training statistics; init_from applies them elsewhere."""
    md = Region.open(RELEASE, tiles=[MD])
    map_region(md, tmp_path / "a", TINY, progress=False)
    ckpt = tmp_path / "a" / "checkpoints" / "final.ckpt"
    pixels = read(md.images[0]).reshape(4, -1).astype(np.float64)  # numpy reference
    recorded = torch.load(ckpt, weights_only=True)["lsr_normalization"]
    np.testing.assert_allclose(recorded["mean"], pixels.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(recorded["std"], pixels.std(axis=1), rtol=1e-9)
    wv = Region.open(RELEASE, states=["wv"])
    applied = MapConfig(**(TINY.__dict__ | {"init_from": str(ckpt), "steps": 0}))
    summary = map_region(wv, tmp_path / "b", applied, progress=False)
    assert summary["normalization"] == recorded  # MD's statistics, not the wv tiles'
    wv_pixels = np.concatenate([read(p).reshape(4, -1) for p in wv.images], axis=1)
    assert not np.allclose(recorded["mean"], wv_pixels.mean(axis=1), rtol=1e-3)
    own = map_region(wv, tmp_path / "c", TINY, progress=False)["normalization"]
    np.testing.assert_allclose(own["mean"], wv_pixels.mean(axis=1), rtol=1e-9)
    # the trained network predicts without the file it was initialised from
    fine = MapConfig(**(TINY.__dict__ | {"init_from": str(ckpt), "steps": 2}))
    map_region(wv, tmp_path / "d", fine, progress=False)
    ckpt.unlink()
    from torchgeo_lsr.mapping.prediction import load_model

    assert load_model(tmp_path / "d" / "checkpoints" / "final.ckpt").model is not None


def test_selections_and_label_schemes_fail_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("states", "splits", "tiles"):  # [] is no selection, never "all"
        with pytest.raises(ValueError, match=f"--{option}: an empty selection"):
            Region.open(RELEASE, **{option: []})
    out = tmp_path / "map"  # Chesapeake lc codes cannot score enviroatlas5: say so at once
    argv = ["map", str(RELEASE), "--out", str(out), "--states", "wv", "--steps", "2"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "--classes enviroatlas5" in err
    assert "chesapeake4" in err
    assert not (out / "prior").exists()
    assert not (out / "checkpoints").exists()
    unlabelled = tmp_path / "release"  # --prior labels needs labels: said before any work
    shutil.copytree(RELEASE, unlabelled, ignore=shutil.ignore_patterns("*_lc.tif"))
    oracle = MapConfig(**(TINY.__dict__ | {"prior": "labels"}))
    with pytest.raises(ValueError, match=r"--prior labels: region .* has no labels"):
        map_region(Region.open(unlabelled, states=["wv"]), tmp_path / "m", oracle, progress=False)
    assert not (tmp_path / "m" / "prior").exists()


def test_fusion_targets_follow_the_classes_of_a_replaced_config() -> None:
    import dataclasses

    from torchgeo_lsr.priors import PriorConfig

    base = PriorConfig(aux=("buildings",))
    assert base.fusion_spec()["buildings"]["target"] == 1  # enviroatlas5: impervious
    ches = dataclasses.replace(base, classes="chesapeake4")
    assert ches.fusion_spec()["buildings"]["target"] == CHESAPEAKE4.names.index("impervious")
    assert ches.fusion_spec()["water_bodies"]["target"] == CHESAPEAKE4.names.index("water")
