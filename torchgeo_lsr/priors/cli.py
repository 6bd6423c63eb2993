"""``torchgeo-lsr prior``: build a region's priors from the command line.

The hand-made recipe (:func:`~torchgeo_lsr.priors.builder.build_region_priors`) or a
trained learned prior (:func:`~torchgeo_lsr.priors.learned.apply_learned_prior`); the
command sits above both, so neither imports the other. Its options are generated from
:class:`~torchgeo_lsr.priors.PriorConfig` (:mod:`torchgeo_lsr.options`), and the recipe is
imported only once they are read, so ``--help`` answers at once.

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..options import (
    add_dataclass_options,
    add_region_options,
    parse_options,
    run_tool,
    tool_parser,
)
from .config import MAX_WORKERS, PriorConfig, check_workers

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr prior REGION_DIR --out DIR [options]``."""
    prog = "torchgeo-lsr prior"

    def body() -> int:
        parser = tool_parser(prog, "Build one prior GeoTIFF per imagery tile of a region.")
        add_region_options(parser)
        parser.add_argument("--out", type=str, required=True, help="output directory")
        names = add_dataclass_options(parser, PriorConfig, skip={"fusion"})
        parser.add_argument(
            "--learned-prior",
            dest="learned_prior",
            type=str | None,
            default=None,
            help="apply a trained LearnedPriorTask checkpoint instead of the hand-made "
            "recipe (its input settings come from the checkpoint)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help=f"processes building tiles on this machine, 1 to {MAX_WORKERS} (the priors "
            "are the same bytes whatever the number; 1 builds them in this process)",
        )
        args = parse_options(parser, argv)
        workers = check_workers(args.workers)
        if workers > 1 and args.learned_prior is not None:
            raise ValueError("--workers: the learned prior runs in one process; drop --workers")
        config = PriorConfig(**{name: args[name] for name in names})
        progress = False if args.no_progress or args.quiet else None

        from ..outputs import output_lock
        from ..region import open_region_from_args
        from .builder import build_region_priors
        from .learned import apply_learned_prior

        region = open_region_from_args(args)
        if region is None:  # REGION is a required argument of `prior`
            raise ValueError("REGION: required")
        out = Path(args.out)
        with output_lock(out, prog):
            if args.learned_prior is not None:
                report = apply_learned_prior(
                    args.learned_prior,
                    region,
                    out,
                    eps=config.eps,
                    window=config.window,
                    progress=progress,
                )
            else:
                report = build_region_priors(
                    region, out, config, progress=progress, workers=workers
                )
        print(
            f"priors in {out}: {len(report.written)} written, {len(report.skipped)} reused "
            f"(classes {config.classes}, co-occurrence {config.cooccurrence}, "
            f"sigma {config.sigma})"
        )
        return 0

    return run_tool(prog, body)
