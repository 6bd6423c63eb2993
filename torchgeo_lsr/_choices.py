"""Named training choices shared by the task and ``MapConfig``, and one check for them.

.. versionadded:: 0.1
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["LRSchedule", "WarmupLoss", "check_choice"]

#: ``plateau`` (TorchGeo's ReduceLROnPlateau on ``val_loss``) or ``cosine`` (per step to 0).
LRSchedule = Literal["plateau", "cosine"]
#: The warm-up objective: the paper's soft cross-entropy or RQ's EM form.
WarmupLoss = Literal["ce_soft", "em"]


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
        ValueError: lr_schedule must be one of plateau, cosine, got 'step'
    """
    names = get_args(choices)
    if value not in names:
        raise ValueError(f"{option} must be one of {', '.join(map(str, names))}, got {value!r}")
