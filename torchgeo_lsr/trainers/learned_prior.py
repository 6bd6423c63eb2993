"""Train the learned prior (paper §4.4) as a TorchGeo segmentation task.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from ..losses import DEFAULT_SMOOTHING, prior_nll, smooth_probs
from ..models import LearnedPriorFCN
from .base import PatchTask

__all__ = ["LearnedPriorTask", "PixelNLL"]

_SPLITS = ("train", "val", "test")


class PixelNLL(Metric):
    """Mean over labelled pixels of ``-log P(true class)``, with additive smoothing.

    ``update(probs (B, K, H, W), target (B, H, W))``; see
    :func:`torchgeo_lsr.priors.learned.prior_nll`.

    Args:
        eps: additive smoothing of ``probs`` (paper: 1e-4).
        ignore_index: label to leave out.

    Example:
        >>> m = PixelNLL(eps=0.0)
        >>> m.update(torch.full((1, 2, 1, 1), 0.5), torch.zeros(1, 1, 1, dtype=torch.long))
        >>> round(float(m.compute()), 4)
        0.6931
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self, eps: float = DEFAULT_SMOOTHING, ignore_index: int = 255, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.eps, self.ignore_index = eps, ignore_index
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, probs: Tensor, target: Tensor) -> None:
        """Add a batch of probabilities and labels."""
        total, count = prior_nll(probs.double(), target, self.eps, self.ignore_index)
        self.total: Tensor = self.total + total
        self.count: Tensor = self.count + count

    def compute(self) -> Tensor:
        """Mean NLL (0 when no pixel was labelled)."""
        return self.total / self.count.clamp_min(1)


class LearnedPriorTask(PatchTask):
    """Fit :class:`~torchgeo_lsr.models.LearnedPriorFCN` to hi-res labels from weak inputs.

    Batches carry ``image`` ``(B, C_in, H, W)``, the input stack of
    :func:`torchgeo_lsr.priors.learned.learned_prior_inputs`, and ``mask`` ``(B, H, W)``
    class indices (``ignore_index`` = no label). The loss is cross-entropy over labelled
    pixels, after cropping ``border`` px from each patch side (default: half the receptive
    field, so every scored pixel sees its whole context). Logged per split:
    ``{split}_loss``, ``{split}_acc`` (micro), ``{split}_miou`` (macro) and ``{split}_nll``
    (mean ``-log P(true class)`` of the softmax smoothed by ``output_smoothing``), with the
    same names on every TorchGeo line.

    Extends TorchGeo's ``SemanticSegmentation`` (``SemanticSegmentationTask`` before 0.9)
    through ``configure_models``, ``configure_losses`` and ``configure_metrics``; the
    optimizer comes from the config (``optimizer:``/``lr_scheduler:``) or TorchGeo's default
    (AdamW at ``lr``, ReduceLROnPlateau with ``patience`` on ``val_loss``).

    .. versionadded:: 0.1
    """

    #: ``weights`` of the parent task do not apply.
    ignore = ("weights",)

    def __init__(
        self,
        model: Literal["learned_prior_fcn"] = "learned_prior_fcn",
        in_channels: int = 9,
        num_classes: int = 5,
        num_filters: int = 128,
        kernel_size: Sequence[int] = (11, 7, 5),
        border: int | None = None,
        output_smoothing: float = DEFAULT_SMOOTHING,
        ignore_index: int = 255,
        labels: list[str] | None = None,
        lr: float = 1e-3,
        patience: int = 10,
    ) -> None:
        """Initialise a new LearnedPriorTask.

        Args:
            model: network; ``"learned_prior_fcn"``
                (:class:`~torchgeo_lsr.models.LearnedPriorFCN`).
            in_channels: input stack channels (5 classes + 4 masks = 9).
            num_classes: target classes.
            num_filters: filters per hidden layer (paper: 128).
            kernel_size: kernel size per hidden layer (paper: 11, 7, 5).
            border: pixels cropped from each patch side before loss and metrics; None uses
                half the receptive field.
            output_smoothing: additive smoothing of the softmax for ``*_nll`` and
                :meth:`predict_prior` (paper: 1e-4).
            ignore_index: label value with no label.
            labels: optional class names.
            lr: learning rate of the default optimizer.
            patience: patience of the default ReduceLROnPlateau scheduler.

        Raises:
            ValueError: on an unknown ``model`` or bad numbers.
        """
        if model != "learned_prior_fcn":
            raise ValueError(f"model must be 'learned_prior_fcn', got {model!r}")
        self._check_labels(labels, num_classes)
        if (border is not None and border < 0) or output_smoothing < 0:
            raise ValueError("border and output_smoothing must be >= 0")
        super().__init__()

    # ------------------------------------------------------------------ hooks
    def configure_models(self) -> None:
        """Build the learned-prior FCN."""
        hp = self.hparams
        self.model = LearnedPriorFCN(
            hp["in_channels"], hp["num_classes"], hp["num_filters"], tuple(hp["kernel_size"])
        )

    def configure_losses(self) -> None:
        """Cross-entropy over labelled pixels."""
        self.criterion = nn.CrossEntropyLoss(ignore_index=self.hparams["ignore_index"])

    def configure_metrics(self) -> None:
        """Accuracy (micro), mIoU (macro) and NLL per split."""
        hp = self.hparams
        kwargs = {"num_classes": hp["num_classes"], "ignore_index": hp["ignore_index"]}
        self.metrics = nn.ModuleDict(
            {
                f"{split}_metrics": MetricCollection(
                    {
                        "acc": MulticlassAccuracy(average="micro", **kwargs),
                        "miou": MulticlassJaccardIndex(average="macro", **kwargs),
                        "nll": PixelNLL(hp["output_smoothing"], hp["ignore_index"]),
                    },
                    prefix=f"{split}_",
                )
                for split in _SPLITS
            }
        )

    # ------------------------------------------------------------- helpers
    def predict_prior(self, x: Tensor, eps: float | None = None) -> Tensor:
        """The learned prior ``(B, K, H, W)``: smoothed softmax of the network on ``x``.

        Args:
            x: ``(B, C_in, H, W)`` input stack.
            eps: additive smoothing; None uses ``output_smoothing``.
        """
        eps = self.hparams["output_smoothing"] if eps is None else eps
        return smooth_probs(torch.softmax(self(x).float(), dim=1), eps)

    def _shared_step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        if "mask" not in batch:
            raise KeyError(f"batch has no 'mask' (keys: {sorted(batch)}); labels are needed")
        logits = self._crop(self(batch["image"]).float())
        target = self._crop(batch["mask"]).long()
        labelled = target != self.hparams["ignore_index"]
        # Cross-entropy of a batch without any label is NaN; make it a zero with a graph.
        loss = self.criterion(logits, target) if labelled.any() else logits.sum() * 0.0
        batch_size = logits.shape[0]
        self._log_loss(split, loss, batch_size)
        metrics = self.metrics[f"{split}_metrics"]
        assert isinstance(metrics, MetricCollection)
        metrics(torch.softmax(logits.detach(), dim=1), target)
        self.log_dict(metrics, batch_size=batch_size)
        return loss

    def predict_step(  # type: ignore[override]  # 0.8 returns a Tensor, 0.10 a dict
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Tensor]:
        """``{"prior": (B, K, H, W)}``, the learned prior of the batch (no border crop)."""
        return {"prior": self.predict_prior(batch["image"])}
