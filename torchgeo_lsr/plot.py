"""Figures of samples: imagery, priors, q, r and labels, in a scheme's colours.

One way to draw each thing, in TorchGeo's ``plot()`` conventions (a matplotlib
:class:`~matplotlib.figure.Figure` returned, ``show_titles``, ``suptitle``, class colours
and names from the scheme, a legend):

* :func:`prior_rgb`: a ``(K, H, W)`` probability map as an RGB composite of class colours
  (each pixel the probability-weighted mean colour; white where there is no information);
* :func:`class_rgb`: a ``(H, W)`` class map in class colours (white for nodata);
* :func:`image_rgb`: imagery bands as a percentile-stretched RGB;
* :func:`plot_sample`: a sample's ``image | prior | q | r | mask`` side by side (whatever
  keys it has), used by :meth:`~torchgeo_lsr.datamodules.LSRDataModule.plot` and the
  validation figures of :class:`~torchgeo_lsr.trainers.LabelSuperResolutionTask`.

matplotlib is imported when a figure is drawn, not with this module.

.. versionadded:: 0.3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from .classes import ClassScheme

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["class_rgb", "denormalize", "image_rgb", "palette", "plot_sample", "prior_rgb"]

#: Sample keys :func:`plot_sample` draws, in order, with their panel titles.
PANELS = {
    "image": "image",
    "prior": "prior",
    "q": "q (network)",
    "r": "r (posterior)",
    "prediction": "prediction",
    "mask": "labels",
}


def _array(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def palette(scheme: ClassScheme | int) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(K, 3)`` colours in [0, 1] and the class names of a scheme (or of K classes)."""
    if isinstance(scheme, ClassScheme):
        return np.asarray(scheme.colors, dtype=float) / 255, scheme.names
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if scheme <= 10 else "tab20"]
    colors = np.asarray([cmap(i % cmap.N)[:3] for i in range(scheme)], dtype=float)
    return colors, tuple(f"class {i}" for i in range(scheme))


def prior_rgb(prior: Tensor | np.ndarray, scheme: ClassScheme | int) -> np.ndarray:
    """``(H, W, 3)`` in [0, 1]: each pixel the mean of the class colours weighted by ``prior``.

    Args:
        prior: ``(K, H, W)`` probabilities; all zero = no information (drawn white).
        scheme: the classes' colours (or K, for a default palette).

    Example:
        >>> from torchgeo_lsr.classes import ENVIROATLAS5
        >>> p = np.zeros((5, 1, 2)); p[1, 0, 0] = 1
        >>> prior_rgb(p, ENVIROATLAS5)[0].round(3).tolist()
        [[0.612, 0.612, 0.612], [1.0, 1.0, 1.0]]
    """
    p = _array(prior).astype(float)
    colors, _ = palette(scheme if isinstance(scheme, ClassScheme) else len(p))
    if len(p) != len(colors):
        raise ValueError(f"prior has {len(p)} classes; the scheme has {len(colors)}")
    total = p.sum(axis=0)
    rgb = np.einsum("khw,kc->hwc", p, colors) / np.where(total > 0, total, 1)[..., None]
    return np.where((total > 0)[..., None], np.clip(rgb, 0, 1), 1.0)


def class_rgb(classes: Tensor | np.ndarray, scheme: ClassScheme | int) -> np.ndarray:
    """``(H, W, 3)`` in [0, 1]: class ``k`` in its colour, indices ``>= K`` (nodata) white."""
    c = _array(classes).astype(np.int64)
    colors, _ = palette(scheme)
    inside = (c >= 0) & (c < len(colors))
    return np.where(inside[..., None], colors[np.clip(c, 0, len(colors) - 1)], 1.0)


def image_rgb(image: Tensor | np.ndarray, bands: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """``(H, W, 3)`` in [0, 1] from ``(C, H, W)`` imagery, stretched to its 2-98 percentiles."""
    x = _array(image).astype(float)
    chosen = [b for b in bands if b < len(x)] or [0]
    rgb = x[chosen].transpose(1, 2, 0)
    if rgb.shape[-1] != 3:
        rgb = np.repeat(rgb[..., :1], 3, axis=-1)
    lo, hi = np.percentile(rgb, (2, 98))
    out: np.ndarray = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1)
    return out


def _panel(key: str, value: Any, scheme: ClassScheme | int, bands: Sequence[int]) -> np.ndarray:
    x = _array(value)
    if key == "image":
        return image_rgb(x, bands)
    if x.ndim == 3 and len(x) > 1:  # probabilities
        return prior_rgb(x, scheme)
    return class_rgb(x[0] if x.ndim == 3 else x, scheme)


def plot_sample(
    sample: Mapping[str, Any],
    scheme: ClassScheme | int,
    *,
    show_titles: bool = True,
    suptitle: str | None = None,
    rgb_bands: Sequence[int] = (0, 1, 2),
    legend: bool = True,
) -> Figure:
    """Draw a sample's ``image``, ``prior``, ``q``, ``r``, ``prediction`` and ``mask``.

    Probability maps ``(K, H, W)`` are drawn with :func:`prior_rgb`, class maps ``(H, W)``
    with :func:`class_rgb`; keys the sample lacks are left out.

    Args:
        sample: one (unbatched) sample.
        scheme: class colours and names (or the class count, for a default palette).
        show_titles: a title over each panel.
        suptitle: a title over the figure.
        rgb_bands: imagery bands drawn as red, green, blue.
        legend: a legend of the classes under the panels.

    Returns:
        The figure (one axis per panel).

    Raises:
        ValueError: if the sample has none of the keys above.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    keys = [k for k in PANELS if k in sample]
    if not keys:
        raise ValueError(f"plot_sample: the sample has none of {list(PANELS)}")
    fig, axs = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axs[0], keys, strict=True):
        ax.imshow(_panel(key, sample[key], scheme, rgb_bands), interpolation="nearest")
        ax.axis("off")
        if show_titles:
            ax.set_title(PANELS[key])
    if legend:
        colors, names = palette(scheme)
        handles = [Patch(color=c, label=n) for c, n in zip(colors, names, strict=True)]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(names), 6), frameon=False)
    if suptitle is not None:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0.1 if legend else 0, 1, 1))
    return fig


def denormalize(image: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``image * std + mean`` for ``(C, H, W)`` imagery normalised per band (or by one value)."""
    view = (-1, 1, 1) if mean.numel() > 1 or std.numel() > 1 else (1, 1, 1)
    return image * std.to(image).reshape(view) + mean.to(image).reshape(view)
