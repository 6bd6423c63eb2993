"""What a region prior is built with: :class:`PriorConfig`.

Kept apart from the recipe (:mod:`.builder`) and light to import (no torch, no geo
stack), because the command line builds ``prior``'s and ``map``'s options from it and
answers ``--help`` without loading the recipe.

.. versionadded:: 0.2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..checks import (
    AUX_NAMES,
    DEFAULT_SMOOTHING,
    AuxName,
    BlurMethod,
    PriorDType,
    check_choice,
)
from ..classes import ClassScheme, LabelScheme, get_scheme

if TYPE_CHECKING:
    from .fusion import FusionConfig

__all__ = ["MAX_WORKERS", "PriorConfig", "check_workers"]

#: The most worker processes ``prior --workers`` (and ``build_region_priors``) accepts.
MAX_WORKERS = 64


def check_workers(workers: object) -> int:
    """``workers`` if it is a number of prior processes from 1 to :data:`MAX_WORKERS`.

    Not a :class:`PriorConfig` field: how many processes build the priors changes nothing
    in them (it is not part of their key).

    Raises:
        ValueError: naming ``--workers``, on anything else.
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise ValueError(f"--workers: expected a number of processes, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(
            f"--workers: expected 1 to {MAX_WORKERS} processes (1 builds the tiles in this "
            f"process), got {workers}"
        )
    return workers


@dataclass(frozen=True)
class PriorConfig:
    """Parameters of a region prior.

    Attributes:
        classes: class scheme name or YAML file (:func:`torchgeo_lsr.classes.get_scheme`).
        cooccurrence: a reference city (``pittsburgh``, ``durham``, ``austin``,
            ``phoenix``), a ``.npy`` file holding a ``(classes, 17)`` matrix
            P(class | NLCD index), ``scheme`` (the scheme's own ``nlcd_matrix``), or
            ``estimate`` (from the region's ``labels/``; see
            :func:`estimate_region_cooccurrence`).
        sigma: blur sigma in pixels of the imagery grid (paper: 31 at 1 m).
        kernel_size: blur kernel size (paper: 101); None truncates at 4 sigma.
        blur: ``fast`` (downsample, blur, upsample; error documented in
            :mod:`torchgeo_lsr.priors.blur`), ``fft`` or ``exact``.
        aux: auxiliary sources to fuse: ``osm`` (roads, water bodies, waterways from
            ``osm/``) and/or ``buildings`` (``buildings/``).
        eps: additive smoothing onto the simplex (paper: 1e-4).
        dtype: ``float32`` probabilities, or ``uint8`` scaled by 255 with sum-preserving
            rounding (divide by 255 to read; every pixel's bands sum to exactly 255, each
            value is within 1/255; 0 in every band = no information; see
            :func:`~torchgeo_lsr.formats.quantize_probs`). Both are written with ZSTD;
            uint8 files are smaller.
        window: processing window side in pixels.
        label_scheme: how the labels are coded for ``cooccurrence="estimate"``:
            ``enviroatlas`` raw codes (remapped to ``classes``), ``chesapeake``
            (Chesapeake ``lc`` codes), ``index`` (already class indices, 255 = nodata),
            or None (default) for the region's own (see :class:`~torchgeo_lsr.region.Region`).
        fusion: per auxiliary layer its target class, weight, dilation and blur (see
            :func:`~torchgeo_lsr.priors.fusion.fuse_auxiliary`); None (default) takes
            :func:`~torchgeo_lsr.priors.fusion.default_fusion` of the scheme's class names
            (buildings and roads to "impervious", water layers to "water").
    """

    classes: str = "enviroatlas5"
    cooccurrence: str = "pittsburgh"
    sigma: float = 31.0
    kernel_size: int | None = 101
    blur: BlurMethod = "fast"
    aux: tuple[AuxName, ...] = ()
    eps: float = DEFAULT_SMOOTHING
    dtype: PriorDType = "float32"
    window: int = 2048
    label_scheme: LabelScheme | None = None
    fusion: FusionConfig | None = None

    def __post_init__(self) -> None:
        _ = self.scheme  # an unknown scheme fails here, not at the first tile
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        if self.window < 16:
            raise ValueError(f"window must be >= 16 px, got {self.window}")
        check_choice("dtype", self.dtype, PriorDType)
        unknown = sorted(set(self.aux) - set(AUX_NAMES))
        if unknown:
            raise ValueError(f"aux: unknown sources {unknown}; use 'osm' and/or 'buildings'")

    @property
    def scheme(self) -> ClassScheme:
        """The class scheme ``classes`` names (:func:`~torchgeo_lsr.classes.get_scheme`)."""
        return get_scheme(self.classes)

    def fusion_spec(self) -> FusionConfig:
        """The fusion settings: ``fusion``, or the scheme's default.

        None takes :func:`~torchgeo_lsr.priors.fusion.default_fusion` of the scheme's class
        names, resolved when used, so ``dataclasses.replace(config, classes=...)``
        retargets the layers.
        """
        from .fusion import default_fusion

        if self.fusion is not None:
            return self.fusion
        return default_fusion(self.scheme.names)

    @property
    def margin(self) -> int:
        """Pixels read around each window so the blur sees its whole kernel."""
        size = self.kernel_size if self.kernel_size is not None else 2 * int(4 * self.sigma) + 1
        return size // 2
