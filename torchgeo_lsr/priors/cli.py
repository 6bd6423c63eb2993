"""``torchgeo-lsr prior``: build a region's priors from the command line.

The hand-made recipe (:func:`~torchgeo_lsr.priors.builder.build_region_priors`) or a
trained learned prior (:func:`~torchgeo_lsr.priors.learned.apply_learned_prior`); the
command sits above both, so neither imports the other.

.. versionadded:: 0.1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from ..classes import LabelScheme
from ..formats import PriorDType
from ..losses import DEFAULT_SMOOTHING
from ..outputs import output_lock
from ..region import AUX_NAMES, AuxName, add_region_arguments, open_region_from_args
from .blur import BlurMethod
from .builder import PriorConfig, build_region_priors
from .learned import apply_learned_prior

__all__ = ["main", "parse_aux"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchgeo-lsr prior",
        description="Build one prior GeoTIFF per imagery tile of a region directory.",
    )
    add_region_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--classes", default="enviroatlas5", help="class scheme name or YAML file")
    parser.add_argument(
        "--cooccurrence",
        default="pittsburgh",
        help="pittsburgh|durham|austin|phoenix, a .npy (classes x 17) file, 'scheme' or 'estimate'",
    )
    parser.add_argument("--sigma", type=float, default=31.0, help="blur sigma in pixels")
    parser.add_argument("--kernel-size", type=int, default=101, help="blur kernel size (odd)")
    parser.add_argument("--blur", choices=get_args(BlurMethod), default="fast")
    parser.add_argument(
        "--aux", default="none", help="none | osm | buildings | osm,buildings (fused sources)"
    )
    parser.add_argument("--dtype", choices=get_args(PriorDType), default="float32")
    parser.add_argument("--window", type=int, default=2048, help="processing window (px)")
    parser.add_argument("--eps", type=float, default=DEFAULT_SMOOTHING, help="additive smoothing")
    parser.add_argument(
        "--label-scheme",
        choices=get_args(LabelScheme),
        default=None,
        help="how the labels are coded (for --cooccurrence estimate; default: the region's)",
    )
    parser.add_argument(
        "--learned-prior",
        type=Path,
        metavar="CKPT",
        help="apply a trained LearnedPriorTask checkpoint instead of the hand-made recipe "
        "(its input settings come from the checkpoint)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def parse_aux(value: str) -> tuple[AuxName, ...]:
    """``"none"``, ``"osm"``, ``"buildings"`` or ``"osm,buildings"`` -> a tuple."""
    if value in ("", "none"):
        return ()
    parts = tuple(p.strip() for p in value.split(","))
    unknown = [p for p in parts if p not in AUX_NAMES]
    if unknown:
        raise ValueError(
            f"--aux: unknown sources {unknown}; use none, osm, buildings or osm,buildings"
        )
    return parts  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr prior REGION_DIR --out DIR [options]``."""
    args = _parser().parse_args(argv)
    try:
        config = PriorConfig(
            classes=args.classes,
            cooccurrence=args.cooccurrence,
            sigma=args.sigma,
            kernel_size=args.kernel_size,
            blur=args.blur,
            aux=parse_aux(args.aux),
            eps=args.eps,
            dtype=args.dtype,
            window=args.window,
            label_scheme=args.label_scheme,
        )
        progress = False if args.no_progress else None
        region = open_region_from_args(args)
        if region is None:  # REGION is a required argument of `prior`
            raise ValueError("REGION: required")
        with output_lock(args.out, "torchgeo-lsr prior"):
            if args.learned_prior is not None:
                report = apply_learned_prior(
                    args.learned_prior,
                    region,
                    args.out,
                    eps=args.eps,
                    window=args.window,
                    progress=progress,
                )
            else:
                report = build_region_priors(region, args.out, config, progress=progress)
    except (ValueError, FileNotFoundError) as err:
        print(f"torchgeo-lsr prior: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a write that failed (full disk, I/O error): not bad input
        print(f"torchgeo-lsr prior: {err}", file=sys.stderr)
        return 1
    print(
        f"priors in {args.out}: {len(report.written)} written, {len(report.skipped)} reused "
        f"(classes {config.classes}, co-occurrence {config.cooccurrence}, sigma {config.sigma})"
    )
    return 0
