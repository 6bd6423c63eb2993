"""torchgeo_lsr.plot and the figures it draws for datamodules and the task: their content."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, Logger

from torchgeo_lsr.classes import CHESAPEAKE4, ENVIROATLAS5, NLCD
from torchgeo_lsr.datamodules import LSRDataModule
from torchgeo_lsr.plot import (
    class_rgb,
    denormalize,
    entropy,
    image_rgb,
    implicit_model,
    plot_confusion,
    plot_implicit_model,
    plot_iou_bars,
    plot_posterior,
    plot_prior,
    plot_prior_steps,
    plot_sample,
    plot_training_curves,
    prior_rgb,
)
from torchgeo_lsr.priors.builder import PriorConfig
from torchgeo_lsr.priors.transform import PriorTransform
from torchgeo_lsr.trainers import LabelSuperResolutionTask

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TINY = Path(__file__).parent / "data" / "tiny"
COLORS = np.asarray(ENVIROATLAS5.colors, dtype=float) / 255
NLCD_COLORS = np.asarray(NLCD.colors, dtype=float) / 255
WHITE = [1.0, 1.0, 1.0]


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _shown(ax: Any) -> np.ndarray:
    """The array of an axis's (only) image."""
    (image,) = ax.get_images()
    return np.asarray(image.get_array())


def _titles(fig: Any) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _legend_texts(legend: Any) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def test_prior_rgb_mixes_class_colours_by_probability() -> None:
    p = np.zeros((5, 2, 2))
    p[3, 0, 0] = 1.0  # tree canopy
    p[0, 0, 1], p[2, 0, 1] = 0.25, 0.75  # water and barren
    p[:, 1, 0] = 0.2  # uniform
    rgb = prior_rgb(torch.from_numpy(p), ENVIROATLAS5)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_allclose(rgb[0, 0], COLORS[3])
    np.testing.assert_allclose(rgb[0, 1], 0.25 * COLORS[0] + 0.75 * COLORS[2])
    np.testing.assert_allclose(rgb[1, 0], COLORS.mean(0))
    np.testing.assert_allclose(rgb[1, 1], [1.0, 1.0, 1.0])  # no information: white
    with pytest.raises(ValueError, match="prior has 3 classes; the scheme has 5"):
        prior_rgb(np.ones((3, 1, 1)), ENVIROATLAS5)


def test_class_rgb_and_image_rgb() -> None:
    classes = np.array([[0, 4], [255, 1]])
    rgb = class_rgb(classes, ENVIROATLAS5)
    np.testing.assert_allclose(rgb[0, 0], COLORS[0])
    np.testing.assert_allclose(rgb[0, 1], COLORS[4])
    np.testing.assert_allclose(rgb[1, 0], [1.0, 1.0, 1.0])
    image = np.zeros((4, 10, 10))
    image[0, :5] = 200.0  # red in the top half, NIR everywhere
    image[3] = 90.0
    out = image_rgb(image)
    assert out.shape == (10, 10, 3)
    assert out.min() >= 0
    assert out.max() <= 1
    assert out[0, 0, 0] == 1.0
    assert out[0, 0, 1] == 0.0
    assert out[9, 9, 0] == 0.0
    x = torch.tensor([[[0.0]], [[1.0]]])
    torch.testing.assert_close(
        denormalize(x, torch.tensor([10.0, 20.0]), torch.tensor([2.0, 4.0])),
        torch.tensor([[[10.0]], [[24.0]]]),
    )


def test_plot_sample_panels_titles_pixels_and_legend() -> None:
    g = torch.Generator().manual_seed(0)
    prior = torch.softmax(torch.randn(5, 6, 7, generator=g), 0)
    sample = {
        "image": torch.rand(4, 6, 7, generator=g),
        "prior": prior,
        "q": prior.roll(1, 0),
        "mask": torch.randint(0, 5, (6, 7), generator=g),
    }
    fig = plot_sample(sample, ENVIROATLAS5, suptitle="patch 3")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["image", "prior", "q (network)", "labels"]
    shown = [ax.get_images()[0].get_array() for ax in axes]
    assert all(np.asarray(a).shape == (6, 7, 3) for a in shown)
    np.testing.assert_allclose(np.asarray(shown[1]), prior_rgb(prior, ENVIROATLAS5))
    np.testing.assert_allclose(np.asarray(shown[3]), class_rgb(sample["mask"], ENVIROATLAS5))
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(ENVIROATLAS5.names)
    assert fig._suptitle is not None
    assert fig._suptitle.get_text() == "patch 3"
    untitled = plot_sample({"mask": sample["mask"]}, 5, show_titles=False, legend=False)
    assert [ax.get_title() for ax in untitled.axes] == [""]
    assert not untitled.legends
    with pytest.raises(ValueError, match="none of"):
        plot_sample({"bounds": torch.zeros(4)}, ENVIROATLAS5)


class _Board:
    def __init__(self) -> None:
        self.figures: list[tuple[str, Any]] = []

    def add_figure(self, tag: str, figure: Any, global_step: int | None = None) -> None:
        self.figures.append((tag, [ax.get_title() for ax in figure.axes]))


class _FigureLogger(Logger):
    """A logger whose ``experiment`` can ``add_figure``, as TensorBoard's."""

    def __init__(self) -> None:
        super().__init__()
        self.board = _Board()

    @property
    def name(self) -> str:
        return "figures"

    @property
    def version(self) -> int:
        return 0

    @property
    def experiment(self) -> _Board:
        return self.board

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass


def _datamodule(**kwargs: Any) -> LSRDataModule:
    return LSRDataModule(
        images=TINY / "naip",
        priors=TINY / "prior",
        labels=TINY / "labels",
        label_map={1: 0, 2: 1, 3: 2, 4: 3},
        patch_size=32,
        batch_size=2,
        train_length=4,
        **kwargs,
    )


def test_the_task_logs_validation_figures_through_datamodule_plot() -> None:
    logger = _FigureLogger()
    trainer = Trainer(
        logger=logger,
        max_epochs=1,
        limit_val_batches=3,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    task = LabelSuperResolutionTask(in_channels=4, num_classes=4, num_filters=4, num_layers=2)
    task.figure_batches = 2
    trainer.validate(task, datamodule=_datamodule())
    tags = [tag for tag, _ in logger.board.figures]
    assert tags == ["image/0", "image/1"]
    titles = logger.board.figures[0][1]
    assert titles == ["image", "prior", "q (network)", "r (posterior)", "labels"]


def test_figure_sample_is_the_first_patch_denormalised() -> None:
    dm = _datamodule(mean=[10.0, 20.0, 30.0, 40.0], std=[2.0, 2.0, 2.0, 2.0], augment=False)
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    raw = batch["image"][0].float()
    batch = dm.on_after_batch_transfer(batch, 0)
    task = LabelSuperResolutionTask(in_channels=4, num_classes=4, num_filters=4, num_layers=2)
    task.eval()
    sample = task.figure_sample(batch, dm)
    torch.testing.assert_close(sample["image"], raw, atol=1e-4, rtol=0)
    assert sample["q"].shape == sample["r"].shape == sample["prior"].shape == (4, 32, 32)
    torch.testing.assert_close(sample["q"].sum(0), torch.ones(32, 32))
    fig = dm.plot(sample)
    assert len(fig.axes) == 5
    assert len(fig.legends[0].get_texts()) == 4
    named = _datamodule(classes="chesapeake4").plot(sample)
    assert next(t.get_text() for t in named.legends[0].get_texts()) == "water"


# ------------------------------------------------------------------ the figures of issue 16


def test_entropy_against_a_hand_computation() -> None:
    p = np.zeros((5, 2, 3))
    p[:, 0, 0] = 0.2  # uniform: log 5
    p[2, 0, 1] = 1.0  # one-hot: 0
    p[0, 0, 2], p[4, 0, 2] = 0.25, 0.75
    p[0, 1, 0], p[4, 1, 0] = 1.0, 3.0  # unnormalised mass: its distribution's entropy
    # p[:, 1, 1] and p[:, 1, 2] stay zero: no information -> 0
    h = entropy(torch.from_numpy(p))
    two = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(h, [[math.log(5), 0.0, two], [two, 0.0, 0.0]], atol=1e-12)
    with pytest.raises(ValueError, match=r"expected \(K, H, W\)"):
        entropy(np.ones((2, 3)))


def _half_prior() -> np.ndarray:
    """(5, 4, 6): one-hot class 2 on the left half, uniform on the right, empty at (0, 5)."""
    p = np.zeros((5, 4, 6))
    p[2, :, :3] = 1.0
    p[:, :, 3:] = 0.2
    p[:, 0, 5] = 0.0
    return p


def test_plot_prior_composite_entropy_colorbar_and_legend() -> None:
    p = _half_prior()
    fig = plot_prior(torch.from_numpy(p), ENVIROATLAS5, suptitle="tile 1")
    assert _titles(fig) == ["prior", "entropy", ""]  # the third axis: the colorbar
    rgb, h = _shown(fig.axes[0]), _shown(fig.axes[1])
    assert rgb.shape == (4, 6, 3)
    assert h.shape == (4, 6)
    np.testing.assert_allclose(rgb[:, :3], np.broadcast_to(COLORS[2], (4, 3, 3)))
    np.testing.assert_allclose(rgb[1, 4], COLORS.mean(0))
    np.testing.assert_allclose(rgb[0, 5], WHITE)
    np.testing.assert_allclose(h[:, :3], 0.0)
    np.testing.assert_allclose(h[1:, 3:], math.log(5))
    assert h[0, 5] == 0.0
    assert fig.axes[1].get_images()[0].get_clim() == pytest.approx((0.0, math.log(5)))
    assert fig.axes[2].get_ylabel() == "nats"
    assert _legend_texts(fig.legends[0]) == list(ENVIROATLAS5.names)
    legend_colors = [h.get_facecolor()[:3] for h in fig.legends[0].legend_handles]
    np.testing.assert_allclose(legend_colors, COLORS)
    assert fig._suptitle is not None
    assert fig._suptitle.get_text() == "tile 1"
    bare = plot_prior(p, ENVIROATLAS5, show_titles=False, legend=False)
    assert _titles(bare) == ["", "", ""]
    assert not bare.legends
    assert bare._suptitle is None
    with pytest.raises(ValueError, match="prior has 3 classes; the scheme has 5"):
        plot_prior(np.ones((3, 2, 2)), ENVIROATLAS5)


def test_plot_posterior_panels_composites_argmax_and_labels() -> None:
    q = np.zeros((5, 4, 6))
    q[1] = 1.0  # impervious everywhere
    q[:, 0, 0] = [0.4, 0, 0, 0, 0.6]  # mostly grass
    r = _half_prior()
    labels = np.full((4, 6), 3)
    labels[2, 1], labels[3, 3] = 255, 0  # ignored (white), water
    image = np.random.default_rng(0).random((4, 4, 6))
    fig = plot_posterior(
        torch.from_numpy(q), r, ENVIROATLAS5, torch.from_numpy(labels), image=image
    )
    assert _titles(fig) == ["image", "q (network)", "r (posterior)", "labels"]
    shown = [_shown(ax) for ax in fig.axes]
    assert all(a.shape == (4, 6, 3) for a in shown)
    np.testing.assert_allclose(shown[0], image_rgb(image))
    np.testing.assert_allclose(shown[1][1, 1], COLORS[1])
    np.testing.assert_allclose(shown[1][0, 0], 0.4 * COLORS[0] + 0.6 * COLORS[4])
    np.testing.assert_allclose(shown[2][2, 0], COLORS[2])
    np.testing.assert_allclose(shown[2][0, 5], WHITE)
    np.testing.assert_allclose(shown[3][0, 0], COLORS[3])
    np.testing.assert_allclose(shown[3][2, 1], WHITE)
    np.testing.assert_allclose(shown[3][3, 3], COLORS[0])
    assert _legend_texts(fig.legends[0]) == list(ENVIROATLAS5.names)
    hard = plot_posterior(q, r, ENVIROATLAS5, argmax=True, suptitle="argmax", legend=False)
    assert _titles(hard) == ["q (network)", "r (posterior)"]
    np.testing.assert_allclose(_shown(hard.axes[0])[0, 0], COLORS[4])  # the argmax's colour
    np.testing.assert_allclose(_shown(hard.axes[1])[3, 1], COLORS[2])
    np.testing.assert_allclose(_shown(hard.axes[1])[0, 5], WHITE)  # no information
    assert not hard.legends
    with pytest.raises(ValueError, match=r"q must have shape \(K, H, W\)"):
        plot_posterior(q[None], r, ENVIROATLAS5)


def test_plot_prior_steps_titles_colours_and_legends() -> None:
    nlcd = np.full((4, 6), 8)  # Deciduous Forest
    nlcd[:, 3:] = 1  # Open Water
    column = np.zeros((5, 4, 6))
    column[3, :, :3], column[0, :, 3:] = 1.0, 1.0
    stages = {
        "nlcd": torch.from_numpy(nlcd),
        "cooccurrence": torch.from_numpy(column),
        "extra": column,
        "prior": _half_prior(),
    }
    fig = plot_prior_steps(stages, ENVIROATLAS5, suptitle="window")
    assert _titles(fig) == ["NLCD", "co-occurrence column", "extra", "prior (simplex)"]
    shown = [_shown(ax) for ax in fig.axes]
    assert all(a.shape == (4, 6, 3) for a in shown)
    np.testing.assert_allclose(shown[0][0, 0], NLCD_COLORS[8])
    np.testing.assert_allclose(shown[0][3, 5], NLCD_COLORS[1])
    np.testing.assert_allclose(shown[1][2, 2], COLORS[3])
    np.testing.assert_allclose(shown[1][2, 3], COLORS[0])
    np.testing.assert_allclose(shown[3][1, 1], COLORS[2])
    assert _legend_texts(fig.legends[0]) == list(ENVIROATLAS5.names)
    nlcd_legend = fig.axes[0].get_legend()
    assert nlcd_legend is not None
    assert _legend_texts(nlcd_legend) == ["Open Water", "Deciduous Forest"]
    with pytest.raises(ValueError, match="no stages"):
        plot_prior_steps({}, ENVIROATLAS5)
    with pytest.raises(ValueError, match=r"stage 'blur' must have shape \(K, H, W\)"):
        plot_prior_steps({"blur": np.ones((1, 5, 4, 6))}, ENVIROATLAS5)


def test_plot_prior_steps_of_prior_transform_stages() -> None:
    nlcd = torch.full((12, 12), 9)  # Evergreen Forest
    nlcd[:, 6:] = 3  # Developed, Open Space
    stages = PriorTransform(PriorConfig(sigma=2.0, kernel_size=None)).stages({"mask": nlcd})
    fig = plot_prior_steps(stages, ENVIROATLAS5, legend=False)
    assert _titles(fig) == ["NLCD", "co-occurrence column", "blur", "fusion", "prior (simplex)"]
    np.testing.assert_allclose(_shown(fig.axes[0]), class_rgb(nlcd, NLCD))
    np.testing.assert_allclose(_shown(fig.axes[4]), prior_rgb(stages["prior"], ENVIROATLAS5))
    assert fig.axes[0].get_legend() is None


def _slow_implicit_model(q: np.ndarray, valid: np.ndarray) -> np.ndarray:
    k, h, w = q.shape
    out = np.zeros_like(q)
    for c in range(k):
        total = sum(q[c, i, j] for i in range(h) for j in range(w) if valid[i, j])
        for i in range(h):
            for j in range(w):
                if valid[i, j] and total > 0:
                    out[c, i, j] = q[c, i, j] / total
    return out


def test_implicit_model_against_a_loop() -> None:
    rng = np.random.default_rng(1)
    q = rng.random((4, 5, 6))
    q[2] = 0.0  # a class the network never predicts: zeros
    valid = rng.random((5, 6)) > 0.3
    np.testing.assert_allclose(implicit_model(q, valid), _slow_implicit_model(q, valid))
    every = implicit_model(torch.from_numpy(q))
    np.testing.assert_allclose(every, _slow_implicit_model(q, np.ones((5, 6), dtype=bool)))
    np.testing.assert_allclose(every.sum(axis=(1, 2)), [1, 1, 0, 1])
    with pytest.raises(ValueError, match="valid has shape"):
        implicit_model(q, valid[:, :3])


def test_plot_implicit_model_panels_shared_scale_and_colorbar() -> None:
    rng = np.random.default_rng(2)
    q = torch.softmax(torch.from_numpy(rng.normal(size=(5, 6, 7))), 0)
    image = rng.random((4, 6, 7))
    fig = plot_implicit_model(q, ENVIROATLAS5, image=image, suptitle="Fig. D.4")
    assert _titles(fig) == ["image", *ENVIROATLAS5.names, ""]  # then the colorbar
    np.testing.assert_allclose(_shown(fig.axes[0]), image_rgb(image))
    model = implicit_model(q)
    for c in range(5):
        ax = fig.axes[1 + c]
        np.testing.assert_allclose(_shown(ax), model[c])
        assert ax.get_images()[0].get_clim() == pytest.approx((0.0, model.max()))
    assert fig.axes[-1].get_ylabel() == "P(x | l)"
    valid = np.ones((6, 7), dtype=bool)
    valid[:, :2] = False
    bare = plot_implicit_model(q, ENVIROATLAS5, valid=valid, show_titles=False)
    assert len(bare.axes) == 6
    np.testing.assert_allclose(_shown(bare.axes[0]), implicit_model(q, valid)[0])
    with pytest.raises(ValueError, match="q has 5 classes; the scheme has 4"):
        plot_implicit_model(q, CHESAPEAKE4)


def test_plot_confusion_cells_normalisation_and_labels() -> None:
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    names = ["water", "trees", "grass"]
    fig = plot_confusion(counts, names, suptitle="run 1")
    ax = fig.axes[0]
    rows = np.array([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(_shown(ax), rows)
    texts = {(t.get_position()): t.get_text() for t in ax.texts}
    assert texts[(0, 0)] == "0.75\n3"  # (column = predicted, row = true)
    assert texts[(1, 0)] == "0.25\n1"
    assert texts[(0, 2)] == "0.25\n2"
    assert texts[(2, 2)] == "0.50\n4"
    assert texts[(1, 1)] == "0.00\n0"
    assert len(ax.texts) == 9
    assert ax.get_xlabel() == "predicted"
    assert ax.get_ylabel() == "true"
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_title() == "confusion (row-normalised)"
    assert fig._suptitle is not None
    assert fig._suptitle.get_text() == "run 1"
    raw = plot_confusion(counts, names, normalize=False, show_titles=False)
    np.testing.assert_allclose(_shown(raw.axes[0]), counts)
    assert {t.get_position(): t.get_text() for t in raw.axes[0].texts}[(2, 2)] == "4"
    assert raw.axes[0].get_title() == ""
    with pytest.raises(ValueError, match=r"3 names need \(3, 3\)"):
        plot_confusion(np.ones((2, 2)), names)


def test_plot_iou_bars_heights_legend_and_nan() -> None:
    names = ["water", "trees", "grass"]
    ious = {"qr": [0.5, 0.25, 0.75], "rq": [0.4, float("nan"), 0.9], "prior": [0.1, 0.2, 0.3]}
    fig = plot_iou_bars(ious, names, suptitle="mIoU")
    (ax,) = fig.axes
    assert len(ax.containers) == 3
    heights = [[bar.get_height() for bar in c.patches] for c in ax.containers]
    assert heights == [[0.5, 0.25, 0.75], [0.4, 0.9], [0.1, 0.2, 0.3]]  # NaN: no bar
    centres = [[bar.get_x() + bar.get_width() / 2 for bar in c.patches] for c in ax.containers]
    width = 0.8 / 3
    np.testing.assert_allclose(centres[1], [-0.4 + 1.5 * width, 2 - 0.4 + 1.5 * width])
    assert _legend_texts(ax.get_legend()) == ["qr", "rq", "prior"]
    assert ax.get_ylabel() == "IoU"
    assert ax.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_title() == "per-class IoU"
    with pytest.raises(ValueError, match="'rq' has 2 IoUs for 3 classes"):
        plot_iou_bars({"rq": [0.1, 0.2]}, names)
    with pytest.raises(ValueError, match="no methods"):
        plot_iou_bars({}, names)


def _metrics_csv(root: Path) -> Path:
    """A metrics.csv as ``map`` writes it: Lightning's CSVLogger(save_dir, "logs", version 0)."""
    logger = CSVLogger(save_dir=root, name="logs", version=0)
    for step in range(0, 10):
        logger.log_metrics({"train_loss": 1.0 / (step + 1), "epoch": 0}, step=step)
        if step % 4 == 3:
            logger.log_metrics(
                {"val_loss": 2.0 / (step + 1), "val_miou_q": step / 10, "val_miou_r": step / 9},
                step=step,
            )
    logger.save()
    path = root / "logs" / "version_0" / "metrics.csv"
    assert path.exists()
    return path


def test_plot_training_curves_from_maps_csv_log(tmp_path: Path) -> None:
    path = _metrics_csv(tmp_path)
    header = path.read_text().splitlines()[0].split(",")
    assert "step" in header
    assert "train_loss" in header
    for source in (path, str(path), tmp_path):  # the file, or map's output folder
        fig = plot_training_curves(source, suptitle="map")
        assert _titles(fig) == ["loss", "metrics"]
        loss_ax, metric_ax = fig.axes
        lines = {line.get_label(): line for line in loss_ax.get_lines()}
        assert list(lines) == ["train_loss", "val_loss"]
        np.testing.assert_allclose(lines["train_loss"].get_xdata(), range(10))
        np.testing.assert_allclose(
            lines["train_loss"].get_ydata(), [1 / (s + 1) for s in range(10)]
        )
        np.testing.assert_allclose(lines["val_loss"].get_xdata(), [3, 7])
        np.testing.assert_allclose(lines["val_loss"].get_ydata(), [0.5, 0.25])
        metric_lines = {line.get_label(): line for line in metric_ax.get_lines()}
        assert list(metric_lines) == ["val_miou_q", "val_miou_r"]
        np.testing.assert_allclose(metric_lines["val_miou_r"].get_xdata(), [3, 7])
        np.testing.assert_allclose(metric_lines["val_miou_r"].get_ydata(), [3 / 9, 7 / 9])
        assert _legend_texts(loss_ax.get_legend()) == ["train_loss", "val_loss"]
        assert _legend_texts(metric_ax.get_legend()) == ["val_miou_q", "val_miou_r"]
        assert loss_ax.get_xlabel() == "step"
        plt.close(fig)
    only = plot_training_curves(path, keys=["val_miou_q", "absent"], show_titles=False)
    assert _titles(only) == [""]
    assert [line.get_label() for line in only.axes[0].get_lines()] == ["val_miou_q"]
    np.testing.assert_allclose(only.axes[0].get_lines()[0].get_ydata(), [0.3, 0.7])


def test_plot_training_curves_from_a_dataframe_and_errors(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    path = _metrics_csv(tmp_path)
    fig = plot_training_curves(pandas.read_csv(path), keys=["val_loss"])
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_xdata(), [3, 7])
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.25])
    bad = tmp_path / "no_step.csv"
    bad.write_text("epoch,train_loss\n0,1.0\n")
    with pytest.raises(ValueError, match=r"no_step\.csv has no 'step' column"):
        plot_training_curves(bad)
    with pytest.raises(ValueError, match=r"metrics\.csv has none of the keys \['lr'\]"):
        plot_training_curves(path, keys=["lr"])
    with pytest.raises(ValueError, match="the DataFrame has no 'step' column"):
        plot_training_curves(pandas.DataFrame({"loss": [1.0]}))
