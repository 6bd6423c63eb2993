"""The files we write and read back: prior GeoTIFFs and the keys outputs carry.

One room for two conventions every stage shares:

* **A prior file** is a GeoTIFF with one band per class of a scheme (band descriptions =
  class names), on its imagery tile's grid, holding either ``float32`` probabilities or
  ``uint8`` probabilities x 255 (sum-preserving rounding: every pixel's bands sum to
  exactly 255, see :func:`quantize_probs`). All bands 0 = no information. Its tags:
  :data:`SCALE_TAG` (``"1"`` or ``"1/255"``: multiply a stored value by it to read a
  probability), :data:`CLASSES_TAG` (the scheme's name) and :data:`PRIOR_KEY_TAG`.
  :func:`prior_writer` / :func:`write_prior` write one (atomically, read back);
  :func:`prior_scale` / :func:`read_prior` decode one by its stored scale (files from
  elsewhere without the tag: ``uint8`` is read as x 255, anything else as is).
* **A key** (:func:`content_key`) is a hash of what an output was made from (parameters
  and input fingerprints, :func:`torchgeo_lsr.region.fingerprint`). Outputs carry theirs
  in a GeoTIFF tag (:data:`PRIOR_KEY_TAG` on priors, :data:`MAP_KEY_TAG` on maps;
  :func:`stored_key` reads it); a rerun skips an output whose key matches, so an
  interrupted run resumes and a changed input or parameter rebuilds.

This module sits below the datasets (which read priors) and above :mod:`.outputs`; it
imports neither datasets nor priors.

.. versionadded:: 0.3
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
import torch
from rasterio.errors import RasterioIOError

from .checks import PriorDType
from .outputs import RasterDigest, atomic_output

if TYPE_CHECKING:
    from rasterio.io import DatasetReader
    from rasterio.windows import Window

    from .classes import ClassScheme
    from .datasets.grid import Grid

__all__ = [
    "CLASSES_TAG",
    "MAP_KEY_TAG",
    "PRIOR_KEY_TAG",
    "SCALE_TAG",
    "PriorDType",
    "PriorWriter",
    "content_key",
    "prior_scale",
    "prior_writer",
    "quantize_probs",
    "read_prior",
    "stored_key",
    "write_prior",
]

#: GeoTIFF tag holding the key of a prior's inputs and parameters.
PRIOR_KEY_TAG = "LSR_PRIOR_KEY"
#: GeoTIFF tag holding the key of a class map's inputs (checkpoint, priors, options).
MAP_KEY_TAG = "LSR_KEY"
#: GeoTIFF tag: what a stored value is multiplied by to read a probability.
SCALE_TAG = "LSR_SCALE"
#: GeoTIFF tag: the class scheme a prior's bands follow.
CLASSES_TAG = "LSR_CLASSES"


_SCALE = {"float32": "1", "uint8": "1/255"}


# --------------------------------------------------------------------------- keys
def content_key(*parts: Any, length: int | None = None) -> str:
    """The SHA-256 hex digest of ``parts`` as sorted JSON (``str`` for other objects).

    Args:
        parts: what the output is made from (parameters, fingerprints, other keys).
        length: keep the first ``length`` hex digits (None: all 64).

    Example:
        >>> content_key({"b": 1, "a": 2}, [1]) == content_key({"a": 2, "b": 1}, [1])
        True
        >>> len(content_key("x", length=16))
        16
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def stored_key(path: str | os.PathLike[str], tag: str = PRIOR_KEY_TAG) -> str | None:
    """The key a finished output carries in its GeoTIFF tag (None: missing or unreadable)."""
    try:
        with rasterio.open(path) as src:
            key: str | None = src.tags().get(tag)
            return key
    except RasterioIOError:
        return None


# ------------------------------------------------------------------------ writing
def quantize_probs(probs: torch.Tensor) -> np.ndarray:
    """``(K, H, W)`` probabilities to ``uint8`` x 255 whose bands sum to exactly 255.

    Sum-preserving rounding: band ``k`` is ``round(255 C_k) - round(255 C_{k-1})`` with
    ``C_k`` the cumulative sum over bands, so every pixel with information sums to 255 and
    each value is within 1/255 of ``255 p_k``; pixels without information stay all 0.

    Example:
        >>> quantize_probs(torch.tensor([[[0.2]], [[0.3]], [[0.5]]])).ravel().tolist()
        [51, 77, 127]
    """
    # the rounded cumulative sums are non-decreasing, so uint8 differences cannot wrap
    cum = torch.cumsum(probs.float(), dim=0).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
    steps = cum.clone()
    steps[1:] -= cum[:-1]
    return steps.numpy()


class PriorWriter:
    """The open prior file :func:`prior_writer` yields; write it window by window."""

    def __init__(self, dst: Any, dtype: PriorDType, digest: RasterDigest) -> None:
        self._dst, self.dtype, self._digest = dst, dtype, digest

    def write(self, probs: torch.Tensor | np.ndarray, window: Window | None = None) -> None:
        """Write ``(K, h, w)`` probabilities at ``window`` (None: the whole grid).

        ``uint8`` files quantise them with :func:`quantize_probs`.
        """
        if self.dtype == "uint8":
            data = quantize_probs(torch.as_tensor(probs))
        else:
            data = probs.numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
        self._dst.write(data, window=window)
        self._digest.update(window, data)


@contextmanager
def prior_writer(
    path: str | os.PathLike[str],
    grid: Grid,
    scheme: ClassScheme,
    *,
    key: str,
    dtype: PriorDType = "float32",
    tags: dict[str, str] | None = None,
    **profile: Any,
) -> Iterator[PriorWriter]:
    """Open a prior file on ``grid`` for writing; publish it when the block succeeds.

    Written under a temporary name, read back window by window and renamed
    (:func:`~torchgeo_lsr.outputs.atomic_output`); on failure nothing is left.

    Args:
        path: the prior file.
        grid: its grid (the imagery tile's).
        scheme: its classes (one band each; names become band descriptions).
        key: the :data:`PRIOR_KEY_TAG` value (see :func:`content_key`).
        dtype: ``float32`` probabilities or ``uint8`` x 255.
        tags: extra tags (e.g. ``LSR_PRIOR="learned"``).
        profile: rasterio creation options over :meth:`Grid.profile`'s (compression).
    """
    if dtype not in _SCALE:
        raise ValueError(f"prior dtype must be 'float32' or 'uint8', got {dtype!r}")
    digest = RasterDigest(path)
    with (
        atomic_output(path, digest.check) as partial,
        rasterio.open(partial, "w", **grid.profile(len(scheme), dtype, **profile)) as dst,
    ):
        yield PriorWriter(dst, dtype, digest)
        dst.descriptions = tuple(scheme.names)
        dst.update_tags(
            **{PRIOR_KEY_TAG: key, CLASSES_TAG: scheme.name, SCALE_TAG: _SCALE[dtype]},
            **(tags or {}),
        )


def write_prior(
    path: str | os.PathLike[str],
    probs: torch.Tensor | np.ndarray,
    grid: Grid,
    scheme: ClassScheme,
    *,
    key: str,
    dtype: PriorDType = "float32",
    **profile: Any,
) -> Path:
    """Write ``(K, H, W)`` probabilities on ``grid`` as a prior file (see :func:`prior_writer`)."""
    with prior_writer(path, grid, scheme, key=key, dtype=dtype, **profile) as writer:
        writer.write(probs)
    return Path(path)


# ------------------------------------------------------------------------ reading
def prior_scale(src: DatasetReader) -> float:
    """What a value of the open prior ``src`` is divided by to read a probability.

    The :data:`SCALE_TAG` ``"1/N"`` gives ``N``; without the tag, ``uint8`` files are
    read as x 255 and others as probabilities.

    Raises:
        ValueError: naming the file, on a scale tag that is not ``1`` or ``1/N``.
    """
    tag = src.tags().get(SCALE_TAG)
    if tag is None:
        return 255.0 if np.dtype(src.dtypes[0]) == np.uint8 else 1.0
    try:
        scale = Fraction(tag.replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        scale = Fraction(0)
    if scale <= 0 or scale.numerator != 1:
        raise ValueError(f"prior {src.name}: {SCALE_TAG}={tag!r}; expected '1' or '1/N'")
    return float(scale.denominator)


def read_prior(src: DatasetReader, window: Window | None = None) -> np.ndarray:
    """``(K, h, w)`` float32 probabilities of the open prior ``src`` (its stored scale).

    Example:
        >>> import tempfile, rasterio
        >>> from rasterio.transform import from_origin
        >>> path = Path(tempfile.mkdtemp()) / "p.tif"
        >>> with rasterio.open(path, "w", driver="GTiff", width=1, height=1, count=2,
        ...                    dtype="uint8", transform=from_origin(0, 1, 1, 1)) as dst:
        ...     dst.write(np.array([[[51]], [[204]]], np.uint8))
        >>> with rasterio.open(path) as src:
        ...     read_prior(src).ravel().tolist()
        [0.20000000298023224, 0.800000011920929]
    """
    data: np.ndarray = src.read(window=window).astype(np.float32)
    scale = prior_scale(src)
    return data / scale if scale != 1.0 else data
