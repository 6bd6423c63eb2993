"""Tests for torchgeo_lsr.trainers.LabelSuperResolutionTask."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer

from torchgeo_lsr._compat import SemanticSegmentationTask
from torchgeo_lsr.datamodules import LSRDataModule
from torchgeo_lsr.losses import (
    EMLoss,
    HardCrossEntropyLoss,
    NLLUnionLoss,
    QRLoss,
    RQLoss,
    SoftCrossEntropyLoss,
    qr_loss,
    smooth_probs,
)
from torchgeo_lsr.trainers import LabelSuperResolutionTask

TINY = Path(__file__).parent / "data" / "tiny"
EPS = 1e-4


def make_task(**kwargs: object) -> LabelSuperResolutionTask:
    torch.manual_seed(0)
    defaults: dict[str, object] = {
        "in_channels": 3,
        "num_classes": 4,
        "num_filters": 6,
        "num_layers": 3,
    }
    return LabelSuperResolutionTask(**(defaults | kwargs))  # type: ignore[arg-type]


def make_batch(
    b: int = 2, size: int = 16, classes: int = 4, seed: int = 0
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randn(b, 3, size, size, generator=g),
        "prior": torch.softmax(2 * torch.randn(b, classes, size, size, generator=g), dim=1),
        "mask": torch.randint(0, classes, (b, size, size), generator=g),
    }


def fit_recording(
    trainer_kwargs: dict[str, Any],
    record: Callable[[LabelSuperResolutionTask], object],
    datamodule: LSRDataModule,
    **hparams: object,
) -> tuple[list[object], Trainer]:
    """Fit a small task with a quiet Trainer; return ``record(task)`` at every training
    step, and the Trainer."""
    trainer = Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    seen: list[object] = []

    class Spy(LabelSuperResolutionTask):
        def training_step(self, batch, batch_idx, dataloader_idx=0):  # type: ignore[no-untyped-def]
            seen.append(record(self))
            return super().training_step(batch, batch_idx)

    torch.manual_seed(0)
    defaults: dict[str, object] = {
        "in_channels": 4,
        "num_classes": 4,
        "num_filters": 4,
        "num_layers": 2,
    }
    trainer.fit(Spy(**(defaults | hparams)), datamodule=datamodule)  # type: ignore[arg-type]
    return seen, trainer


def tiny_datamodule(**kwargs: object) -> LSRDataModule:
    args: dict[str, object] = {
        "images": TINY / "naip",
        "priors": TINY / "prior",
        "labels": TINY / "labels",
        "label_map": {1: 0, 2: 1, 3: 2, 4: 3},
        "patch_size": 32,
        "batch_size": 4,
        "train_length": 8,
    }
    return LSRDataModule(**(args | kwargs))  # type: ignore[arg-type]


class TestConstruction:
    def test_is_a_torchgeo_segmentation_task(self) -> None:
        assert isinstance(make_task(), SemanticSegmentationTask)

    @pytest.mark.parametrize(
        ("loss", "cls", "form"),
        [
            ("qr", QRLoss, "free_energy"),
            ("qr_kl", QRLoss, "kl"),
            ("rq", RQLoss, None),
            ("ce_soft", SoftCrossEntropyLoss, None),
            ("ce_hard", HardCrossEntropyLoss, None),
            ("nll_union", NLLUnionLoss, None),
        ],
    )
    def test_loss_dispatch(self, loss: str, cls: type, form: str | None) -> None:
        task = make_task(loss=loss, prior_smoothing=0.01, output_smoothing=0.02)
        assert type(task.criterion) is cls
        assert task.criterion.prior_smoothing == 0.01
        assert task.criterion.output_smoothing == 0.02
        if form is not None:
            assert task.criterion.form == form

    def test_hparams_hold_only_our_arguments(self) -> None:
        task = make_task(loss="rq")
        assert task.hparams["loss"] == "rq"
        assert task.hparams["model"] == "fcn"
        assert "backbone" not in task.hparams  # the parent's arguments do not leak in

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"loss": "ce"}, "loss must be one of"),
            ({"model": "unet"}, "model must be 'fcn'"),
            ({"labels": ["a", "b"]}, "2 names for 4 classes"),
            ({"warmup_epochs": -1}, ">= 0"),
            ({"lr_schedule": "step"}, "lr_schedule must be"),
            ({"warmup_loss": "qr"}, "warmup_loss must be"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            make_task(**kwargs)

    def test_border_defaults_to_half_the_receptive_field(self) -> None:
        assert make_task(num_layers=3).border == 3  # receptive field 7
        assert make_task(num_layers=5).border == 5  # receptive field 11 (paper)
        assert make_task(border=0).border == 0


class TestTrainingStep:
    def test_value_is_the_loss_on_the_cropped_smoothed_patch(self) -> None:
        task = make_task(loss="qr")
        batch = make_batch()
        loss = task.training_step(batch, 0)
        b = task.border
        with torch.no_grad():
            q = torch.softmax(task.model(batch["image"]), dim=1)[..., b:-b, b:-b]
            prior = batch["prior"][..., b:-b, b:-b]
            expected = qr_loss(smooth_probs(q, EPS), smooth_probs(prior, EPS))
        torch.testing.assert_close(loss.detach(), expected)

    def test_border_and_nodata_pixels_do_not_count(self) -> None:
        task = make_task(loss="rq")
        batch = make_batch()
        changed = {k: v.clone() for k, v in batch.items()}
        b = task.border
        changed["prior"][..., :b, :] = torch.rand_like(changed["prior"][..., :b, :])  # border
        changed["prior"][0, :, 8, 8] = 0  # nodata pixel: prior sums to 0
        reference = {k: v.clone() for k, v in changed.items()}
        reference["valid"] = torch.ones(2, 16, 16, dtype=torch.bool)
        reference["valid"][0, 8, 8] = False
        reference["prior"][0, :, 8, 8] = 0.25  # any value: excluded by `valid`
        torch.testing.assert_close(task.training_step(changed, 0), task.training_step(reference, 0))
        # ... and a nodata pixel does change the value when it is not excluded
        assert not torch.allclose(task.training_step(batch, 0), task.training_step(changed, 0))

    def test_gradients_reach_every_parameter(self) -> None:
        task = make_task(loss="rq")
        task.training_step(make_batch(), 0).backward()
        for name, p in task.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name

    def test_missing_prior_and_wrong_class_count(self) -> None:
        task = make_task()
        batch = make_batch()
        with pytest.raises(KeyError, match="no prior under 'prior'"):
            task.training_step({"image": batch["image"]}, 0)
        with pytest.raises(ValueError, match="num_classes=4"):
            task.training_step(make_batch(classes=3), 0)
        with pytest.raises(ValueError, match="too small for a border"):
            task.training_step(make_batch(size=6), 0)

    def test_prior_key(self) -> None:
        task = make_task(prior_key="nlcd_prior")
        batch = make_batch()
        batch["nlcd_prior"] = batch.pop("prior")
        assert torch.isfinite(task.training_step(batch, 0))

    @pytest.mark.parametrize(
        ("warmup_loss", "warmup_type"), [("ce_soft", SoftCrossEntropyLoss), ("em", EMLoss)]
    )
    def test_warmup_uses_its_loss_then_the_loss(self, warmup_loss: str, warmup_type: type) -> None:
        task = make_task(loss="rq", warmup_epochs=1, warmup_loss=warmup_loss)
        assert isinstance(task.warmup_criterion, warmup_type)
        task.train()
        assert task._criterion_for_epoch() is task.warmup_criterion
        task.eval()  # validation always scores the real objective
        assert task._criterion_for_epoch() is task.criterion
        assert make_task(loss="rq")._criterion_for_epoch() is not None
        seen, _ = fit_recording(
            {"max_epochs": 2},
            lambda task: type(task._criterion_for_epoch()),
            tiny_datamodule(train_length=4),
            loss="rq",
            warmup_epochs=1,
            warmup_loss=warmup_loss,
        )
        assert seen == [warmup_type, RQLoss]

    @pytest.mark.parametrize("loss", ["em", "qr"])
    def test_cosine_schedule_anneals_per_step_to_zero(self, loss: str) -> None:
        lrs, trainer = fit_recording(
            {"max_steps": 6, "limit_val_batches": 0},
            lambda task: task.trainer.optimizers[0].param_groups[0]["lr"],
            tiny_datamodule(train_length=8, batch_size=2),
            loss=loss,
            lr=0.01,
            lr_schedule="cosine",
        )
        expected = [0.005 * (1 + math.cos(math.pi * k / 6)) for k in range(6)]
        assert lrs == pytest.approx(expected, rel=1e-9)
        assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)

    def test_online_denominator_is_a_checkpointed_buffer(self) -> None:
        task = make_task(loss="qr_kl", denominator_momentum=0.9)
        assert "criterion.running_mean" in task.state_dict()
        task.train()
        task.training_step(make_batch(seed=1), 0)
        first = task.criterion.running_mean.clone()
        task.training_step(make_batch(seed=2), 0)
        assert not torch.allclose(first, task.criterion.running_mean)


class TestInitCheckpoint:
    def test_loads_lightning_and_plain_state_dicts(self, tmp_path: Path) -> None:
        source = make_task()
        source.model.last.bias.data.fill_(0.5)
        torch.save({"state_dict": source.state_dict()}, tmp_path / "task.ckpt")
        torch.save(source.model.state_dict(), tmp_path / "model.pt")
        for name in ("task.ckpt", "model.pt"):
            torch.manual_seed(1)  # different random init, overwritten by the checkpoint
            task = LabelSuperResolutionTask(
                in_channels=3,
                num_classes=4,
                num_filters=6,
                num_layers=3,
                init_checkpoint=str(tmp_path / name),
            )
            for key, value in source.model.state_dict().items():
                torch.testing.assert_close(task.model.state_dict()[key], value)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="init_checkpoint"):
            make_task(init_checkpoint=str(tmp_path / "nope.ckpt"))


class TestPredictStep:
    def test_q_and_r_are_distributions_and_r_is_the_implicit_posterior(self) -> None:
        task = make_task(prior_smoothing=0, output_smoothing=0).eval()
        batch = make_batch()
        with torch.no_grad():
            out = task.predict_step(batch, 0)
            q = torch.softmax(task.model(batch["image"]), dim=1)
        torch.testing.assert_close(out["q"], q)
        torch.testing.assert_close(out["r"].sum(dim=1), torch.ones(2, 16, 16))
        # slow reference: r_i(l) = P_i(l) q_i(l) / S_l, normalised over l
        s = q.sum(dim=(0, 2, 3))
        num = batch["prior"] * q / s.view(1, -1, 1, 1)
        torch.testing.assert_close(out["r"], num / num.sum(dim=1, keepdim=True))

    def test_region_denominator(self) -> None:
        task = make_task(prior_smoothing=0, output_smoothing=0).eval()
        batch = make_batch()
        task.region_q_mean = torch.tensor([0.7, 0.1, 0.1, 0.1])
        with torch.no_grad():
            out = task.predict_step(batch, 0)
        num = batch["prior"] * out["q"] / task.region_q_mean.view(1, -1, 1, 1)
        torch.testing.assert_close(out["r"], num / num.sum(dim=1, keepdim=True))

    def test_region_denominator_is_smoothed_like_q(self) -> None:
        """A raw region mean of q is smoothed as q is (with region = batch: the batch r)."""
        task = make_task(prior_smoothing=1e-4, output_smoothing=1e-2).eval()
        batch = make_batch()
        with torch.no_grad():
            batch_r = task.predict_step(batch, 0)["r"]
            task.region_q_mean = task.predict_step(batch, 0)["q"].mean(dim=(0, 2, 3))
            region_r = task.predict_step(batch, 0)["r"]
        torch.testing.assert_close(region_r, batch_r)

    def test_without_prior_only_q(self) -> None:
        out = make_task().eval().predict_step({"image": make_batch()["image"]}, 0)
        assert set(out) == {"q"}


def test_validation_metrics_equal_an_independent_count() -> None:
    """val_acc_q / val_acc_r / val_miou_q against a slow loop over the validation grid."""
    task = make_task(
        in_channels=4, num_layers=2, ignore_index=255, prior_smoothing=0, output_smoothing=0
    )
    dm = tiny_datamodule()
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.validate(task, datamodule=dm, verbose=False)[0]
    assert {"val_loss", "val_acc_q", "val_miou_q", "val_acc_r", "val_miou_r"} <= set(metrics)

    b = task.border
    correct_q = correct_r = total = 0
    inter = torch.zeros(4)
    union = torch.zeros(4)
    task.eval()
    for batch in dm.val_dataloader():
        image = (batch["image"] - 0.0) / 255.0
        with torch.no_grad():
            q = torch.softmax(task.model(image), dim=1)[..., b:-b, b:-b]
        prior = batch["prior"][..., b:-b, b:-b]
        mask = batch["mask"][..., b:-b, b:-b]
        r = prior * q / q.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
        keep = mask != 255
        pq, pr = q.argmax(dim=1)[keep], r.argmax(dim=1)[keep]
        t = mask[keep]
        correct_q += int((pq == t).sum())
        correct_r += int((pr == t).sum())
        total += int(keep.sum())
        for c in range(4):
            inter[c] += ((pq == c) & (t == c)).sum()
            union[c] += ((pq == c) | (t == c)).sum()
    assert metrics["val_acc_q"] == pytest.approx(correct_q / total, abs=1e-6)
    assert metrics["val_acc_r"] == pytest.approx(correct_r / total, abs=1e-6)
    present = union > 0
    assert metrics["val_miou_q"] == pytest.approx(
        float((inter[present] / union[present]).mean()), abs=1e-5
    )


def test_a_patch_task_without_its_step_cannot_be_built() -> None:
    from torchgeo_lsr.trainers import PatchTask

    class NoStep(PatchTask):  # type: ignore[misc]
        def configure_models(self) -> None:
            pass

    with pytest.raises(TypeError, match="_shared_step"):
        NoStep()
