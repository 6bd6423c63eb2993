"""What the package's patch tasks share: border crop, the step hooks, loss logging.

.. versionadded:: 0.1
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from torch import Tensor

from .._compat import SemanticSegmentationTask


class PatchTask(SemanticSegmentationTask):  # type: ignore[misc]
    """A TorchGeo segmentation task on patches, scored away from the patch borders.

    Subclasses set ``hparams["border"]``, a ``model`` with ``receptive_field`` and
    implement :meth:`_shared_step`; training, validation and test steps call it.
    """

    def __init__(self) -> None:
        """Run TorchGeo's ``BaseTask.__init__`` and not ``SemanticSegmentationTask``'s.

        The segmentation task's own arguments (``weights``, ``loss``, ...) do not apply to
        patch tasks; ``BaseTask.__init__`` saves the subclass's arguments as
        hyper-parameters (Lightning reads them from the calling ``__init__`` frames) and
        runs the ``configure_*`` hooks. Subclasses check their arguments, then call this.
        """
        self.weights = None
        super(SemanticSegmentationTask, self).__init__()

    @staticmethod
    def _check_labels(labels: list[str] | None, num_classes: int) -> None:
        if labels is not None and len(labels) != num_classes:
            raise ValueError(f"labels has {len(labels)} names for {num_classes} classes")

    @property
    def border(self) -> int:
        """Pixels cropped from each patch side before loss and metrics."""
        border = self.hparams["border"]
        return (self.model.receptive_field - 1) // 2 if border is None else int(border)

    def _crop(self, x: Tensor) -> Tensor:
        b = self.border
        if b == 0:
            return x
        if x.shape[-1] <= 2 * b or x.shape[-2] <= 2 * b:
            raise ValueError(
                f"patch of {tuple(x.shape[-2:])} px is too small for a border of {b} px; "
                "use larger patches or set border"
            )
        return x[..., b:-b, b:-b]

    def _log_loss(self, split: str, loss: Tensor, batch_size: int) -> None:
        self.log(
            f"{split}_loss",
            loss,
            batch_size=batch_size,
            prog_bar=split != "test",
            sync_dist=split != "train",  # epoch-level: averaged across DDP ranks
        )

    @abstractmethod
    def _shared_step(self, batch: dict[str, Tensor], split: str) -> Tensor:
        """Loss (and metrics) of one batch of ``split``: the one hook each task implements.

        :class:`~torchgeo_lsr.trainers.LabelSuperResolutionTask` and
        :class:`~torchgeo_lsr.trainers.LearnedPriorTask` implement it; the train, val and
        test steps below all delegate to it. TorchGeo's ``BaseTask`` is an ``ABC``, so a
        subclass without it cannot be instantiated.
        """

    # --------------------------------------------------------------- steps
    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Loss on one batch (metrics too when it carries labels)."""
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Validation loss and metrics."""
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Test loss and metrics."""
        self._shared_step(batch, "test")

    # Metrics are logged with ``log_dict`` in the steps and reduced by Lightning at epoch
    # end; TorchGeo 0.9+ would compute them a second time in these hooks.
    def on_train_epoch_end(self) -> None:
        """Nothing to do: metrics are reduced by Lightning."""

    def on_validation_epoch_end(self) -> None:
        """Nothing to do: metrics are reduced by Lightning."""

    def on_test_epoch_end(self) -> None:
        """Nothing to do: metrics are reduced by Lightning."""
