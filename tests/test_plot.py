"""torchgeo_lsr.plot and the figures it draws for datamodules and the task: their content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import Logger

from torchgeo_lsr.classes import ENVIROATLAS5
from torchgeo_lsr.datamodules import LSRDataModule
from torchgeo_lsr.plot import class_rgb, denormalize, image_rgb, plot_sample, prior_rgb
from torchgeo_lsr.trainers import LabelSuperResolutionTask

matplotlib.use("Agg")

TINY = Path(__file__).parent / "data" / "tiny"
COLORS = np.asarray(ENVIROATLAS5.colors, dtype=float) / 255


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
