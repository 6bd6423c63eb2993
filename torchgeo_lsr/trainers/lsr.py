"""Label super-resolution as a TorchGeo segmentation task.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from ..checks import LRSchedule, WarmupLoss, check_choice
from ..losses import DEFAULT_SMOOTHING, LossName, implicit_posterior, make_loss, smooth_probs
from ..models import FCN, cpu_channels_last
from .base import PatchTask

__all__ = ["LRSchedule", "LabelSuperResolutionTask", "LossName", "WarmupLoss"]

_SPLITS = ("train", "val", "test")


class LabelSuperResolutionTask(PatchTask):
    """Train a segmentation network on a per-pixel prior instead of hi-res labels.

    Batches carry ``image`` ``(B, C_in, H, W)`` and a prior under ``prior_key``
    ``(B, C, H, W)`` (probabilities; pixels whose prior sums to 0 are nodata and
    ignored), optionally ``mask`` ``(B, H, W)`` hi-res labels used only for metrics, and
    optionally ``valid`` ``(B, H, W)`` booleans. The network's softmax output ``q`` is
    fitted to the prior with one of the losses of :mod:`torchgeo_lsr.losses`:

    * ``qr``: QR, free-energy form (paper eq. 4); ``qr_kl``: QR as KL(q‖r) (Fig. 2);
    * ``rq``: RQ, KL(r‖q); ``em``: RQ's EM form, KL(r‖q) with r held fixed
      (:func:`~torchgeo_lsr.losses.em_loss`);
    * ``ce_soft``, ``ce_hard`` ("hard naive"), ``nll_union``: baselines.

    When batches carry ``mask``, accuracy and mIoU of both ``q`` and the implicit
    posterior ``r`` are logged as ``{split}_acc_q``, ``{split}_miou_q``,
    ``{split}_acc_r``, ``{split}_miou_r`` (the same names on every TorchGeo line).

    Extends TorchGeo's ``SemanticSegmentation`` (``SemanticSegmentationTask`` before
    0.9) through its ``configure_models``, ``configure_losses`` and
    ``configure_metrics`` hooks; optimizer and scheduler come from
    :class:`torchgeo.trainers.BaseTask` (AdamW, ReduceLROnPlateau on ``val_loss``) unless
    the CLI config sets ``optimizer`` / ``lr_scheduler``.

    .. versionadded:: 0.1
    """

    #: ``weights`` of the parent task do not apply: see ``init_checkpoint``.
    ignore = ("weights",)

    def __init__(
        self,
        model: Literal["fcn"] = "fcn",
        in_channels: int = 4,
        num_classes: int = 5,
        num_filters: int = 128,
        num_layers: int = 5,
        loss: LossName = "qr",
        prior_key: str = "prior",
        prior_smoothing: float = DEFAULT_SMOOTHING,
        output_smoothing: float = DEFAULT_SMOOTHING,
        denominator_momentum: float | None = None,
        border: int | None = None,
        warmup_epochs: int = 0,
        warmup_loss: WarmupLoss = "ce_soft",
        init_checkpoint: str | None = None,
        ignore_index: int | None = None,
        labels: list[str] | None = None,
        lr: float = 1e-3,
        patience: int = 10,
        lr_schedule: LRSchedule = "plateau",
    ) -> None:
        """Initialise a new LabelSuperResolutionTask.

        Args:
            model: network architecture; ``"fcn"`` (:class:`torchgeo_lsr.models.FCN`).
            in_channels: number of image bands.
            num_classes: number of target classes (prior channels).
            num_filters: filters per hidden layer (paper: 128).
            num_layers: hidden layers (paper: 5, receptive field 11).
            loss: training objective, see the class docstring.
            prior_key: batch key of the prior.
            prior_smoothing: additive smoothing of the prior (paper: 1e-4).
            output_smoothing: additive smoothing of q (paper: 1e-4).
            denominator_momentum: if set, QR/RQ use a running estimate of the per-class
                mean of q across batches with this momentum (paper §A).
            border: pixels cropped from each patch side before loss and metrics;
                None uses half the receptive field.
            warmup_epochs: epochs of ``warmup_loss`` before switching to ``loss``
                (paper §A).
            warmup_loss: the warm-up objective: ``"ce_soft"`` (the paper's soft
                cross-entropy) or ``"em"`` (RQ's EM form,
                :func:`~torchgeo_lsr.losses.em_loss`). Before QR, EM's non-vanishing
                gradient lets the network learn every class the prior supports before QR
                takes over; QR alone can lose a small class for good (its logit gradient
                is proportional to q).
            init_checkpoint: optional Lightning checkpoint or state dict of a network of
                the same shape to start from (the paper's "pretrained" rows).
            ignore_index: label value of ``mask`` to leave out of the metrics.
            labels: optional class names.
            lr: learning rate for the default optimizer.
            patience: patience of the default ReduceLROnPlateau scheduler.
            lr_schedule: ``"plateau"`` (TorchGeo's default: AdamW, ReduceLROnPlateau on
                ``val_loss``) or ``"cosine"`` (AdamW with the learning rate annealed to 0
                over the run's optimizer steps, per step; a short run then ends on a
                settled network instead of its last noisy step).

        Raises:
            ValueError: on an unknown ``model`` or ``loss``, or bad numbers.
        """
        if model != "fcn":
            raise ValueError(f"model must be 'fcn', got {model!r}")
        check_choice("loss", loss, LossName)
        self._check_labels(labels, num_classes)
        check_choice("lr_schedule", lr_schedule, LRSchedule)
        check_choice("warmup_loss", warmup_loss, WarmupLoss)
        if warmup_epochs < 0 or (border is not None and border < 0):
            raise ValueError("warmup_epochs and border must be >= 0")
        super().__init__()
        #: Optional ``(C,)`` per-class mean of q over a whole region, used by
        #: :meth:`predict_step` for the implicit posterior (else the batch mean).
        self.region_q_mean: Tensor | None = None

    # ------------------------------------------------------------------ hooks
    def configure_models(self) -> None:
        """Build the FCN and optionally load initial weights."""
        hp = self.hparams
        self.model = FCN(hp["in_channels"], hp["num_classes"], hp["num_filters"], hp["num_layers"])
        if hp["init_checkpoint"]:
            state = _read_model_state(hp["init_checkpoint"])
            try:
                self.model.load_state_dict(state)
            except RuntimeError as err:
                shapes = {k: tuple(v.shape) for k, v in list(state.items())[:1]}
                raise ValueError(
                    f"init_checkpoint {hp['init_checkpoint']}: does not fit this network "
                    f"(in_channels={hp['in_channels']}, num_classes={hp['num_classes']}, "
                    f"num_filters={hp['num_filters']}, num_layers={hp['num_layers']}; the "
                    f"checkpoint's first layer is {shapes})"
                ) from err

    def configure_losses(self) -> None:
        """Build the training criterion and the warm-up criterion."""
        hp = self.hparams
        smoothing = {
            "prior_smoothing": hp["prior_smoothing"],
            "output_smoothing": hp["output_smoothing"],
        }
        self.criterion = make_loss(
            hp["loss"],
            **smoothing,
            momentum=hp["denominator_momentum"],
            num_classes=hp["num_classes"],
        )
        self.warmup_criterion = make_loss(hp["warmup_loss"], **smoothing)

    def configure_optimizers(self) -> Any:
        """TorchGeo's AdamW + ReduceLROnPlateau, or AdamW with per-step cosine annealing."""
        if self.hparams["lr_schedule"] == "plateau":
            return super().configure_optimizers()
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams["lr"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def configure_metrics(self) -> None:
        """Accuracy (micro) and mIoU (macro) for both q and r, per split."""
        kwargs = {
            "num_classes": self.hparams["num_classes"],
            "ignore_index": self.hparams["ignore_index"],
        }

        def collection(prefix: str, postfix: str) -> MetricCollection:
            return MetricCollection(
                {
                    "acc": MulticlassAccuracy(average="micro", **kwargs),
                    "miou": MulticlassJaccardIndex(average="macro", **kwargs),
                },
                prefix=prefix,
                postfix=postfix,
            )

        self.metrics = nn.ModuleDict(
            {
                f"{split}_{which}": collection(f"{split}_", f"_{which}")
                for split in _SPLITS
                for which in "qr"
            }
        )

    #: On the CPU, :meth:`forward` hands the network its input in channels-last memory
    #: format (:func:`~torchgeo_lsr.models.cpu_channels_last`). Other devices get the
    #: input as it is.
    channels_last = True

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        """Class logits of the network; channels-last input on the CPU (:attr:`channels_last`)."""
        if self.channels_last:
            x = cpu_channels_last(x)
        logits: Tensor = super().forward(x, *args, **kwargs)
        return logits

    # ------------------------------------------------------------- helpers
    def _probs_and_prior(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Softmax output, prior and validity mask, all border-cropped."""
        key = self.hparams["prior_key"]
        if key not in batch:
            raise KeyError(
                f"batch has no prior under {key!r} (keys: {sorted(batch)}); set prior_key"
            )
        q = self._crop(torch.softmax(self(batch["image"]).float(), dim=1))
        prior = self._crop(batch[key].to(q.dtype))
        if prior.shape != q.shape:
            raise ValueError(
                f"prior {tuple(prior.shape)} does not match the network output {tuple(q.shape)}: "
                f"check num_classes={self.hparams['num_classes']} and the prior's bands"
            )
        valid = prior.sum(dim=1) > 0
        if "valid" in batch:
            valid &= self._crop(batch["valid"].bool())
        return q, prior, valid

    def _posterior(
        self, q: Tensor, prior: Tensor, valid: Tensor, q_mean: Tensor | None = None
    ) -> Tensor:
        hp = self.hparams
        if q_mean is not None:  # a raw mean of q: smoothed as q is (= the mean of smoothed q)
            q_mean = smooth_probs(q_mean[None], hp["output_smoothing"])[0]
        return implicit_posterior(
            smooth_probs(q, hp["output_smoothing"]),
            smooth_probs(prior, hp["prior_smoothing"]),
            q_mean=q_mean,
            valid=valid,
        )

    def _criterion_for_epoch(self) -> nn.Module:
        if self.training and self.current_epoch < self.hparams["warmup_epochs"]:
            return self.warmup_criterion
        return self.criterion

    def _shared_step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        q, prior, valid = self._probs_and_prior(batch)
        loss: Tensor = self._criterion_for_epoch()(q, prior, valid)
        batch_size = q.shape[0]
        self._log_loss(split, loss, batch_size)
        if "mask" in batch:
            target = self._crop(batch["mask"]).long()
            with torch.no_grad():
                r = self._posterior(q.detach(), prior, valid)
            for which, probs in (("q", q.detach()), ("r", r)):
                metrics = self.metrics[f"{split}_{which}"]
                assert isinstance(metrics, MetricCollection)
                metrics(probs, target)
                self.log_dict(metrics, batch_size=batch_size)
        return loss

    #: Validation batches (from the first) whose figure is logged each validation.
    figure_batches = 10

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Validation loss and metrics; a figure of the batch's first patch for the logger.

        As TorchGeo's segmentation task: for the first :attr:`figure_batches` batches, when
        the logger can ``add_figure`` (TensorBoard) and the datamodule can ``plot``, the
        patch is drawn as image | prior | q | r | labels (``image/{batch_idx}``).
        """
        super().validation_step(batch, batch_idx, dataloader_idx)
        experiment: Any = getattr(self.logger, "experiment", None)
        datamodule: Any = getattr(self.trainer, "datamodule", None)
        if (
            batch_idx >= self.figure_batches
            or not hasattr(experiment, "add_figure")
            or not hasattr(datamodule, "plot")
        ):
            return
        import matplotlib.pyplot as plt

        fig = datamodule.plot(self.figure_sample(batch, datamodule))
        experiment.add_figure(f"image/{batch_idx}", fig, global_step=self.global_step)
        plt.close(fig)

    @torch.no_grad()
    def figure_sample(self, batch: dict[str, Tensor], datamodule: Any = None) -> dict[str, Tensor]:
        """The first patch of ``batch`` with ``q`` and ``r``, on the CPU, ready to plot.

        The image is de-normalised by the datamodule's ``mean`` and ``std`` when it has them.
        """
        from ..plot import denormalize

        out = self.predict_step(batch, 0)
        sample = {"image": batch["image"][0].float()}
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        if isinstance(mean, Tensor) and isinstance(std, Tensor):
            sample["image"] = denormalize(sample["image"], mean, std)
        key = self.hparams["prior_key"]
        if key in batch:
            sample["prior"] = batch[key][0].float()
        sample |= {name: probs[0] for name, probs in out.items()}
        if "mask" in batch:
            sample["mask"] = batch["mask"][0]
        return {k: v.detach().cpu() for k, v in sample.items()}

    def predict_step(  # type: ignore[override]  # 0.8 returns a Tensor, 0.10 a dict
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """Class probabilities of the network ``q`` and the implicit posterior ``r``.

        ``r`` uses :attr:`region_q_mean` when it is set (the region-level denominator
        of the paper's evaluation), else the batch's own mean of q. No border crop.

        Returns:
            ``{"q": (B, C, H, W), "r": (B, C, H, W)}``; ``r`` only if the batch has a prior.
        """
        q = torch.softmax(self(batch["image"]).float(), dim=1)
        out = {"q": q}
        key = self.hparams["prior_key"]
        if key in batch:
            prior = batch[key].to(q.dtype)
            q_mean = None if self.region_q_mean is None else self.region_q_mean.to(q)
            out["r"] = self._posterior(q, prior, prior.sum(dim=1) > 0, q_mean)
        return out


def _read_model_state(path: str) -> dict[str, Tensor]:
    """Network weights from a Lightning checkpoint (``model.*`` keys) or a plain state dict."""
    from ..checkpoints import read_checkpoint

    state = read_checkpoint(path, "init_checkpoint", lightning=False)
    state = state.get("state_dict", state)
    model_state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    return model_state or state
