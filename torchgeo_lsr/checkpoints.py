"""Reading checkpoints given on the command line, with one clear error for a bad file.

.. versionadded:: 0.2
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch

__all__ = ["read_checkpoint"]


def read_checkpoint(
    path: str | os.PathLike[str], what: str = "checkpoint", *, lightning: bool = True
) -> dict[str, Any]:
    """Load ``path`` on the CPU (``weights_only``); a file that is not one is a ValueError.

    Args:
        path: the file.
        what: how to name it in the error (an option, e.g. ``--init-from``).
        lightning: it must be a Lightning checkpoint (a dict with ``state_dict``); else
            a plain state dict (a dict of tensors) is accepted too.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not a (Lightning) checkpoint, naming ``path``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, TypeError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{what} {path}: not a PyTorch checkpoint ({reason[:120]})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{what} {path}: not a checkpoint (holds a {type(state).__name__})")
    if lightning and "state_dict" not in state:
        raise ValueError(f"{what} {path}: not a Lightning checkpoint (no state_dict)")
    return state
