"""Prediction streams a tile window by window: no stage holds a whole tile's probabilities.

The maps written in bands of rows (pass 2) and from window-by-window work files (pass 1)
equal an independent whole-tile computation: the network over the whole tile at once,
the implicit posterior of the paper with the region mean of q, argmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from torchgeo_lsr.datasets.grid import Grid
from torchgeo_lsr.formats import read_prior
from torchgeo_lsr.losses import implicit_posterior, smooth_probs
from torchgeo_lsr.mapping import MapConfig, map_region, prediction
from torchgeo_lsr.mapping.engine import QTileWriter, TileWindows, quantize, read_q_sum
from torchgeo_lsr.mapping.prediction import load_model, row_bands
from torchgeo_lsr.sample_city import make_sample_city

TINY = MapConfig(
    steps=4,
    batch_size=2,
    patch_size=64,
    num_filters=4,
    num_layers=2,
    window=200,
    accelerator="cpu",
    save_probs=True,
    save_uncertainty=True,
)


@pytest.mark.parametrize(
    ("height", "width", "pixels"), [(600, 1000, 300_000), (5, 7, 1), (1024, 50, 1 << 21)]
)
def test_row_bands_cover_the_grid_once(height: int, width: int, pixels: int) -> None:
    grid = Grid("EPSG:26917", from_origin(0, 0, 1, 1), height, width)
    bands = row_bands(grid, pixels)
    rows = np.zeros(height, int)
    for band in bands:
        assert (band.col_off, band.width) == (0, width)
        rows[band.row_off : band.row_off + band.height] += 1
    assert (rows == 1).all()
    # whole blocks of 256 rows but the last, at least one block
    assert all(b.height % 256 == 0 for b in bands[:-1])
    assert bands[0].height == min(height, max(256, pixels // width // 256 * 256))


@pytest.fixture(scope="module")
def tall(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-tile region of 600 px: several windows and several bands of rows."""
    root = tmp_path_factory.mktemp("tall") / "region"
    make_sample_city(root, seed=1, tiles=1, size=600, progress=False)
    return root


def _whole_tile_maps(region: Path, out: Path) -> dict[str, np.ndarray]:
    """q and r class maps computed on the whole tile at once (the reference)."""
    task = load_model(out / "checkpoints" / "final.ckpt")
    ckpt = torch.load(out / "checkpoints" / "final.ckpt", weights_only=True)
    norm = ckpt["lsr_normalization"]
    tile = next((region / "naip").glob("*.tif"))
    with rasterio.open(tile) as src:
        image = torch.from_numpy(src.read()).float()[None]
    mean = torch.tensor(norm["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(norm["std"]).reshape(1, -1, 1, 1)
    with torch.no_grad():
        q = torch.softmax(task.model((image - mean) / std), dim=1)[0]
    q = quantize(q).float() / 65535  # as map stores q
    with rasterio.open(out / "prior" / tile.name) as src:
        prior = torch.from_numpy(read_prior(src))
    eps = 1e-4
    q_mean = q.mean(dim=(1, 2))  # one tile: the region mean
    valid = prior.sum(0) > 0
    r = implicit_posterior(
        smooth_probs(q[None], eps),
        smooth_probs(prior[None], eps),
        q_mean=smooth_probs(q_mean[None], eps)[0],
        valid=valid[None],
    )[0]
    r = torch.where(valid[None], r, q)
    return {"q": q.argmax(0).numpy(), "r": r.argmax(0).numpy()}


def test_streamed_maps_equal_the_whole_tile(
    tall: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction, "Q_MEMORY_BYTES", 0)  # pass 1 through work files
    monkeypatch.setattr(prediction, "BAND_PIXELS", 1)  # pass 2 in bands of 256 rows

    def never(self: TileWindows) -> Any:
        raise AssertionError("a tile's q was assembled whole")

    monkeypatch.setattr(TileWindows, "assemble", never)
    bands: list[int] = []
    real_bands = prediction.row_bands

    def counting(grid: Grid, pixels: int = 1) -> Any:
        windows = real_bands(grid, pixels)
        bands.append(len(windows))
        return windows

    monkeypatch.setattr(prediction, "row_bands", counting)
    out = tmp_path / "map"
    map_region(tall, out, TINY, progress=False)
    assert max(bands, default=0) == 3  # 600 rows: 256 + 256 + 88
    reference = _whole_tile_maps(tall, out)
    tile = next((tall / "naip").glob("*.tif")).name
    for name in ("q", "r"):
        with rasterio.open(out / name / tile) as src:
            written = src.read(1)
        # float round-off between the windowed and the whole-tile forward pass may flip
        # an exact tie; nothing else may differ
        assert (written != reference[name]).mean() < 1e-4, name
    # the probability and uncertainty rasters were written band by band too, and agree
    with rasterio.open(out / "probs" / "q" / tile) as src:
        probs = src.read().astype(float) / 255
    with rasterio.open(out / "q" / tile) as src:
        assert (probs.argmax(0) == src.read(1)).mean() > 0.99
    for layer in ("q_entropy", "r_entropy", "r_maxprob"):
        with rasterio.open(out / "uncertainty" / layer / tile) as src:
            assert src.shape == (600, 600)


def test_in_memory_and_streamed_outputs_are_the_same_bytes(
    tall: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held in memory (one band) or streamed (work files, bands): identical files."""
    held = tmp_path / "held"
    map_region(tall, held, TINY, progress=False)
    assert not (held / "work").exists()
    monkeypatch.setattr(prediction, "Q_MEMORY_BYTES", 0)
    monkeypatch.setattr(prediction, "BAND_PIXELS", 1)
    streamed = tmp_path / "streamed"
    map_region(tall, streamed, TINY, progress=False)
    files = [p.relative_to(held) for p in held.rglob("*.tif") if "work" not in p.parts]
    assert len(files) >= 8
    for rel in files:
        with rasterio.open(held / rel) as a, rasterio.open(streamed / rel) as b:
            assert np.array_equal(a.read(), b.read()), rel
            assert a.tags() == b.tags(), rel


def test_work_file_sums_equal_the_whole_tile(tmp_path: Path) -> None:
    """The q sum a work file carries is the whole tile's, however it was split."""
    torch.manual_seed(0)
    codes = torch.randint(0, 65536, (3, 40, 30), dtype=torch.int32).to(torch.uint16)
    windows = iter(
        [
            ((0, 0, 25, 30), codes[:, :25]),
            ((25, 0, 15, 10), codes[:, 25:, :10]),
            ((25, 10, 15, 20), codes[:, 25:, 10:]),
        ]
    )
    tile = tmp_path / "t.tif"
    grid = Grid("EPSG:26917", from_origin(0, 40, 1, 1), 40, 30)
    with rasterio.open(tile, "w", **grid.profile(1, "uint8")) as dst:
        dst.write(np.zeros((1, 40, 30), np.uint8))
    writer = QTileWriter([tile], tmp_path / "work", key="k")

    class Trainer:
        global_rank = 0

    writer.write_on_batch_end(Trainer(), None, TileWindows(0, 40, 30, windows), None, None, 0, 0)  # type: ignore[arg-type]
    found = read_q_sum(tmp_path / "work" / "t.tif", "k")
    assert found is not None
    total, count = found
    assert count == 1200
    expected = codes.to(torch.float64).sum(dim=(1, 2)) / 65535
    assert torch.equal(total, expected)
    with rasterio.open(tmp_path / "work" / "t.tif") as src:
        assert np.array_equal(src.read(), codes.numpy())


class _Recorder(torch.nn.Module):
    """A 1x1 convolution that notes, on every call, whether CPU autocast is on."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 3, 1)
        self.autocast: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.conv(x)


def _tile(tmp_path: Path, height: int = 60, width: int = 50) -> tuple[Path, torch.Tensor]:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, height, width), dtype=np.uint8)
    tile = tmp_path / "t.tif"
    grid = Grid("EPSG:26917", from_origin(0, height, 1, 1), height, width)
    with rasterio.open(tile, "w", **grid.profile(4, "uint8")) as dst:
        dst.write(data)
    return tile, torch.from_numpy(data)


def _trainer(precision: str, callbacks: list[Any]) -> Any:
    from lightning.pytorch import Trainer

    return Trainer(
        accelerator="cpu",
        precision=precision,  # type: ignore[arg-type]
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )


@pytest.mark.parametrize(("precision", "autocast"), [("bf16-mixed", True), ("32-true", False)])
def test_windows_run_under_the_trainers_precision(
    tmp_path: Path, precision: str, autocast: bool
) -> None:
    """The windows run when the writer reads them, after predict_step: still in precision."""
    from torch.utils.data import DataLoader

    from torchgeo_lsr.mapping.engine import TileDataset, TilePredictor

    tile, _ = _tile(tmp_path)
    model = _Recorder()
    held: dict[str, torch.Tensor] = {}
    writer = QTileWriter([tile], tmp_path / "work", key="k", hold=held)
    loader = DataLoader(TileDataset([tile]), batch_size=1)
    predictor = TilePredictor(model, margin=0, window=32)
    _trainer(precision, [writer]).predict(predictor, dataloaders=loader, return_predictions=False)
    assert len(model.autocast) == 4  # 2 x 2 windows of 32 px
    assert model.autocast == [autocast] * 4
    assert held["t"].shape == (3, 60, 50)


def test_predict_without_a_writer_returns_each_tile(tmp_path: Path) -> None:
    """return_predictions=True hands back one TileWindows per tile, the network's q."""
    from torch.utils.data import DataLoader

    from torchgeo_lsr.mapping.engine import TileDataset, TilePredictor

    tile, data = _tile(tmp_path)
    model = _Recorder()
    loader = DataLoader(TileDataset([tile]), batch_size=1)
    out = _trainer("32-true", []).predict(
        TilePredictor(model, margin=0, window=32), dataloaders=loader, return_predictions=True
    )
    assert out is not None
    assert len(out) == 1
    tile_q = out[0]
    assert isinstance(tile_q, TileWindows)
    assert (tile_q.index, tile_q.height, tile_q.width) == (0, 60, 50)
    with torch.no_grad():  # the reference: a 1x1 convolution by hand, whole tile at once
        x = data.double() / 255
        w = model.conv.weight.double()[:, :, 0, 0]
        logits = torch.einsum("kc,chw->khw", w, x) + model.conv.bias.double()[:, None, None]
        expected = quantize(torch.softmax(logits, dim=0).float())
    diff = (tile_q.assemble().int() - expected.int()).abs()
    assert int(diff.max()) <= 1  # float32 round-off may move a code by one


def test_progress_counts_a_tile_once_it_is_written(
    tall: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer computes a tile (its windows are lazy), then progress counts it."""
    from torchgeo_lsr.progress import Progress

    events: list[str] = []
    write = QTileWriter.write_on_batch_end
    update = Progress.update

    def writing(self: QTileWriter, *args: Any, **kwargs: Any) -> None:
        write(self, *args, **kwargs)
        events.append("written")

    def counting(self: Progress, *args: Any, **kwargs: Any) -> Any:
        if self.stage == "prediction":
            events.append("counted")
        return update(self, *args, **kwargs)

    monkeypatch.setattr(QTileWriter, "write_on_batch_end", writing)
    monkeypatch.setattr(Progress, "update", counting)
    map_region(tall, tmp_path / "map", TINY, progress=True)
    assert events == ["written", "counted"]
