"""One vocabulary of input checks, each raising one error that names the argument.

* :func:`check_choice`: a value among the arguments of a ``typing.Literal``;
* :func:`check_shape`: a tensor's dimensions against named shapes, as Kornia's
  ``KORNIA_CHECK_SHAPE`` names them (``["B", "C", "H", "W"]``);
* :func:`check_map`: a floating ``(B, C, H, W)`` or ``(C, H, W)`` probability map;
* :func:`check_mask`: a boolean pixel mask of a map's (or a batch's) shape without its
  class axis.

Also the named choices more than one layer (and the command line) shares: the training
objectives (:data:`LossName`, :data:`LRSchedule`, :data:`WarmupLoss`), the prior's blur
(:data:`BlurMethod`), storage (:data:`PriorDType`) and auxiliary sources (:data:`AuxName`),
and the paper's smoothing :data:`DEFAULT_SMOOTHING`. They live here, in a module that
imports neither torch nor the geo stack at import time, so that a tool's ``--help``, built
from them, answers at once. Nothing here knows geography; every layer may import it.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "AUX_NAMES",
    "DEFAULT_SMOOTHING",
    "AuxName",
    "BlurMethod",
    "LRSchedule",
    "LossName",
    "PriorDType",
    "WarmupLoss",
    "check_choice",
    "check_map",
    "check_mask",
    "check_shape",
]

#: The training objectives of :mod:`torchgeo_lsr.losses`.
LossName = Literal["qr", "qr_kl", "rq", "em", "ce_soft", "ce_hard", "nll_union"]

#: ``plateau`` (TorchGeo's ReduceLROnPlateau on ``val_loss``) or ``cosine`` (per step to 0).
LRSchedule = Literal["plateau", "cosine"]
#: The warm-up objective: the paper's soft cross-entropy or RQ's EM form.
WarmupLoss = Literal["ce_soft", "em"]
#: How a prior is blurred (:mod:`torchgeo_lsr.priors.blur`).
BlurMethod = Literal["exact", "fft", "fast"]
#: How a prior file stores probabilities (:mod:`torchgeo_lsr.formats`).
PriorDType = Literal["float32", "uint8"]
#: A region's optional auxiliary sources (its ``osm/`` and ``buildings/`` folders).
AuxName = Literal["osm", "buildings"]
AUX_NAMES: tuple[AuxName, ...] = get_args(AuxName)
#: The paper's additive smoothing of q and P.
DEFAULT_SMOOTHING = 1e-4


def check_choice(option: str, value: object, choices: object) -> None:
    """Raise one ``ValueError`` naming ``option`` unless ``value`` is an argument of ``choices``.

    Args:
        option: the option's name, as the user spells it.
        value: the value given.
        choices: a ``typing.Literal`` type.

    Example:
        >>> check_choice("lr_schedule", "step", LRSchedule)
        Traceback (most recent call last):
        ...
        ValueError: lr_schedule must be 'plateau' or 'cosine', got 'step'
        >>> check_choice("x", 4, Literal[1, 2, 3])
        Traceback (most recent call last):
        ...
        ValueError: x must be one of 1, 2, 3, got 4
    """
    names = get_args(choices)
    if value in names:
        return
    if len(names) == 2:
        raise ValueError(f"{option} must be {names[0]!r} or {names[1]!r}, got {value!r}")
    raise ValueError(f"{option} must be one of {', '.join(map(str, names))}, got {value!r}")


def _spell(shape: Sequence[str]) -> str:
    return "(" + ", ".join(shape) + (",)" if len(shape) == 1 else ")")


def check_shape(x: Tensor, *shapes: Sequence[str], name: str = "x") -> None:
    """Raise unless ``x`` has as many dimensions as one of ``shapes`` (Kornia's names).

    Only the number of dimensions is checked; the names say what each one is.

    Example:
        >>> import torch
        >>> check_shape(torch.zeros(2, 3), ["B", "C"], ["B", "C", "H", "W"], name="q")
        >>> check_shape(torch.zeros(3), ["B", "C"], ["B", "C", "H", "W"], name="q")
        Traceback (most recent call last):
        ...
        ValueError: q must have shape (B, C) or (B, C, H, W), got (3,)
    """
    from torch import Tensor

    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if all(x.ndim != len(shape) for shape in shapes):
        spelled = " or ".join(_spell(shape) for shape in shapes)
        raise ValueError(f"{name} must have shape {spelled}, got {tuple(x.shape)}")


def check_map(p: Tensor, name: str = "p") -> None:
    """Raise unless ``p`` is a floating ``(B, C, H, W)`` or ``(C, H, W)`` tensor."""
    check_shape(p, ["B", "C", "H", "W"], ["C", "H", "W"], name=name)
    if not p.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {p.dtype}")


def check_mask(
    mask: Tensor | None,
    p: Tensor,
    name: str,
    *,
    class_axis: int = -3,
    of: str = "the map",
) -> Tensor | None:
    """Check a boolean mask against ``p``'s shape without its class axis.

    Args:
        mask: the mask, or None (returned as is).
        p: the map ``(B, C, H, W)`` / ``(C, H, W)`` (``class_axis=-3``), or a batch
            ``(B, C, ...)`` (``class_axis=1``).
        name: the mask's argument name, for the error.
        class_axis: which axis of ``p`` is the class axis.
        of: how the error names ``p``.

    Returns:
        ``mask`` on ``p``'s device.

    Example:
        >>> import torch
        >>> check_mask(torch.ones(2, 2), torch.zeros(3, 2, 2), "valid")
        Traceback (most recent call last):
        ...
        TypeError: valid must be a boolean tensor, got torch.float32
    """
    if mask is None:
        return None
    import torch
    from torch import Tensor

    axis = class_axis % p.ndim
    expected = p.shape[:axis] + p.shape[axis + 1 :]
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        what = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a boolean tensor, got {what}")
    if mask.shape != expected:
        raise ValueError(
            f"{name} must have shape {tuple(expected)} ({of} without its class axis), "
            f"got {tuple(mask.shape)}"
        )
    return mask.to(p.device)
