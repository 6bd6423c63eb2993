"""Tests for torchgeo_lsr.mapping: exact tiled inference, outputs, evaluation, `map`."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch

from torchgeo_lsr.classes import ENVIROATLAS5
from torchgeo_lsr.cli import main as cli_main
from torchgeo_lsr.datasets import Grid
from torchgeo_lsr.mapping import (
    MapConfig,
    confusion_matrix,
    evaluate_maps,
    implicit_posterior_map,
    map_region,
    predict_tile,
    prediction,
    scores,
    tile_windows,
    write_class_map,
    write_vrt,
)
from torchgeo_lsr.mapping.engine import QTileWriter, TilePredictor, dequantize, quantize
from torchgeo_lsr.models import FCN
from torchgeo_lsr.sample_city import make_sample_city

TINY_MAP = MapConfig(
    steps=4, batch_size=4, patch_size=64, num_filters=4, num_layers=2, window=96, accelerator="cpu"
)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city") / "region"
    make_sample_city(root, seed=0, tiles=2, size=160, progress=False)
    return root


@pytest.fixture(scope="module")
def mapped(city: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The city mapped once with TINY_MAP (read-only for the tests): output dir, summary."""
    out = tmp_path_factory.mktemp("mapped") / "map"
    return out, map_region(city, out, TINY_MAP, progress=False)


def assert_same_maps(a: Path, b: Path) -> None:
    """The q and r class maps of two map outputs are identical, tile by tile."""
    paths = sorted((a / "q").glob("*.tif")) + sorted((a / "r").glob("*.tif"))
    assert paths
    for path in paths:
        other = b / path.parent.name / path.name
        with rasterio.open(path) as x, rasterio.open(other) as y:
            np.testing.assert_array_equal(x.read(), y.read())
            assert x.crs == y.crs
            assert x.transform == y.transform


class TestTiledInference:
    @pytest.mark.parametrize(("window", "margin"), [(40, 5), (64, 7), (33, 5), (4096, 5)])
    def test_equals_whole_tile_forward(self, window: int, margin: int) -> None:
        torch.manual_seed(0)
        net = FCN(4, 5, num_filters=6).eval()  # receptive field 11: margin >= 5 is exact
        image = torch.randint(0, 256, (4, 97, 131), dtype=torch.uint8)
        with torch.no_grad():
            full = torch.softmax(net(image[None].float() / 255), dim=1)[0]
        q = predict_tile(net, image, margin, window, transform=lambda x: x.float() / 255)
        torch.testing.assert_close(q, full, atol=1e-6, rtol=0)

    def test_too_small_margin_differs(self) -> None:
        """The test above can fail: with a margin below half the receptive field, seams."""
        torch.manual_seed(0)
        net = FCN(4, 5, num_filters=6).eval()
        image = torch.randn(4, 97, 131)
        with torch.no_grad():
            full = torch.softmax(net(image[None]), dim=1)[0]
        q = predict_tile(net, image, margin=1, window=40)
        assert (q - full).abs().max() > 1e-4

    @pytest.mark.parametrize(
        ("h", "w", "window", "margin"), [(10, 10, 6, 1), (97, 131, 40, 5), (5, 300, 64, 8)]
    )
    def test_windows_keep_each_pixel_once(self, h: int, w: int, window: int, margin: int) -> None:
        count = np.zeros((h, w), dtype=int)
        for (r, c, hh, ww), (kr, kc, kh, kw) in tile_windows(h, w, window, margin):
            assert min(r, c) >= 0  # read inside the tile
            assert r + hh <= h
            assert c + ww <= w
            assert r <= kr <= kr + kh <= r + hh  # kept part inside the read window
            assert c <= kc <= kc + kw <= c + ww
            # kept pixels are >= margin from the read window's inner edges
            assert kr - r >= margin or r == 0
            assert (r + hh) - (kr + kh) >= margin or r + hh == h
            count[kr : kr + kh, kc : kc + kw] += 1
        assert (count == 1).all()

    def test_bad_window(self) -> None:
        with pytest.raises(ValueError, match="must exceed twice the margin"):
            list(tile_windows(10, 10, 4, 2))

    def test_posterior_uses_region_denominator(self) -> None:
        g = torch.Generator().manual_seed(0)
        q = torch.softmax(torch.randn(3, 4, 5, generator=g), dim=0)
        prior = torch.softmax(torch.randn(3, 4, 5, generator=g), dim=0)
        prior[:, 0, 0] = 0  # no information: r falls back to q
        q_mean = torch.tensor([0.5, 0.3, 0.2])
        r, valid = implicit_posterior_map(q, prior, q_mean, eps=0.0)
        num = prior * q / q_mean.view(-1, 1, 1)
        expected = num / num.sum(0, keepdim=True)
        torch.testing.assert_close(r[:, valid], expected[:, valid])
        torch.testing.assert_close(r[:, 0, 0], q[:, 0, 0])
        assert not valid[0, 0]

    def test_region_denominator_is_smoothed_like_q(self) -> None:
        """With the region = this tile, r equals the loss's implicit posterior (batch mean).

        A class the network never predicts (q = 0) must not take over r: smoothing q but
        not its region mean gave that class a ratio eps / 0 wherever its prior is > 0.
        """
        from torchgeo_lsr.losses import implicit_posterior, smooth_probs

        g = torch.Generator().manual_seed(1)
        q = torch.softmax(torch.randn(3, 6, 7, generator=g), dim=0)
        q[2] = 0  # never predicted
        q /= q.sum(dim=0, keepdim=True)
        prior = torch.softmax(torch.randn(3, 6, 7, generator=g), dim=0)
        eps = 1e-4
        r, _ = implicit_posterior_map(q, prior, q.mean(dim=(1, 2)), eps)
        expected = implicit_posterior(smooth_probs(q[None], eps), smooth_probs(prior[None], eps))
        torch.testing.assert_close(r, expected[0])
        # slow reference in float64: r ∝ P_s q_s / mean(q_s)
        qs, ps = (q.double() + eps) / (1 + 3 * eps), (prior.double() + eps) / (1 + 3 * eps)
        num = ps * qs / qs.mean(dim=(1, 2)).view(-1, 1, 1)
        torch.testing.assert_close(r.double(), num / num.sum(0, keepdim=True), atol=1e-6, rtol=0)
        # the unsmoothed denominator would have handed the absent class nearly every pixel
        unsmoothed = implicit_posterior(
            smooth_probs(q[None], eps), smooth_probs(prior[None], eps), q_mean=q.mean(dim=(1, 2))
        )[0]
        assert (unsmoothed.argmax(dim=0) == 2).float().mean() > 0.95
        assert (r.argmax(dim=0) == 2).float().mean() < 0.5


class TestOutputs:
    def test_class_map_cog_with_colours(self, tmp_path: Path) -> None:
        grid = Grid.from_bounds("EPSG:26917", (500000, 3900000, 500300, 3900200), 1.0)
        classes = np.random.default_rng(0).integers(0, 5, grid.shape).astype(np.uint8)
        path = write_class_map(tmp_path / "m.tif", classes, grid, ENVIROATLAS5)
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.crs == grid.crs
            assert src.transform == grid.transform
            np.testing.assert_array_equal(src.read(1), classes)
            assert src.colormap(1)[3][:3] == ENVIROATLAS5.colors[3]
            assert src.tags()["CLASS_NAMES"] == ",".join(ENVIROATLAS5.names)
        assert not list(tmp_path.glob("*.partial"))

    def test_vrt_mosaics_tiles(self, tmp_path: Path) -> None:
        left = Grid.from_bounds("EPSG:26917", (500000, 3900000, 500100, 3900050), 1.0)
        right = Grid.from_bounds("EPSG:26917", (500100, 3900000, 500180, 3900050), 1.0)
        a = np.full(left.shape, 1, np.uint8)
        b = np.full(right.shape, 3, np.uint8)
        paths = [
            write_class_map(tmp_path / "tiles" / "a.tif", a, left, ENVIROATLAS5),
            write_class_map(tmp_path / "tiles" / "b.tif", b, right, ENVIROATLAS5),
        ]
        (vrt,) = write_vrt(paths, tmp_path / "mosaic.vrt")
        with rasterio.open(vrt) as src:
            mosaic = src.read(1)
            assert mosaic.shape == (50, 180)
            assert (mosaic[:, :100] == 1).all()
            assert (mosaic[:, 100:] == 3).all()
            assert src.crs.to_epsg() == 26917

    def test_confusion_and_scores_against_a_loop(self) -> None:
        rng = np.random.default_rng(1)
        t = rng.integers(0, 4, 500)
        p = rng.integers(0, 4, 500)
        t[:20] = 255  # ignored
        cm = confusion_matrix(t, p, 4)
        slow = np.zeros((4, 4), int)
        for ti, pi in zip(t, p, strict=True):
            if ti < 4:
                slow[ti, pi] += 1
        np.testing.assert_array_equal(cm, slow)
        s = scores(cm, ["a", "b", "c", "d"])
        assert s.accuracy == pytest.approx(np.trace(slow) / slow.sum())
        ious = [slow[k, k] / (slow[k].sum() + slow[:, k].sum() - slow[k, k]) for k in range(4)]
        assert s.miou == pytest.approx(np.mean(ious))

    def test_quicklook_panels_are_plots(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """quicklook draws imagery, prior and maps with torchgeo_lsr.plot, and saves the PNG."""
        from torchgeo_lsr.formats import write_prior
        from torchgeo_lsr.mapping import io as map_io
        from torchgeo_lsr.plot import class_rgb, image_rgb, prior_rgb

        grid = Grid.from_bounds("EPSG:26917", (500000, 3900000, 500040, 3900030), 1.0)
        rng = np.random.default_rng(3)
        image = rng.integers(0, 255, (4, *grid.shape)).astype(np.uint8)
        with rasterio.open(tmp_path / "naip.tif", "w", **grid.profile(4, "uint8")) as dst:
            dst.write(image)
        probs = np.zeros((5, *grid.shape), np.float32)
        probs[2, :, :20] = 1.0  # barren on the left half, uniform on the right
        probs[:, :, 20:] = 0.2
        write_prior(tmp_path / "prior.tif", probs, grid, ENVIROATLAS5, key="k")
        classes = np.full(grid.shape, 3, np.uint8)
        classes[:5] = 255  # nodata
        q = write_class_map(tmp_path / "q.tif", classes, grid, ENVIROATLAS5)
        drawn: list[Any] = []
        real = map_io.save_figure

        def record(fig: Any, out: Path, dpi: int = 80) -> Path:
            drawn.append(
                (
                    [ax.get_title() for ax in fig.axes],
                    [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes],
                    [t.get_text() for t in fig.legends[0].get_texts()],
                    fig._suptitle.get_text() if fig._suptitle else None,
                )
            )
            return real(fig, out, dpi)

        monkeypatch.setattr(map_io, "save_figure", record)
        out = map_io.quicklook(
            tmp_path / "naip.tif",
            tmp_path / "prior.tif",
            {"q (network)": q},
            ENVIROATLAS5,
            tmp_path / "quicklook.png",
            title="tile",
        )
        assert out == tmp_path / "quicklook.png"
        assert out.exists()
        ((titles, images, legend, suptitle),) = drawn
        assert titles == ["imagery", "prior", "q (network)"]
        assert all(a.shape == (*grid.shape, 3) for a in images)
        np.testing.assert_allclose(images[0], image_rgb(image[:3].astype(float)))
        np.testing.assert_allclose(images[1], prior_rgb(probs, ENVIROATLAS5), atol=1e-6)
        colors = np.asarray(ENVIROATLAS5.colors, float) / 255
        np.testing.assert_allclose(images[1][10, 5], colors[2], atol=1e-6)
        np.testing.assert_allclose(images[2], class_rgb(classes, ENVIROATLAS5))
        np.testing.assert_allclose(images[2][0, 0], [1.0, 1.0, 1.0])
        np.testing.assert_allclose(images[2][10, 10], colors[3])
        assert legend == list(ENVIROATLAS5.names)
        assert suptitle == "tile"

    def test_save_confusion_png_through_plot(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from torchgeo_lsr.mapping import evaluate as map_evaluate

        s = scores(np.array([[3, 1], [0, 4]]), ["water", "trees"])
        drawn: list[Any] = []
        real = map_evaluate.save_figure

        def record(fig: Any, out: Path, dpi: int = 80) -> Path:
            ax = fig.axes[0]
            drawn.append(
                (
                    {t.get_position(): t.get_text() for t in ax.texts},
                    [t.get_text() for t in ax.get_xticklabels()],
                    ax.get_ylabel(),
                    fig._suptitle.get_text() if fig._suptitle else None,
                )
            )
            return real(fig, out, dpi)

        monkeypatch.setattr(map_evaluate, "save_figure", record)
        out = map_evaluate.save_confusion(s, tmp_path / "confusion.png")
        assert out == tmp_path / "confusion.png"
        assert out.exists()
        ((texts, ticks, ylabel, suptitle),) = drawn
        assert texts[(0, 0)] == "0.75\n3"
        assert texts[(1, 0)] == "0.25\n1"
        assert texts[(1, 1)] == "1.00\n4"
        assert ticks == ["water", "trees"]
        assert ylabel == "true"
        assert suptitle == f"accuracy {s.accuracy:.3f}, mIoU {s.miou:.3f}"
        map_evaluate.save_confusion(s, tmp_path / "titled.png", title="run 2")
        assert drawn[-1][3] == "run 2"


class TestMapCommand:
    def test_end_to_end_outputs_and_metrics(
        self, city: Path, mapped: tuple[Path, dict[str, Any]]
    ) -> None:
        out, summary = mapped
        tiles = sorted((city / "naip").glob("*.tif"))
        for tile in tiles:
            for sub in ("q", "r", "prior"):
                with rasterio.open(out / sub / tile.name) as m, rasterio.open(tile) as t:
                    assert m.crs == t.crs
                    assert m.transform == t.transform
                    assert m.shape == t.shape
        for name in ("q.vrt", "r.vrt", "quicklook.png", "summary.json", "confusion_r.png"):
            assert (out / name).exists(), name
        saved = json.loads((out / "summary.json").read_text())
        assert saved["metrics"] == json.loads(json.dumps(summary["metrics"]))
        for which in ("q", "r", "prior_argmax"):
            assert 0 <= saved["metrics"][which]["accuracy"] <= 1
        # the metrics equal an independent evaluation of the written maps
        again = evaluate_maps(out / "r", city / "labels", "enviroatlas5")
        assert saved["metrics"]["r"]["accuracy"] == pytest.approx(again.accuracy)
        assert not list(out.rglob("*.partial"))

    def test_kill_and_rerun_gives_the_same_maps(
        self,
        city: Path,
        mapped: tuple[Path, dict[str, Any]],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        clean = mapped[0]

        killed = tmp_path / "killed"
        real = prediction.class_map_output
        calls = {"n": 0}

        def dies_on_third(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
            return real(*args, **kwargs)

        monkeypatch.setattr(prediction, "class_map_output", dies_on_third)
        with pytest.raises(KeyboardInterrupt):
            map_region(city, killed, TINY_MAP, progress=False)
        monkeypatch.setattr(prediction, "class_map_output", real)
        assert not list(killed.rglob("*.partial")) or all(
            p.suffix == ".partial" for p in killed.rglob("*.partial")
        )
        map_region(city, killed, TINY_MAP, progress=False)
        assert_same_maps(clean, killed)

    def test_cli_and_bad_input(
        self, city: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / "map.yaml"
        config.write_text(
            "steps: 2\nbatch_size: 2\npatch_size: 64\nnum_filters: 4\nnum_layers: 2\n"
        )
        code = cli_main(
            [
                "map",
                str(city),
                "--out",
                str(tmp_path / "m"),
                "--config",
                str(config),
                "--window",
                "96",
                "--accelerator",
                "cpu",
                "--no-progress",
            ]
        )
        assert code == 0
        assert "accuracy" in capsys.readouterr().out
        config.write_text("stepz: 2\n")
        assert (
            cli_main(["map", str(city), "--out", str(tmp_path / "m2"), "--config", str(config)])
            == 2
        )
        assert capsys.readouterr().err == (
            f"torchgeo-lsr map: --config {config}: unknown key 'stepz' (did you mean steps?)\n"
        )
        assert cli_main(["map", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m3")]) == 2
        assert "no naip/ directory" in capsys.readouterr().err

    def test_evaluate_cli(
        self, city: Path, mapped: tuple[Path, dict[str, Any]], tmp_path: Path
    ) -> None:
        out = mapped[0]
        code = cli_main(
            [
                "evaluate",
                str(out / "r"),
                "--labels",
                str(city / "labels"),
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        assert code == 0
        metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
        assert len(metrics["confusion"]) == 5
        assert (tmp_path / "eval" / "confusion.png").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "ce"}, "loss must be one of qr, qr_kl, rq, em"),
        ({"lr_schedule": "x"}, "lr_schedule must be"),
        ({"warmup_loss": "qr"}, "warmup_loss must be"),
        ({"warmup_epochs": -1}, "warmup_epochs must be >= 0"),
        ({"steps": 80, "warmup_epochs": 1}, "80 steps of warmup_loss, which leaves none"),
        ({"steps": 250, "warmup_epochs": 3}, "300 steps of warmup_loss"),
    ],
)
def test_bad_training_options_fail_before_any_work(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MapConfig(**kwargs)


@pytest.mark.parametrize(
    ("loss", "steps", "warmup_epochs", "expected"),
    [
        ("qr", 600, None, 2),  # about a third of the run, in epochs of 100 steps
        ("qr", 1000, None, 3),
        ("qr_kl", 4000, None, 13),
        ("qr", 250, None, 1),
        ("rq", 200, None, 1),  # at least one epoch, and never the whole run
        ("qr", 199, None, 0),
        ("qr", 50, None, 0),
        ("ce_hard", 600, None, 0),  # the baselines and EM train on their own loss
        ("em", 600, None, 0),
        ("ce_hard", 250, 2, 2),  # an explicit warm-up applies to any loss
        ("qr", 1000, 0, 0),
    ],
)
def test_default_warmup_is_a_third_of_the_run_for_qr_rq(
    loss: str, steps: int, warmup_epochs: int | None, expected: int
) -> None:
    config = MapConfig(loss=loss, steps=steps, warmup_epochs=warmup_epochs)
    assert config.warmup() == expected
    assert config.epoch_steps() == min(steps, 100)


def test_shipped_map_configs() -> None:
    """demo.yaml is the recipe; paper.yaml keeps the paper's schedule and no warm-up."""
    configs = Path(__file__).parents[1] / "configs" / "map"
    demo = MapConfig.from_yaml(configs / "demo.yaml")
    assert (demo.loss, demo.warmup_loss, demo.warmup(), demo.lr_schedule) == (
        "qr",
        "em",
        1,
        "cosine",
    )
    paper = MapConfig.from_yaml(configs / "paper.yaml")
    assert (paper.loss, paper.warmup(), paper.lr_schedule) == ("qr", 0, "plateau")


def test_learned_prior_option_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="go together"):
        MapConfig(prior="learned")
    with pytest.raises(ValueError, match="go together"):
        MapConfig(prior="handmade", learned_prior=str(tmp_path / "x.ckpt"))
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        MapConfig(prior="learned", learned_prior=str(tmp_path / "missing.ckpt"))


def test_work_file_path_equals_in_memory(
    city: Path,
    mapped: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A region too large to hold q in memory goes through work files: same maps."""
    in_memory = mapped[0]
    monkeypatch.setattr(prediction, "Q_MEMORY_BYTES", 0)
    on_disk = tmp_path / "disk"
    map_region(city, on_disk, TINY_MAP, progress=False)
    assert list((on_disk / "work" / "q").glob("*.tif"))
    # q is quantised the same way in memory and on disk: the same bytes
    assert_same_maps(in_memory, on_disk)


class TestEngine:
    def test_quantize_round_trip(self) -> None:
        q = torch.rand(3, 5, 7, dtype=torch.float64)
        codes = quantize(q)
        assert codes.dtype == torch.uint16
        np.testing.assert_array_equal(codes.numpy(), np.round(q.numpy() * 65535))
        assert (dequantize(codes).double() - q).abs().max() <= 0.5 / 65535 + 1e-7

    def test_predictor_equals_predict_tile(self) -> None:
        torch.manual_seed(0)
        model = FCN(4, 5, num_filters=4, num_layers=2).eval()
        image = torch.randint(0, 256, (4, 50, 70), dtype=torch.uint8)
        margin = (model.receptive_field - 1) // 2
        out = TilePredictor(model, margin, window=32).predict_step(
            {"image": image[None], "index": torch.tensor([3])}, 0
        )
        assert (out.index, out.height, out.width) == (3, 50, 70)
        with torch.no_grad():
            whole = torch.softmax(model(image[None].float() / 255), dim=1)[0]
            windows = list(out.windows)  # computed as they are read
        assert len(windows) > 1
        covered = torch.zeros(50, 70, dtype=torch.int64)
        for (r, c, h, w), codes in windows:
            assert codes.dtype == torch.uint16
            assert codes.shape == (5, h, w)
            covered[r : r + h, c : c + w] += 1
            part = whole[:, r : r + h, c : c + w]
            assert (dequantize(codes) - part).abs().max() <= 1 / 65535
        assert bool((covered == 1).all()), "the windows must cover the tile once"
        with pytest.raises(ValueError, match="one tile per batch"):
            TilePredictor(model, margin).predict_step(
                {"image": image[None].repeat(2, 1, 1, 1), "index": torch.tensor([0, 1])}, 0
            )


def _copy_training(src: Path, dst: Path) -> Path:
    """A map output directory holding ``src``'s finished checkpoint, nothing else."""
    shutil.copytree(src / "checkpoints", dst / "checkpoints")
    return dst / "checkpoints" / "final.ckpt"


def test_ddp_prediction_equals_single_process(
    city: Path,
    mapped: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two CPU processes under DDP (one rank per tile share) write the same q and maps."""
    single = mapped[0]
    monkeypatch.setattr(prediction, "Q_MEMORY_BYTES", 0)  # keep the work files to compare
    on_disk = tmp_path / "single_disk"
    prediction.predict_region(
        city,
        single / "prior",
        on_disk,
        _copy_training(single, on_disk),
        TINY_MAP,
        progress=False,
    )
    ddp = tmp_path / "ddp"
    config = dataclasses.replace(TINY_MAP, devices=2, strategy="ddp_spawn")
    maps = prediction.predict_region(
        city, single / "prior", ddp, _copy_training(single, ddp), config, progress=False
    )
    assert maps is not None
    ranks = set()
    tiles = sorted((city / "naip").glob("*.tif"))
    assert len(tiles) >= 2
    for tile in tiles:
        with rasterio.open(ddp / "work" / "q" / tile.name) as a:
            ranks.add(a.tags()["LSR_RANK"])
            with rasterio.open(on_disk / "work" / "q" / tile.name) as b:
                codes_ddp, codes_one = a.read().astype(int), b.read().astype(int)
        # the same network on the same pixels: at most a rounding step apart
        assert np.abs(codes_ddp - codes_one).max() <= 1
    assert_same_maps(single, ddp)
    assert ranks == {"0", "1"}, "both ranks should have written tiles"
    assert not list(ddp.rglob("*.partial"))


def test_kill_during_prediction_reuses_finished_tiles(
    city: Path,
    mapped: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clean = mapped[0]
    monkeypatch.setattr(prediction, "Q_MEMORY_BYTES", 0)
    killed = tmp_path / "killed"
    real = QTileWriter.write_on_batch_end
    calls = {"n": 0}

    def dies_on_second(self: QTileWriter, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(self, *args, **kwargs)

    monkeypatch.setattr(QTileWriter, "write_on_batch_end", dies_on_second)
    # Lightning turns Ctrl-C inside predict() into a graceful shutdown and exit(1)
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        map_region(city, killed, TINY_MAP, progress=False)
    finished = list((killed / "work" / "q").glob("*.tif"))
    assert len(finished) == 1
    stamp = finished[0].stat().st_mtime_ns
    monkeypatch.setattr(QTileWriter, "write_on_batch_end", real)
    map_region(city, killed, TINY_MAP, progress=False)
    assert finished[0].stat().st_mtime_ns == stamp, "a finished tile was predicted again"
    assert_same_maps(clean, killed)


@pytest.mark.slow
def test_ddp_training_and_prediction(city: Path, tmp_path: Path) -> None:
    """The whole map under 2-process CPU DDP: trains, predicts, scores, reruns for free."""
    config = dataclasses.replace(TINY_MAP, steps=6, devices=2, strategy="ddp_spawn")
    summary = map_region(city, tmp_path / "ddp", config, progress=False)
    assert 0 <= summary["metrics"]["r"]["accuracy"] <= 1
    assert (tmp_path / "ddp" / "checkpoints" / "final.ckpt").exists()
    again = map_region(city, tmp_path / "ddp", config, progress=False)
    assert again["metrics"] == summary["metrics"]
