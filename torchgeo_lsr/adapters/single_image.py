"""Fit a small network to one image and a prior map (the paper's Fig. 1, "Seducer").

The prior can be painted: an RGB image in which some pixels carry a class colour (a
rough stroke or blob per class) and all other pixels are unpainted. Painted pixels get
``confidence`` on their class and the rest spread evenly over the other classes;
unpainted pixels get the uniform prior. Or the prior is given directly as a ``(C, H, W)``
array. A small fully convolutional network is then fitted to this one image with QR
or RQ; the result holds the network output ``q`` and the implicit posterior ``r``.

Example:
    >>> import numpy as np
    >>> img = np.zeros((16, 16, 3), dtype=np.uint8); img[:, 8:] = 255
    >>> paint = np.zeros_like(img); paint[4:12, 1:4] = (255, 0, 0); paint[4:12, 12:15] = (0, 0, 255)
    >>> table = {(255, 0, 0): 0, (0, 0, 255): 1}
    >>> res = fit_single_image(img, paint, colour_table=table, steps=60, seed=0)
    >>> res.q.shape, res.r.shape
    (torch.Size([2, 16, 16]), torch.Size([2, 16, 16]))

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..losses import QRLoss, RQLoss, implicit_posterior
from ..models import FCN

__all__ = [
    "SingleImageResult",
    "fit_single_image",
    "image_to_tensor",
    "make_single_image_model",
    "prior_from_painting",
]

Colour = tuple[int, int, int]


@dataclass
class SingleImageResult:
    """Output of :func:`fit_single_image`.

    Attributes:
        q: ``(C, H, W)`` network probabilities.
        r: ``(C, H, W)`` implicit posterior ``r ∝ P q / mean(q)``.
        prior: ``(C, H, W)`` the prior that was fitted.
        model: the trained network (eval mode), input ``(1, 3, H, W)`` standardised image.
        loss: training loss per step.
    """

    q: Tensor
    r: Tensor
    prior: Tensor
    model: nn.Module
    loss: list[float] = field(default_factory=list)


def image_to_tensor(image: Any) -> Tensor:
    """An RGB image as a standardised ``(1, 3, H, W)`` float tensor.

    Args:
        image: ``(H, W, 3)`` numpy array (uint8 or float), a PIL image (converted to
            RGB), or a ``(3, H, W)`` tensor.

    Returns:
        ``(1, 3, H, W)`` float32, each channel with zero mean and unit variance.

    Example:
        >>> image_to_tensor(np.zeros((4, 5, 3), dtype=np.uint8)).shape
        torch.Size([1, 3, 4, 5])
    """
    if isinstance(image, Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"a tensor image must have shape (3, H, W), got {tuple(image.shape)}")
        x = image.float()
    else:
        if hasattr(image, "convert"):  # PIL
            image = image.convert("RGB")
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"an image must have shape (H, W, 3), got {arr.shape}")
        x = torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1)
    mean = x.mean(dim=(1, 2), keepdim=True)
    std = x.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return ((x - mean) / std)[None]


def prior_from_painting(
    painting: Any,
    colour_table: Mapping[Colour, int],
    num_classes: int | None = None,
    confidence: float = 0.9,
) -> Tensor:
    """A ``(C, H, W)`` prior from an RGB painting in class colours.

    Args:
        painting: ``(H, W, 3)`` uint8 array or PIL image; a pixel whose colour is a key of
            ``colour_table`` is painted with that class, any other colour is unpainted.
        colour_table: ``{(R, G, B): class_index}``.
        num_classes: ``C``; by default ``max(class_index) + 1``.
        confidence: prior mass on the painted class; the remaining ``1 - confidence`` is
            spread evenly over the other classes. Unpainted pixels are uniform.

    Returns:
        ``(C, H, W)`` float32 prior summing to 1 at every pixel.

    Example:
        >>> paint = np.zeros((1, 2, 3), dtype=np.uint8); paint[0, 0] = (255, 0, 0)
        >>> prior_from_painting(paint, {(255, 0, 0): 1}, confidence=1.0)[:, 0]
        tensor([[0.0000, 0.5000],
                [1.0000, 0.5000]])
    """
    if hasattr(painting, "convert"):
        painting = painting.convert("RGB")
    arr = np.asarray(painting)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"a painting must have shape (H, W, 3), got {arr.shape}")
    if not colour_table:
        raise ValueError("colour_table is empty")
    c = num_classes if num_classes is not None else max(colour_table.values()) + 1
    if min(colour_table.values()) < 0 or max(colour_table.values()) >= c:
        raise ValueError(f"class indices in colour_table must be in [0, {c})")
    if c < 2:
        raise ValueError("need at least 2 classes")
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence must be in (0, 1], got {confidence}")
    h, w = arr.shape[:2]
    labels = np.full((h, w), -1, dtype=np.int64)
    rgb = arr.astype(np.int64)
    for colour, cls in colour_table.items():
        labels[np.all(rgb == np.asarray(colour, dtype=np.int64), axis=2)] = cls
    lab = torch.from_numpy(labels)
    prior = torch.full((c, h, w), 1.0 / c)
    painted = lab >= 0
    onehot = nn.functional.one_hot(lab.clamp_min(0), c).permute(2, 0, 1).float()
    peaked = onehot * confidence + (1 - onehot) * (1 - confidence) / (c - 1)
    return torch.where(painted[None], peaked, prior)


def make_single_image_model(
    num_classes: int, num_filters: int = 32, num_layers: int = 4, kernel_size: int = 3
) -> nn.Module:
    """The small FCN fitted by :func:`fit_single_image` (RGB in, class logits out).

    Args:
        num_classes: output classes.
        num_filters: filters per hidden layer.
        num_layers: hidden layers (receptive field ``1 + num_layers * (kernel_size - 1)``).
        kernel_size: odd kernel size.

    Returns:
        :class:`~torchgeo_lsr.models.FCN` with 3 input channels.
    """
    return FCN(
        3, num_classes, num_filters=num_filters, num_layers=num_layers, kernel_size=kernel_size
    )


def _as_prior(
    prior: Any,
    colour_table: Mapping[Colour, int] | None,
    num_classes: int | None,
    confidence: float,
) -> Tensor:
    if colour_table is not None:
        return prior_from_painting(prior, colour_table, num_classes, confidence)
    p = torch.as_tensor(np.asarray(prior) if not isinstance(prior, Tensor) else prior).float()
    if p.ndim != 3:
        raise ValueError(
            f"without a colour_table the prior must be a (C, H, W) array, got {tuple(p.shape)}"
        )
    if not torch.allclose(p.sum(dim=0), torch.ones(()), atol=1e-3):
        raise ValueError("a (C, H, W) prior must sum to 1 over its class axis")
    return p


def fit_single_image(
    image: Any,
    prior: Any,
    *,
    colour_table: Mapping[Colour, int] | None = None,
    num_classes: int | None = None,
    confidence: float = 0.9,
    loss: Literal["qr", "rq"] = "qr",
    steps: int = 300,
    lr: float = 1e-2,
    num_filters: int = 32,
    num_layers: int = 4,
    seed: int = 0,
    model: nn.Module | None = None,
) -> SingleImageResult:
    """Fit a small CNN to one image and its prior; return ``q`` and ``r`` maps.

    Every step is one full-image forward pass; the implicit posterior's denominator is
    the mean of q over all pixels of the image.

    Args:
        image: RGB image, see :func:`image_to_tensor`.
        prior: a painting (with ``colour_table``) or a ``(C, H, W)`` prior array/tensor.
        colour_table: ``{(R, G, B): class}`` for a painted prior; None for an array.
        num_classes: classes of a painted prior (default: largest index + 1).
        confidence: prior mass on a painted class, see :func:`prior_from_painting`.
        loss: ``"qr"`` (free-energy form, paper eq. 4) or ``"rq"``.
        steps: Adam steps.
        lr: Adam learning rate.
        num_filters: filters per hidden layer of the default model.
        num_layers: hidden layers of the default model.
        seed: seeds the default model's weights.
        model: a network mapping ``(1, 3, H, W)`` to ``(1, C, H, W)`` logits, instead of
            the default :func:`make_single_image_model`.

    Returns:
        A :class:`SingleImageResult`.
    """
    x = image_to_tensor(image)
    p = _as_prior(prior, colour_table, num_classes, confidence)
    if p.shape[1:] != x.shape[2:]:
        raise ValueError(f"prior is {tuple(p.shape[1:])} pixels, image {tuple(x.shape[2:])}")
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_single_image_model(p.shape[0], num_filters, num_layers)
    criterion: nn.Module = QRLoss() if loss == "qr" else RQLoss()
    if loss not in ("qr", "rq"):
        raise ValueError(f"loss must be 'qr' or 'rq', got {loss!r}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    prior_b = p[None]
    history: list[float] = []
    model.train()
    for _ in range(steps):
        q = torch.softmax(model(x), dim=1)
        value = criterion(q, prior_b)
        opt.zero_grad()
        value.backward()
        opt.step()
        history.append(float(value.detach()))
    model.eval()
    with torch.no_grad():
        q = torch.softmax(model(x), dim=1)
        r = implicit_posterior(q, prior_b)
    return SingleImageResult(q=q[0], r=r[0], prior=p, model=model, loss=history)
