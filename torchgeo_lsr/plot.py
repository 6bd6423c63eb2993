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
  validation figures of :class:`~torchgeo_lsr.trainers.LabelSuperResolutionTask`;
* :func:`class_legend`: the legend of a scheme's classes under a figure's panels;
* :func:`entropy` and :func:`plot_prior`: a prior and its per-pixel entropy;
* :func:`max_probability` and :func:`plot_uncertainty`: where to trust a map, the
  entropy of q and of r and r's max probability (the rasters of ``map
  --save-uncertainty``);
* :func:`plot_posterior`: ``[image] | q | r | [labels]``;
* :func:`plot_prior_steps`: the prior recipe's steps for one window
  (:meth:`~torchgeo_lsr.priors.transform.PriorTransform.stages`);
* :func:`implicit_model` and :func:`plot_implicit_model`: the implicit generative model
  ``P(x | l) = q_x(l) / Σ_j q_j(l)`` of a patch (the paper's Fig. D.4);
* :func:`plot_confusion`, :func:`plot_iou_bars`: a confusion matrix, per-class IoU of
  several methods;
* :func:`plot_training_curves`: losses and metrics from ``map``'s CSV log
  (``OUT/logs/version_0/metrics.csv``).

matplotlib is imported when a figure is drawn, not with this module.

.. versionadded:: 0.3
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from torch import Tensor

from .classes import NLCD, ClassScheme

if TYPE_CHECKING:
    import pandas
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

__all__ = [
    "class_legend",
    "class_rgb",
    "denormalize",
    "entropy",
    "image_rgb",
    "implicit_model",
    "max_probability",
    "palette",
    "plot_confusion",
    "plot_implicit_model",
    "plot_iou_bars",
    "plot_posterior",
    "plot_prior",
    "plot_prior_steps",
    "plot_sample",
    "plot_training_curves",
    "plot_uncertainty",
    "prior_rgb",
]

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
        class_legend(fig, scheme)
    if suptitle is not None:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0.1 if legend else 0, 1, 1))
    return fig


def class_legend(
    fig: Figure,
    scheme: ClassScheme | int,
    *,
    classes: Sequence[int] | None = None,
    ncol: int = 6,
    title: str | None = None,
) -> Legend:
    """A legend of a scheme's classes (colour patches and names) under a figure's panels.

    Figures with a constrained layout get it outside the axes (``"outside lower center"``);
    others at the bottom centre, where :func:`plot_sample` leaves room.

    Args:
        fig: the figure.
        scheme: class colours and names (or the class count, for a default palette).
        classes: the class indices to list (default: all, in order).
        ncol: the most columns.
        title: a title over the entries.

    Returns:
        The legend (``fig.legends[-1]``).
    """
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from matplotlib.patches import Patch

    colors, names = palette(scheme)
    chosen = range(len(names)) if classes is None else classes
    handles = [Patch(color=colors[i], label=names[i]) for i in chosen]
    outside = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    return fig.legend(
        handles=handles,
        loc="outside lower center" if outside else "lower center",
        ncol=max(1, min(len(handles), ncol)),
        frameon=False,
        title=title,
    )


def entropy(probs: Tensor | np.ndarray) -> np.ndarray:
    """``(H, W)`` Shannon entropy in nats of ``(K, H, W)`` class probabilities.

    Each pixel's vector is normalised by its sum first; ``0 log 0 = 0``, and pixels whose
    probabilities sum to 0 (no information) get 0.

    Args:
        probs: ``(K, H, W)`` non-negative probabilities.

    Returns:
        ``(H, W)`` entropies in ``[0, log K]``.

    Example:
        >>> p = np.zeros((4, 1, 3)); p[:, 0, 0] = 0.25; p[2, 0, 1] = 1
        >>> entropy(p).round(4).tolist()  # uniform = log 4, one-hot = 0, empty = 0
        [[1.3863, 0.0, 0.0]]
    """
    p = _array(probs).astype(float)
    if p.ndim != 3:
        raise ValueError(f"entropy: expected (K, H, W) probabilities, got shape {p.shape}")
    total = p.sum(axis=0)
    q = p / np.where(total > 0, total, 1)
    logs = np.log(np.where(q > 0, q, 1))
    out: np.ndarray = -(q * logs).sum(axis=0)
    return np.where(total > 0, np.maximum(out, 0.0), 0.0)


def max_probability(probs: Tensor | np.ndarray) -> np.ndarray:
    """``(H, W)`` largest class probability of ``(K, H, W)`` class probabilities.

    Each pixel's vector is normalised by its sum first, as in :func:`entropy`; pixels whose
    probabilities sum to 0 (no information) get 0.

    Args:
        probs: ``(K, H, W)`` non-negative probabilities.

    Returns:
        ``(H, W)`` values in ``[1 / K, 1]`` (0 where there is no information).

    Example:
        >>> p = np.zeros((4, 1, 3)); p[:, 0, 0] = 0.25; p[2, 0, 1] = 2
        >>> max_probability(p).tolist()  # uniform = 1 / 4, one-hot = 1, empty = 0
        [[0.25, 1.0, 0.0]]
    """
    p = _array(probs).astype(float)
    if p.ndim != 3:
        raise ValueError(f"max_probability: expected (K, H, W) probabilities, got {p.shape}")
    total = p.sum(axis=0)
    out: np.ndarray = np.where(total > 0, p.max(axis=0) / np.where(total > 0, total, 1), 0.0)
    return out


def _figure(
    n: int, width: float = 3.2, height: float = 3.4, ncols: int | None = None
) -> tuple[Figure, list[Axes]]:
    """A constrained-layout figure of ``n`` panels in rows of ``ncols`` (extra axes removed)."""
    import matplotlib.pyplot as plt

    ncols = min(n, ncols or n)
    nrows = math.ceil(n / ncols)
    fig, axs = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axs.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def _image_panels(
    panels: Sequence[tuple[str, np.ndarray]],
    scheme: ClassScheme | int,
    *,
    show_titles: bool,
    suptitle: str | None,
    legend: bool,
) -> Figure:
    fig, axes = _figure(len(panels))
    for ax, (title, img) in zip(axes, panels, strict=True):
        ax.imshow(img, interpolation="nearest")
        ax.axis("off")
        if show_titles:
            ax.set_title(title)
    if legend:
        class_legend(fig, scheme)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def _plane(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    """``(H, W)`` from ``(H, W)`` or ``(1, H, W)``."""
    a = _array(x)
    if a.ndim == 3 and len(a) == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{what} must have shape (H, W) or (1, H, W), got {a.shape}")
    return a


def _probs(x: Tensor | np.ndarray, what: str) -> np.ndarray:
    a = _array(x).astype(float)
    if a.ndim != 3:
        raise ValueError(f"{what} must have shape (K, H, W) (one unbatched sample), got {a.shape}")
    return a


def plot_prior(
    prior: Tensor | np.ndarray,
    scheme: ClassScheme | int,
    *,
    show_titles: bool = True,
    suptitle: str | None = None,
    legend: bool = True,
) -> Figure:
    """A prior as an RGB composite of class colours, with its entropy beside it.

    Args:
        prior: ``(K, H, W)`` probabilities (all zero = no information: white, entropy 0).
        scheme: class colours and names (or K, for a default palette).
        show_titles: titles ``"prior"`` and ``"entropy"`` over the panels.
        suptitle: a title over the figure.
        legend: a legend of the classes under the panels.

    Returns:
        The figure: axes ``[prior, entropy, colorbar]``; the prior panel shows
        :func:`prior_rgb` ``(H, W, 3)``, the entropy panel :func:`entropy` ``(H, W)`` on
        ``[0, log K]``, its colorbar labelled ``"nats"``.
    """
    p = _probs(prior, "prior")
    fig, (ax_p, ax_h) = _figure(2)
    ax_p.imshow(prior_rgb(p, scheme), interpolation="nearest")
    im = ax_h.imshow(
        entropy(p), cmap="magma", vmin=0.0, vmax=math.log(len(p)), interpolation="nearest"
    )
    fig.colorbar(im, ax=ax_h, label="nats", shrink=0.8)
    for ax, title in ((ax_p, "prior"), (ax_h, "entropy")):
        ax.axis("off")
        if show_titles:
            ax.set_title(title)
    if legend:
        class_legend(fig, scheme)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


#: The layers :func:`plot_uncertainty` draws, in its order: key -> (panel title, unit).
#: Entropies are in nats on ``[0, log K]``, the max probability on ``[0, 1]``.
UNCERTAINTY_PANELS = {
    "q_entropy": ("entropy of q", "nats"),
    "r_entropy": ("entropy of r", "nats"),
    "r_maxprob": ("max probability of r", "probability"),
}

#: The sequential colormaps of :func:`plot_uncertainty`: bright = uncertain (entropy),
#: bright = confident (max probability).
UNCERTAINTY_CMAPS = {"nats": "magma", "probability": "viridis"}


def plot_uncertainty(
    layers: Mapping[str, Tensor | np.ndarray],
    scheme: ClassScheme | int,
    *,
    axes: Sequence[Axes] | None = None,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """Where to trust a map: per-pixel entropy of q and of r, and r's max probability.

    Example (``q``, ``r``: ``(K, H, W)`` probabilities)::

        plot_uncertainty(
            {"q_entropy": entropy(q), "r_entropy": entropy(r), "r_maxprob": max_probability(r)},
            scheme,
        )

    Args:
        layers: :data:`UNCERTAINTY_PANELS` key -> ``(H, W)`` (or ``(1, H, W)``) map in its
            unit: an entropy in nats (:func:`entropy`), a max probability in ``[0, 1]``
            (:func:`max_probability`); drawn in :data:`UNCERTAINTY_PANELS` order, absent
            keys left out.
        scheme: the classes (or their count K): entropies are drawn on ``[0, log K]``.
        axes: draw into these axes, one per layer (e.g. a row of a larger figure, as
            :func:`~torchgeo_lsr.mapping.quicklook` does), instead of a new figure.
        show_titles: the :data:`UNCERTAINTY_PANELS` title over each panel.
        suptitle: a title over the figure.

    Returns:
        The figure. Each layer's axis shows its ``(H, W)`` map with a sequential colormap
        (:data:`UNCERTAINTY_CMAPS`) on ``[0, log K]`` (entropy) or ``[0, 1]`` (max
        probability) and has a colorbar labelled with the unit (``"nats (log K = ...)"``
        or ``"probability"``); a new figure holds the layer axes first, then the colorbars.

    Raises:
        ValueError: on no layers, an unknown key, or ``axes`` of another length.
    """
    unknown = sorted(set(layers) - set(UNCERTAINTY_PANELS))
    if unknown or not layers:
        raise ValueError(
            f"plot_uncertainty: layers {unknown or 'none'}; expected some of "
            f"{list(UNCERTAINTY_PANELS)}"
        )
    keys = [name for name in UNCERTAINTY_PANELS if name in layers]
    k = scheme if isinstance(scheme, int) else len(scheme)
    if axes is None:
        fig, targets = _figure(len(keys), width=3.6)
    else:
        targets = list(axes)
        if len(targets) != len(keys):
            raise ValueError(f"plot_uncertainty: {len(keys)} layers for {len(targets)} axes")
        fig = cast("Figure", targets[0].figure)
    for ax, key in zip(targets, keys, strict=True):
        title, unit = UNCERTAINTY_PANELS[key]
        top = math.log(k) if unit == "nats" else 1.0
        im = ax.imshow(
            _plane(layers[key], key),
            cmap=UNCERTAINTY_CMAPS[unit],
            vmin=0.0,
            vmax=top,
            interpolation="nearest",
        )
        label = f"nats (log {k} = {top:.2f})" if unit == "nats" else unit
        fig.colorbar(im, ax=ax, label=label, shrink=0.8)
        ax.axis("off")
        if show_titles:
            ax.set_title(title)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def _probs_rgb(x: np.ndarray, scheme: ClassScheme | int, argmax: bool) -> np.ndarray:
    if not argmax:
        return prior_rgb(x, scheme)
    classes = np.where(x.sum(axis=0) > 0, x.argmax(axis=0), len(x))  # no information: white
    return class_rgb(classes, scheme if isinstance(scheme, ClassScheme) else len(x))


def plot_posterior(
    q: Tensor | np.ndarray,
    r: Tensor | np.ndarray,
    scheme: ClassScheme | int,
    labels: Tensor | np.ndarray | None = None,
    *,
    image: Tensor | np.ndarray | None = None,
    argmax: bool = False,
    show_titles: bool = True,
    suptitle: str | None = None,
    legend: bool = True,
) -> Figure:
    """The network's ``q`` and the implicit posterior ``r`` side by side (and labels).

    Args:
        q: ``(K, H, W)`` network output probabilities.
        r: ``(K, H, W)`` posterior probabilities.
        scheme: class colours and names (or K, for a default palette).
        labels: optional ``(H, W)`` (or ``(1, H, W)``) class indices; values outside
            ``0..K-1`` (ignore, nodata) are drawn white.
        image: optional ``(C, H, W)`` imagery, drawn first (:func:`image_rgb`).
        argmax: draw q and r as the class colour of their argmax (:func:`class_rgb`)
            instead of the probability-weighted colour (:func:`prior_rgb`).
        show_titles: titles ``"image"``, ``"q (network)"``, ``"r (posterior)"``,
            ``"labels"``.
        suptitle: a title over the figure.
        legend: a legend of the classes under the panels.

    Returns:
        The figure, one axis per panel, each showing an ``(H, W, 3)`` RGB image.
    """
    qa, ra = _probs(q, "q"), _probs(r, "r")
    panels: list[tuple[str, np.ndarray]] = []
    if image is not None:
        panels.append((PANELS["image"], image_rgb(image)))
    panels.append((PANELS["q"], _probs_rgb(qa, scheme, argmax)))
    panels.append((PANELS["r"], _probs_rgb(ra, scheme, argmax)))
    if labels is not None:
        panels.append((PANELS["mask"], class_rgb(_plane(labels, "labels"), scheme)))
    return _image_panels(panels, scheme, show_titles=show_titles, suptitle=suptitle, legend=legend)


#: Panel titles of the prior recipe's stages (:meth:`PriorTransform.stages` keys).
STAGE_TITLES = {
    "nlcd": "NLCD",
    "cooccurrence": "co-occurrence column",
    "blur": "blur",
    "fusion": "fusion",
    "prior": "prior (simplex)",
}


def plot_prior_steps(
    stages: Mapping[str, Tensor | np.ndarray],
    scheme: ClassScheme | int,
    *,
    show_titles: bool = True,
    suptitle: str | None = None,
    legend: bool = True,
) -> Figure:
    """The prior's construction for one window: NLCD -> co-occurrence -> blur -> fusion -> prior.

    Args:
        stages: stage name -> map of one window, drawn in this order, e.g.
            :meth:`~torchgeo_lsr.priors.transform.PriorTransform.stages` of an unbatched
            sample. ``"nlcd"`` is an ``(H, W)`` NLCD 17-index
            (:data:`torchgeo_lsr.classes.NLCD` order) drawn in NLCD's colours; every other
            stage is ``(K, H, W)`` class mass drawn with :func:`prior_rgb`.
        scheme: the prior's class colours and names (or K).
        show_titles: a title over each panel (:data:`STAGE_TITLES`, else the key).
        suptitle: a title over the figure.
        legend: a legend of the scheme's classes under the panels (``fig.legends[0]``) and,
            under the NLCD panel, one of the NLCD classes it shows.

    Returns:
        The figure, one axis per stage, each showing an ``(H, W, 3)`` RGB image.

    Raises:
        ValueError: on no stages or a stage of the wrong shape.
    """
    if not stages:
        raise ValueError("plot_prior_steps: no stages to draw")
    panels: list[tuple[str, np.ndarray]] = []
    nlcd_classes: list[int] = []
    for key, value in stages.items():
        title = STAGE_TITLES.get(key, key)
        if key == "nlcd":
            index = _plane(value, "stage 'nlcd'").astype(np.int64)
            panels.append((title, class_rgb(index, NLCD)))
            nlcd_classes = [int(i) for i in np.unique(index) if 0 <= i < len(NLCD)]
        else:
            panels.append((title, prior_rgb(_probs(value, f"stage {key!r}"), scheme)))
    fig = _image_panels(panels, scheme, show_titles=show_titles, suptitle=suptitle, legend=legend)
    if legend and nlcd_classes:
        from matplotlib.patches import Patch

        colors, names = palette(NLCD)
        ax = fig.axes[list(stages).index("nlcd")]
        ax.legend(
            handles=[Patch(color=colors[i], label=names[i]) for i in nlcd_classes],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            ncol=2,
            fontsize="x-small",
            frameon=False,
            title="NLCD",
            title_fontsize="small",
        )
    return fig


def implicit_model(q: Tensor | np.ndarray, valid: Tensor | np.ndarray | None = None) -> np.ndarray:
    r"""The implicit generative model of a patch: ``P(x | l) = q_x(l) / Σ_j q_j(l)``.

    Each class's network output normalised over the patch's (valid) pixels ``j``: a
    distribution over pixels per class (the paper's Fig. D.4).

    Args:
        q: ``(K, H, W)`` network output probabilities.
        valid: optional ``(H, W)`` boolean mask; pixels outside it neither count in the sum
            nor get mass.

    Returns:
        ``(K, H, W)``; each class sums to 1 over the pixels, or is all zero when its
        ``Σ_j q_j(l) = 0``.

    Example:
        >>> q = np.array([[[0.75, 0.25]], [[0.0, 0.0]]])  # K=2, 1 x 2 px
        >>> implicit_model(q).tolist()
        [[[0.75, 0.25]], [[0.0, 0.0]]]
    """
    x = _probs(q, "q")
    if valid is not None:
        v = _array(valid).astype(bool)
        if v.shape != x.shape[1:]:
            raise ValueError(f"valid has shape {v.shape}; q's pixels are {x.shape[1:]}")
        x = x * v
    total = x.sum(axis=(1, 2), keepdims=True)
    out: np.ndarray = np.where(total > 0, x / np.where(total > 0, total, 1), 0.0)
    return out


def plot_implicit_model(
    q: Tensor | np.ndarray,
    scheme: ClassScheme | int,
    *,
    image: Tensor | np.ndarray | None = None,
    valid: Tensor | np.ndarray | None = None,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """The maps ``P(x | l)`` of :func:`implicit_model`, one per class (the paper's Fig. D.4).

    Args:
        q: ``(K, H, W)`` network output probabilities of a patch.
        scheme: the class names (panel titles), or K.
        image: optional ``(C, H, W)`` imagery, drawn first (:func:`image_rgb`).
        valid: optional ``(H, W)`` mask of the pixels in the sum.
        show_titles: a title over each panel (``"image"``, then the class names).
        suptitle: a title over the figure.

    Returns:
        The figure: the image axis (if any), one axis per class showing
        ``implicit_model(q, valid)[l]`` ``(H, W)`` on one colour scale shared by the class
        panels (``[0, max]``), and last a colorbar labelled ``"P(x | l)"``; at most six
        panels a row.
    """
    from matplotlib.colors import Normalize

    model = implicit_model(q, valid)
    _, names = palette(scheme if isinstance(scheme, ClassScheme) else len(model))
    if len(names) != len(model):
        raise ValueError(f"q has {len(model)} classes; the scheme has {len(names)}")
    n = len(model) + (image is not None)
    fig, axes = _figure(n, width=2.8, height=2.8, ncols=6)
    if image is not None:
        axes[0].imshow(image_rgb(image), interpolation="nearest")
        axes[0].axis("off")
        if show_titles:
            axes[0].set_title("image")
    top = float(model.max()) or 1.0
    norm = Normalize(vmin=0.0, vmax=top)
    class_axes = axes[n - len(model) :]
    images = []
    for ax, name, m in zip(class_axes, names, model, strict=True):
        images.append(ax.imshow(m, cmap="viridis", norm=norm, interpolation="nearest"))
        ax.axis("off")
        if show_titles:
            ax.set_title(name)
    fig.colorbar(images[-1], ax=class_axes, label="P(x | l)", shrink=0.8)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def _count(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def plot_confusion(
    confusion: np.ndarray,
    names: Sequence[str],
    *,
    normalize: bool = True,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    r"""A confusion matrix: rows the true class, columns the predicted one.

    Args:
        confusion: ``(K, K)`` counts, ``confusion[t, p]`` = pixels of class ``t`` predicted
            ``p``.
        names: the K class names (tick labels).
        normalize: colour and write each row divided by its sum (the per-class recall;
            rows of no pixels stay 0), the count under it; else the counts.
        show_titles: a title over the matrix (``"confusion (row-normalised)"`` or
            ``"confusion (counts)"``).
        suptitle: a title over the figure.

    Returns:
        The figure (the matrix axis, then a colorbar); cell ``(t, p)`` has the text
        ``"{rate:.2f}\n{count}"`` (normalised) or ``"{count}"``; axis labels ``"true"``
        (y) and ``"predicted"`` (x).

    Raises:
        ValueError: if ``confusion`` is not ``(K, K)`` with ``K = len(names)``.
    """
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=float)
    k = len(names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion has shape {counts.shape}; {k} names need ({k}, {k})")
    rows = counts.sum(axis=1, keepdims=True)
    shown = np.where(rows > 0, counts / np.where(rows > 0, rows, 1), 0.0) if normalize else counts
    top = 1.0 if normalize else max(float(counts.max()), 1.0)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.2 * k + 1.5), layout="constrained")
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=top)
    for t in range(k):
        for p in range(k):
            text = (
                f"{shown[t, p]:.2f}\n{_count(counts[t, p])}" if normalize else _count(counts[t, p])
            )
            ax.text(
                p,
                t,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shown[t, p] > 0.5 * top else "black",
            )
    ax.set_xticks(range(k), list(names), rotation=45, ha="right")
    ax.set_yticks(range(k), list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the row" if normalize else "pixels")
    if show_titles:
        ax.set_title("confusion (row-normalised)" if normalize else "confusion (counts)")
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def plot_iou_bars(
    ious: Mapping[str, Sequence[float]],
    names: Sequence[str],
    *,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """Per-class IoU of several methods as grouped bars.

    Args:
        ious: method name -> its K per-class IoUs (NaN, a class absent from both maps, is
            drawn as no bar).
        names: the K class names (x tick labels).
        show_titles: a title ``"per-class IoU"`` over the axis.
        suptitle: a title over the figure.

    Returns:
        The figure: one axis, ``ax.containers[i]`` the bars of the ``i``-th method (its
        finite IoUs, in class order), legend entries the method names, y ``"IoU"`` on
        ``[0, 1]``.

    Raises:
        ValueError: on no methods, or a method without K values.
    """
    import matplotlib.pyplot as plt

    if not ious:
        raise ValueError("plot_iou_bars: no methods")
    k = len(names)
    fig, ax = plt.subplots(
        figsize=(max(4.0, 0.9 * k * max(1, len(ious) / 2) + 2), 3.6), layout="constrained"
    )
    width = 0.8 / len(ious)
    centres = np.arange(k, dtype=float)
    for i, (method, values) in enumerate(ious.items()):
        v = np.asarray(values, dtype=float)
        if v.shape != (k,):
            raise ValueError(f"plot_iou_bars: {method!r} has {v.size} IoUs for {k} classes")
        ok = np.isfinite(v)
        x = centres - 0.4 + width * (i + 0.5)
        ax.bar(x[ok], v[ok], width, label=method, color=f"C{i % 10}")
    ax.set_xticks(centres, list(names))
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("IoU")
    ax.legend(frameon=False)
    if show_titles:
        ax.set_title("per-class IoU")
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def _read_metrics(
    metrics: str | os.PathLike[str] | pandas.DataFrame,
) -> tuple[dict[str, np.ndarray], str]:
    """Columns of a metrics table as float arrays (blank or non-numeric = NaN), and its name."""

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else math.nan
        except ValueError:
            return math.nan

    if isinstance(metrics, str | os.PathLike):
        path = os.fspath(metrics)
        if os.path.isdir(path):  # map's OUT, or a log version's folder
            nested = os.path.join(path, "logs", "version_0", "metrics.csv")
            path = nested if os.path.exists(nested) else os.path.join(path, "metrics.csv")
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
        return {c: np.array([number(r.get(c)) for r in rows], dtype=float) for c in fields}, path
    columns = {}
    for c in metrics.columns:
        values = [number(None if v is None else str(v)) for v in metrics[c].tolist()]
        columns[str(c)] = np.array(values, dtype=float)
    return columns, "the DataFrame"


def _is_metric(column: str) -> bool:
    return any(word in column for word in ("acc", "iou"))


def plot_training_curves(
    metrics: str | os.PathLike[str] | pandas.DataFrame,
    keys: Sequence[str] | None = None,
    *,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """Losses and metrics against the step, from a Lightning ``CSVLogger`` ``metrics.csv``.

    ``map`` writes one at ``OUT/logs/version_0/metrics.csv`` (columns ``epoch``, ``step``,
    ``train_loss``, ``val_loss`` and, with labels, ``val_acc_q``, ``val_miou_q``, ...; each
    row holds the values logged at one step, the others blank).

    Args:
        metrics: the CSV file (or ``map``'s output folder, or a folder holding
            ``metrics.csv``), or a ``pandas.DataFrame`` of it.
        keys: the columns to plot; default every column ending in ``"loss"``, then the
            metrics (columns naming ``acc`` or ``iou``).
        show_titles: titles ``"loss"`` and ``"metrics"`` over the axes.
        suptitle: a title over the figure.

    Returns:
        The figure: an axis of the keys ending in ``"loss"``, then one of the others (each
        only if it has keys); one line per key (its label the key) through the rows where
        it is not NaN, x ``"step"``; a legend per axis.

    Raises:
        ValueError: naming the file, if it has no ``step`` column or none of the keys.
    """
    columns, where = _read_metrics(metrics)
    if "step" not in columns:
        raise ValueError(
            f"plot_training_curves: {where} has no 'step' column (columns: {sorted(columns)}); "
            "expected a Lightning CSVLogger metrics.csv"
        )
    if keys is None:
        losses = [c for c in columns if c.endswith("loss")]
        keys = losses + [c for c in columns if c not in losses and c != "step" and _is_metric(c)]
    chosen = [k for k in keys if k in columns]
    if not chosen:
        raise ValueError(
            f"plot_training_curves: {where} has none of the keys {list(keys)} "
            f"(columns: {sorted(columns)})"
        )
    groups = [
        ("loss", [k for k in chosen if k.endswith("loss")]),
        ("metrics", [k for k in chosen if not k.endswith("loss")]),
    ]
    groups = [(title, ks) for title, ks in groups if ks]
    fig, axes = _figure(len(groups), width=4.6, height=3.4)
    step = columns["step"]
    for ax, (title, ks) in zip(axes, groups, strict=True):
        for key in ks:
            ok = np.isfinite(columns[key]) & np.isfinite(step)
            ax.plot(step[ok], columns[key][ok], marker=".", label=key)
        ax.set_xlabel("step")
        ax.legend(frameon=False)
        if show_titles:
            ax.set_title(title)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def denormalize(image: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``image * std + mean`` for ``(C, H, W)`` imagery normalised per band (or by one value)."""
    view = (-1, 1, 1) if mean.numel() > 1 or std.numel() > 1 else (1, 1, 1)
    return image * std.to(image).reshape(view) + mean.to(image).reshape(view)
