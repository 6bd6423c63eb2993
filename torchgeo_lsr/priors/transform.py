"""The prior recipe as a transform on sample dicts, for TorchGeo pipelines.

:class:`PriorTransform` turns a sample holding NLCD (and optionally rasterised roads,
buildings and water) into one holding ``prior``: NLCD index -> its column of the
co-occurrence matrix -> Gaussian blur -> fusion of the auxiliary masks -> smoothing onto
the simplex. It is :func:`~torchgeo_lsr.priors.builder.prior_window`, the function
``torchgeo-lsr prior`` runs on every window of a tile, wrapped as a Kornia-style module
(options stored, one tensor function doing the work), so a TorchGeo user composing
``NAIP & NLCD & BuildingFootprints`` and drawing with TorchGeo's samplers gets the same
prior the command writes:

* drawn with a margin of :attr:`PriorTransform.margin` px on every side and ``crop`` set to
  it, a window's prior equals the written prior over that window up to the fast blur's
  stated error (its coarse canvas is anchored at the window, see
  :mod:`~torchgeo_lsr.priors.blur`); over the same padded window as the command's, exactly;
* without a margin, the blur sees no context beyond the window and its borders are
  normalised (mass-preserving), as at a region's edge.

The NLCD is read as its ordinal index (``0`` = no data, then NLCD codes 11, 12, 21, ... in
order: :data:`torchgeo_lsr.classes.NLCD`; TorchGeo's ``NLCD`` ordinal map has the same
order); samples may carry a boolean ``valid`` mask too.

.. versionadded:: 0.3
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .builder import PriorConfig, blur_base, fuse_layers, prior_window, resolve_cooccurrence

__all__ = ["PriorTransform"]

#: Where an auxiliary layer is in the sample: a key, or a key and a channel of it.
AuxSource = str | tuple[str, int]


def _plane(x: Tensor, what: str) -> Tensor:
    """``(B, H, W)`` from ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``."""
    if x.ndim == 2:
        return x[None]
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    raise ValueError(
        f"{what} must have shape (H, W), (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}"
    )


class PriorTransform(nn.Module):
    """The hand-made prior of a sample's NLCD (and auxiliary masks), as a sample transform.

    Args:
        config: the recipe (classes, co-occurrence, sigma, kernel, blur, smoothing,
            fusion); default :class:`~torchgeo_lsr.priors.builder.PriorConfig`.
            ``cooccurrence="estimate"`` needs a region's labels and is refused; pass
            ``matrix`` instead.
        matrix: optional ``(K, 17)`` co-occurrence matrix P(class | NLCD index) overriding
            ``config.cooccurrence``.
        nlcd_key: sample key of the NLCD ordinal index.
        valid_key: sample key of an optional boolean mask (False = no data); when absent,
            index 0 is no data.
        aux: fusion layers by name (``buildings``, ``roads``, ``water_bodies``,
            ``waterways``): the sample key holding the mask, or ``(key, channel)`` when
            several masks are stacked under one key (as TorchGeo's ``concat_samples`` does
            with ``mask``). Non-zero = present.
        crop: pixels removed from every side after blurring and fusion (draw windows
            :attr:`margin` px larger and crop as much to match the command's prior).
        output_key: sample key of the prior.

    Example:
        >>> t = PriorTransform(PriorConfig(sigma=2.0, kernel_size=None))
        >>> nlcd = torch.zeros(1, 8, 8, dtype=torch.long); nlcd[:, :, 4:] = 9  # no data | 41
        >>> out = t({"mask": nlcd})
        >>> out["prior"].shape, bool((out["prior"].sum(1) > 0.999).all())
        (torch.Size([1, 5, 8, 8]), True)
    """

    def __init__(
        self,
        config: PriorConfig | None = None,
        *,
        matrix: Tensor | None = None,
        nlcd_key: str = "mask",
        valid_key: str = "valid",
        aux: Mapping[str, AuxSource] | None = None,
        crop: int = 0,
        output_key: str = "prior",
    ) -> None:
        super().__init__()
        self.config = config or PriorConfig()
        if matrix is None:
            if self.config.cooccurrence == "estimate":
                raise ValueError(
                    "PriorTransform: cooccurrence='estimate' needs a region's labels; "
                    "estimate the matrix first (estimate_region_cooccurrence) and pass matrix"
                )
            matrix = torch.from_numpy(resolve_cooccurrence(self.config))
        k = len(self.config.scheme)
        if matrix.shape != (k, 17):
            raise ValueError(f"matrix must have shape ({k}, 17), got {tuple(matrix.shape)}")
        if crop < 0:
            raise ValueError(f"crop must be >= 0, got {crop}")
        self.register_buffer("matrix", matrix.float(), persistent=False)
        self.nlcd_key, self.valid_key, self.output_key = nlcd_key, valid_key, output_key
        self.aux: dict[str, AuxSource] = dict(aux or {})
        self.crop = crop

    @property
    def margin(self) -> int:
        """Pixels the blur reads around a window (half its kernel): the ``crop`` to use."""
        return self.config.margin

    def _aux(self, sample: Mapping[str, Tensor], b: int) -> dict[str, Tensor]:
        layers = {}
        for name, where in self.aux.items():
            key, channel = (where, None) if isinstance(where, str) else where
            if key not in sample:
                raise KeyError(f"PriorTransform: aux {name!r} reads key {key!r}, not in the sample")
            x = sample[key]
            if channel is not None:
                x = x[:, channel] if x.ndim == 4 else x[channel]
            layers[name] = _plane(x, f"aux {name!r}")[b] != 0
        return layers

    #: The keys of :meth:`stages`, in order.
    STAGES = ("nlcd", "cooccurrence", "blur", "fusion", "prior")

    def forward(self, sample: dict[str, Tensor]) -> dict[str, Tensor]:
        """Add ``output_key`` to ``sample`` and return it.

        The prior is ``(B, K, H', W')`` (``(K, H', W')`` for an unbatched ``(H, W)`` NLCD),
        ``H' = H - 2 crop``; pixels without information are all zero.
        """
        sample[self.output_key] = self._run(sample, intermediates=False)["prior"]
        return sample

    def stages(self, sample: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The recipe's intermediate results for a sample (read as :meth:`forward` reads it).

        ``"prior"`` is what :meth:`forward` adds (the same computation); the others show each
        step on the same (cropped) window: ``"nlcd"`` the NLCD index, ``"cooccurrence"``
        each pixel's column of the co-occurrence matrix (zero where there is no
        information), ``"blur"`` its Gaussian blur (normalised borders, the config's blur
        method on the full-resolution grid), ``"fusion"`` the blur with the auxiliary masks
        fused (equal to ``"blur"`` without aux layers), ``"prior"`` the smoothing onto the
        simplex. With the exact blurs (``blur="exact"`` / ``"fft"``) ``"prior"`` is
        :func:`~torchgeo_lsr.priors.simplex.to_simplex` of ``"fusion"``; with
        ``blur="fast"`` the prior is computed on the blur's coarse canvas
        (:func:`~torchgeo_lsr.priors.builder.prior_window`) and agrees with it up to the
        fast blur's error.

        Args:
            sample: as for :meth:`forward` (not modified).

        Returns:
            ``{"nlcd", "cooccurrence", "blur", "fusion", "prior"}`` in that order; unbatched
            (an ``(H, W)`` NLCD): ``nlcd`` ``(H', W')`` and the others ``(K, H', W')``;
            batched: a leading ``B``. ``H' = H - 2 crop`` for every stage.

        Example:
            >>> t = PriorTransform(PriorConfig(sigma=2.0, kernel_size=None))
            >>> nlcd = torch.zeros(8, 8, dtype=torch.long); nlcd[:, 4:] = 9
            >>> s = t.stages({"mask": nlcd})
            >>> [(k, tuple(v.shape)) for k, v in s.items()]  # doctest: +NORMALIZE_WHITESPACE
            [('nlcd', (8, 8)), ('cooccurrence', (5, 8, 8)), ('blur', (5, 8, 8)),
             ('fusion', (5, 8, 8)), ('prior', (5, 8, 8))]
        """
        return self._run(sample, intermediates=True)

    def _run(self, sample: Mapping[str, Tensor], intermediates: bool) -> dict[str, Tensor]:
        """The stages (only ``"prior"`` unless ``intermediates``): forward's one code path."""
        if self.nlcd_key not in sample:
            raise KeyError(f"PriorTransform: no {self.nlcd_key!r} (the NLCD index) in the sample")
        raw = sample[self.nlcd_key]
        index = _plane(raw, self.nlcd_key).long()
        if bool(((index < 0) | (index > 16)).any()):
            raise ValueError(
                f"PriorTransform: {self.nlcd_key!r} holds values outside 0..16; expected the "
                "NLCD ordinal index (0 = no data), not NLCD codes"
            )
        if self.valid_key in sample:
            valid = _plane(sample[self.valid_key], self.valid_key).bool()
        else:
            valid = index != 0
        matrix = torch.as_tensor(self.matrix).to(index.device)
        found: dict[str, list[Tensor]] = {}
        for b in range(index.shape[0]):
            aux = self._aux(sample, b)
            prior = prior_window(index[b], valid[b], matrix, self.config, aux, self.crop)[0]
            if intermediates:
                for key, value in self._steps(index[b], valid[b], matrix, aux).items():
                    found.setdefault(key, []).append(value)
            found.setdefault("prior", []).append(prior)
        return {k: torch.stack(v) if raw.ndim != 2 else v[0] for k, v in found.items()}

    def _steps(
        self, index: Tensor, nlcd_valid: Tensor, matrix: Tensor, aux: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """The steps of :func:`~torchgeo_lsr.priors.builder.prior_window` before the simplex."""
        config, c = self.config, self.crop
        valid = nlcd_valid & (matrix.sum(dim=0) > 0)[index]
        base = (matrix[:, index] * valid).float()
        blurred = blur_base(base, valid, config)
        fused = fuse_layers(blurred, config, aux)
        steps = {"nlcd": index, "cooccurrence": base, "blur": blurred, "fusion": fused}
        if c:
            steps = {k: v[..., c:-c, c:-c] for k, v in steps.items()}
        return steps
