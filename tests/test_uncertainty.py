"""``map --save-uncertainty``: entropy of q and r and r's max probability (issue 17, item 5).

The stored values are checked against an independent numpy reference (from q's work
files, exact, and from the ``save_probs`` rasters, within their rounding), the files
against the class maps' grid and the COG layout, a rerun that adds the option against
retraining or rewriting anything else, and the figures against their colour scales.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

import torchgeo_lsr
from torchgeo_lsr.classes import ENVIROATLAS5
from torchgeo_lsr.datasets import Grid
from torchgeo_lsr.mapping import MapConfig, map_region, prediction
from torchgeo_lsr.mapping import io as map_io
from torchgeo_lsr.mapping.config import PREDICT_ONLY
from torchgeo_lsr.mapping.io import UNCERTAINTY_LAYERS, uncertainty_codes, write_uncertainty
from torchgeo_lsr.plot import UNCERTAINTY_PANELS, entropy, max_probability, plot_uncertainty
from torchgeo_lsr.sample_city import make_sample_city

TINY_MAP = MapConfig(
    steps=4, batch_size=4, patch_size=64, num_filters=4, num_layers=2, window=96, accelerator="cpu"
)
K = len(ENVIROATLAS5)
LOG_K = math.log(K)
LAYERS = ("q_entropy", "r_entropy", "r_maxprob")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city") / "region"
    make_sample_city(root, seed=0, tiles=2, size=160, progress=False)
    return root


@pytest.fixture(scope="module")
def on_disk() -> Iterator[None]:
    """q through work files (kept after the run: the exact q the maps come from)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prediction, "Q_MEMORY_BYTES", 0)
        yield


@pytest.fixture(scope="module")
def plain(city: Path, tmp_path_factory: pytest.TempPathFactory, on_disk: None) -> Path:
    """The city mapped without uncertainty (read-only: copy it to rerun)."""
    out = tmp_path_factory.mktemp("plain") / "map"
    map_region(city, out, TINY_MAP, progress=False)
    return out


def _stamps(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".tif", ".ckpt", ".key")
    }


@pytest.fixture(scope="module")
def rerun(
    city: Path, plain: Path, tmp_path_factory: pytest.TempPathFactory, on_disk: None
) -> dict[str, Any]:
    """``plain`` rerun with save_uncertainty and save_probs newly set."""
    out = tmp_path_factory.mktemp("rerun") / "map"
    shutil.copytree(plain, out)
    before = _stamps(out)
    config = dataclasses.replace(TINY_MAP, save_uncertainty=True, save_probs=True)
    summary = map_region(city, out, config, progress=False)
    return {"out": out, "summary": summary, "before": before, "after": _stamps(out)}


def _tiles(city: Path) -> list[Path]:
    tiles = sorted((city / "naip").glob("*.tif"))
    assert len(tiles) == 2
    return tiles


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _entropy_codes(p: np.ndarray) -> np.ndarray:
    """The reference: -sum p log p / log K * 255 of (K, H, W) probabilities, float64."""
    p = p / p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0)
    return h / LOG_K * 255


def _plogp_spread(p: np.ndarray, delta: float) -> np.ndarray:
    """Per value, how far -x log x can move for x within ``delta`` of ``p`` (in [0, 1])."""

    def f(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, -x * np.log(x), 0.0)

    lo, hi = np.clip(p - delta, 0, 1), np.clip(p + delta, 0, 1)
    spread = np.maximum(abs(f(lo) - f(p)), abs(f(hi) - f(p)))
    peak = (lo <= 1 / math.e) & (1 / math.e <= hi)  # -x log x is largest at 1/e
    return np.where(peak, np.maximum(spread, abs(f(np.full_like(p, 1 / math.e)) - f(p))), spread)


class TestValues:
    def test_q_entropy_equals_the_exact_q_of_the_maps(
        self, city: Path, rerun: dict[str, Any]
    ) -> None:
        """q's work file holds the q the maps come from (uint16 / 65535): exact to rounding."""
        out = rerun["out"]
        for tile in _tiles(city):
            q = _read(out / "work" / "q" / tile.name).astype(np.float64) / 65535
            stored = _read(out / "uncertainty" / "q_entropy" / tile.name)[0].astype(float)
            diff = np.abs(stored - _entropy_codes(q))
            assert diff.max() <= 0.5 + 1e-3  # the uint8 rounding (float32 vs float64 aside)
            # and the class map is the argmax of the same q
            np.testing.assert_array_equal(_read(out / "q" / tile.name)[0], q.argmax(axis=0))

    @pytest.mark.parametrize("source", ["q", "r"])
    def test_against_the_probability_rasters(
        self, city: Path, rerun: dict[str, Any], source: str
    ) -> None:
        """Entropy and max probability from the save_probs rasters, within both roundings."""
        out = rerun["out"]
        delta = 0.5 / 255 + 1e-4  # a stored probability is within this of the true one
        for tile in _tiles(city):
            p = _read(out / "probs" / source / tile.name).astype(np.float64) / 255
            stored_h = _read(out / "uncertainty" / f"{source}_entropy" / tile.name)[0]
            reference = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0).sum(axis=0)
            reference *= 255 / LOG_K
            bound = 0.5 + _plogp_spread(p, delta).sum(axis=0) * 255 / LOG_K
            error = np.abs(stored_h - reference)
            assert (error <= bound).all(), float((error - bound).max())
            assert error.mean() < 1.0  # the bound is loose; the values are not
            if source == "r":
                stored_m = _read(out / "uncertainty" / "r_maxprob" / tile.name)[0].astype(float)
                assert np.abs(stored_m - p.max(axis=0) * 255).max() <= 1.0 + 1e-6
                # r's class map is its argmax: the most probable class has the max probability
                classes = _read(out / "r" / tile.name)[0]
                top = np.take_along_axis(p, classes[None].astype(np.int64), axis=0)[0]
                assert np.abs(top * 255 - stored_m).max() <= 1.0 + 1e-6

    def test_codes_window_by_window_equal_the_whole(self) -> None:
        rng = np.random.default_rng(0)
        p = rng.dirichlet(np.full(K, 0.3), size=(37, 29)).transpose(2, 0, 1)
        p[:, 3, 4] = 0  # no information: 0 for both
        for quantity in ("entropy", "maxprob"):
            whole = uncertainty_codes(p, quantity, window=10**9)
            assert whole.dtype == np.uint8
            np.testing.assert_array_equal(uncertainty_codes(p, quantity, window=K * 29 * 3), whole)
            np.testing.assert_array_equal(uncertainty_codes(p, quantity, window=1), whole)
        expected = np.round(entropy(p) / LOG_K * 255)
        np.testing.assert_array_equal(uncertainty_codes(p, "entropy"), expected)
        np.testing.assert_array_equal(
            uncertainty_codes(p, "maxprob"), np.round(p.max(axis=0) * 255)
        )
        assert uncertainty_codes(p, "maxprob")[3, 4] == 0
        assert uncertainty_codes(np.full((K, 1, 1), 1 / K), "entropy")[0, 0] == 255
        with pytest.raises(ValueError, match="quantity must be"):
            uncertainty_codes(p, "variance")  # type: ignore[arg-type]


class TestFiles:
    def test_cogs_on_the_class_maps_grid(self, city: Path, rerun: dict[str, Any]) -> None:
        out = rerun["out"]
        for tile in _tiles(city):
            with rasterio.open(out / "r" / tile.name) as ref:
                grid, key = (ref.crs, ref.transform, ref.shape), ref.tags()["LSR_KEY"]
            for layer in LAYERS:
                with rasterio.open(out / "uncertainty" / layer / tile.name) as src:
                    assert (src.crs, src.transform, src.shape) == grid
                    assert (src.count, src.dtypes[0]) == (1, "uint8")
                    assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                    assert src.profile["tiled"]
                    tags = src.tags()
                    assert tags["LSR_KEY"] == key  # keyed like the maps: reused on a rerun
                    assert tags["LSR_UNCERTAINTY"] == layer
                    if layer.endswith("entropy"):
                        assert tags["LSR_ENTROPY_SCALE"] == f"log({K})/255"
                        assert src.scales[0] == pytest.approx(LOG_K / 255)
                        assert src.units[0] == "nats"
                    else:
                        assert tags["LSR_SCALE"] == "1/255"
                        assert src.scales[0] == pytest.approx(1 / 255)
                        assert src.units[0] == "probability"
        assert rerun["summary"]["outputs"]["uncertainty"] == {
            layer: f"uncertainty/{layer}/" for layer in LAYERS
        }
        saved = json.loads((out / "summary.json").read_text())
        assert saved["outputs"] == rerun["summary"]["outputs"]
        assert not list(out.rglob("*.partial"))

    def test_a_large_raster_is_a_cog_with_overviews(self, tmp_path: Path) -> None:
        """The sample city's tiles are smaller than a COG block: overviews on a larger one."""
        grid = Grid.from_bounds("EPSG:26917", (500000, 3900000, 501100, 3900900), 1.0)
        rng = np.random.default_rng(1)
        p = rng.dirichlet(np.ones(K), size=grid.shape).transpose(2, 0, 1)
        codes = uncertainty_codes(p, "maxprob")
        path = write_uncertainty(tmp_path / "m.tif", codes, grid, "r_maxprob", ENVIROATLAS5)
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.profile["tiled"]
            assert src.overviews(1)[0] == 2
            np.testing.assert_array_equal(src.read(1), codes)
            half = src.read(1, out_shape=(450, 550))  # from the overview: averages
            mean = codes.astype(float).reshape(450, 2, 550, 2).mean(axis=(1, 3))
            assert np.abs(half - mean).max() <= 1
        with pytest.raises(ValueError, match="uncertainty layer 'x'"):
            write_uncertainty(tmp_path / "x.tif", codes, grid, "x", ENVIROATLAS5)


class TestResume:
    def test_adding_the_option_writes_only_the_new_rasters(self, rerun: dict[str, Any]) -> None:
        before, after = rerun["before"], rerun["after"]
        assert "save_uncertainty" in PREDICT_ONLY
        assert list(UNCERTAINTY_LAYERS) == list(UNCERTAINTY_PANELS) == list(LAYERS)
        new = sorted(set(after) - set(before))
        assert {Path(n).parts[0] for n in new} == {"uncertainty", "probs"}
        assert len([n for n in new if n.startswith("uncertainty/")]) == 3 * 2
        changed = sorted(n for n in before if after.get(n) != before[n])
        # prior_argmax/ is the baseline map, rewritten on every run that scores (unchanged)
        assert [n for n in changed if not n.startswith("prior_argmax/")] == []

    def test_a_missing_raster_alone_is_written_again(
        self, city: Path, rerun: dict[str, Any], tmp_path: Path, on_disk: None
    ) -> None:
        out = tmp_path / "map"
        shutil.copytree(rerun["out"], out)
        tile = _tiles(city)[0].name
        (out / "uncertainty" / "r_entropy" / tile).unlink()
        before = _stamps(out)
        config = dataclasses.replace(TINY_MAP, save_uncertainty=True, save_probs=True)
        map_region(city, out, config, progress=False)
        after = _stamps(out)
        assert sorted(set(after) - set(before)) == [f"uncertainty/r_entropy/{tile}"]
        changed = [n for n in before if after[n] != before[n]]
        assert [n for n in changed if not n.startswith("prior_argmax/")] == []
        np.testing.assert_array_equal(
            _read(out / "uncertainty" / "r_entropy" / tile),
            _read(rerun["out"] / "uncertainty" / "r_entropy" / tile),
        )

    def test_cli_flag_on_a_finished_run_does_not_retrain(
        self, city: Path, plain: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "map"
        shutil.copytree(plain, out)
        checkpoint = out / "checkpoints" / "final.ckpt"
        stamp = checkpoint.stat().st_mtime_ns
        root = Path(torchgeo_lsr.__file__).parents[1]
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
        )
        args = ["--steps", "4", "--batch-size", "4", "--patch-size", "64", "--num-filters", "4"]
        args += ["--num-layers", "2", "--window", "96", "--accelerator", "cpu", "--no-progress"]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "torchgeo_lsr",
                "map",
                city,
                "--out",
                out,
                *args,
                "--save-uncertainty",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert checkpoint.stat().st_mtime_ns == stamp, "the network was trained again"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["config"]["save_uncertainty"] is True
        for tile in _tiles(city):
            for layer in LAYERS:
                assert (out / "uncertainty" / layer / tile.name).exists()


def _colorbars(fig: Any) -> dict[str, tuple[str, tuple[float, float]]]:
    """Panel title -> (its colorbar's label, its image's colour limits)."""
    found = {}
    for ax in fig.axes:
        images = ax.get_images()
        if ax.get_title() and images and images[0].colorbar is not None:
            bar = images[0].colorbar
            found[ax.get_title()] = (bar.ax.get_ylabel(), images[0].get_clim())
    return found


def _assert_bars(found: dict[str, tuple[str, tuple[float, float]]]) -> None:
    assert list(found) == list(EXPECTED_BARS)
    for title, (label, clim) in EXPECTED_BARS.items():
        assert found[title][0] == label
        assert found[title][1] == pytest.approx(clim)


EXPECTED_BARS = {
    "entropy of q": (f"nats (log {K} = {LOG_K:.2f})", (0.0, LOG_K)),
    "entropy of r": (f"nats (log {K} = {LOG_K:.2f})", (0.0, LOG_K)),
    "max probability of r": ("probability", (0.0, 1.0)),
}


class TestFigures:
    def test_plot_uncertainty(self) -> None:
        rng = np.random.default_rng(2)
        q = rng.dirichlet(np.ones(K), size=(12, 14)).transpose(2, 0, 1)
        r = rng.dirichlet(np.full(K, 0.2), size=(12, 14)).transpose(2, 0, 1)
        layers = {"r_maxprob": max_probability(r), "q_entropy": entropy(q), "r_entropy": entropy(r)}
        fig = plot_uncertainty(layers, ENVIROATLAS5, suptitle="tile")
        panels = [ax for ax in fig.axes if ax.get_images()]
        assert [ax.get_title() for ax in panels] == list(EXPECTED_BARS)  # fixed order
        _assert_bars(_colorbars(fig))
        np.testing.assert_allclose(panels[0].get_images()[0].get_array(), entropy(q))
        np.testing.assert_allclose(panels[2].get_images()[0].get_array(), max_probability(r))
        assert panels[0].get_images()[0].get_cmap().name == "magma"
        assert panels[2].get_images()[0].get_cmap().name == "viridis"
        assert fig.get_suptitle() == "tile"
        untitled = plot_uncertainty({"r_maxprob": layers["r_maxprob"]}, K, show_titles=False)
        assert [ax.get_title() for ax in untitled.axes] == ["", ""]  # the panel, its colorbar
        with pytest.raises(ValueError, match="expected some of"):
            plot_uncertainty({"entropy": entropy(q)}, K)
        with pytest.raises(ValueError, match="expected some of"):
            plot_uncertainty({}, K)

    def test_quicklook_has_the_uncertainty_row(
        self, city: Path, rerun: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        out = rerun["out"]
        tile = _tiles(city)[0]
        drawn: list[Any] = []
        real = map_io.save_figure

        def record(fig: Any, path: Path, dpi: int = 80) -> Path:
            drawn.append(
                (
                    [ax.get_title() for ax in fig.axes if ax.get_title()],
                    _colorbars(fig),
                    {
                        ax.get_title(): ax.get_images()[0].get_array()
                        for ax in fig.axes
                        if ax.get_title()
                    },
                    [t.get_text() for t in fig.legends[0].get_texts()],
                )
            )
            return real(fig, path, dpi)

        monkeypatch.setattr(map_io, "save_figure", record)
        png = map_io.quicklook(
            tile,
            out / "prior" / tile.name,
            {"q (network)": out / "q" / tile.name, "r (posterior)": out / "r" / tile.name},
            ENVIROATLAS5,
            tmp_path / "quicklook.png",
            uncertainty={layer: out / "uncertainty" / layer / tile.name for layer in LAYERS},
        )
        assert png.exists()
        ((titles, bars, arrays, legend),) = drawn
        assert titles == ["imagery", "prior", "q (network)", "r (posterior)", *EXPECTED_BARS]
        _assert_bars(bars)
        # the panels show the stored values in their units (the tile fits in max_px)
        stored = _read(out / "uncertainty" / "r_entropy" / tile.name)[0] * LOG_K / 255
        np.testing.assert_allclose(arrays["entropy of r"], stored, rtol=1e-6)
        stored = _read(out / "uncertainty" / "r_maxprob" / tile.name)[0] / 255
        np.testing.assert_allclose(arrays["max probability of r"], stored, rtol=1e-6)
        assert legend == list(ENVIROATLAS5.names)

    def test_map_quicklook_png_grows_a_row(self, plain: Path, rerun: dict[str, Any]) -> None:
        from PIL import Image

        with (
            Image.open(plain / "quicklook.png") as a,
            Image.open(rerun["out"] / "quicklook.png") as b,
        ):
            assert b.height > 1.5 * a.height
            assert b.width == a.width
