"""``torchgeo-lsr map`` and ``torchgeo-lsr evaluate``: their command lines.

The options are generated from :class:`~torchgeo_lsr.mapping.MapConfig` and
:class:`EvaluateConfig` (:mod:`torchgeo_lsr.options`); the work is imported only once the
options are read, so ``--help`` and a bad option answer at once.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..options import (
    add_dataclass_options,
    add_region_options,
    given_options,
    parse_options,
    run_tool,
    tool_parser,
)
from .config import BUDGETS, EvaluateConfig, MapConfig

__all__ = ["evaluate_main", "map_main"]


def _show_progress(args: Any) -> bool | None:
    """False when ``--no-progress`` or ``--quiet``; None: decide from the terminal."""
    return False if args.no_progress or args.quiet else None


def map_main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr map [REGION_DIR] --out OUT_DIR [options]``."""
    prog = "torchgeo-lsr map"

    def body() -> int:
        parser = tool_parser(
            prog,
            "Map a region from its weak sources: prior, training, prediction, outputs. "
            "Without REGION_DIR, the generated sample city is mapped (into OUT_DIR/region).",
        )
        add_region_options(parser, optional=True)
        parser.add_argument("--out", type=str, required=True, help="output directory")
        gpu = {k: v for k, v in BUDGETS["gpu"].items() if v != BUDGETS["cpu"][k]}
        notes = {k: f"On a GPU, when not given: {v} (the paper's budget)." for k, v in gpu.items()}
        names = add_dataclass_options(parser, MapConfig, notes=notes)
        args = parse_options(parser, argv)
        given = given_options(parser, argv) & set(names)
        # the training budget the user does not set comes from the accelerator's
        config, budget = MapConfig.for_accelerator({name: args[name] for name in given})

        from pathlib import Path

        from ..interrupt import graceful_signals
        from ..progress import report
        from ..region import open_region_from_args
        from .run import map_region

        report("budget", budget.describe(), _show_progress(args))
        with graceful_signals():
            region = open_region_from_args(args)
            summary = map_region(region, Path(args.out), config, progress=_show_progress(args))
        if not summary:  # a DDP rank other than 0
            return 0
        print(
            f"map of {summary['region']} in {args.out}: q.vrt, r.vrt, quicklook.png, summary.json"
        )
        for name, m in summary.get("metrics", {}).items():
            print(f"  {name:<13} accuracy {m['accuracy']:.3f}  mIoU {m['miou']:.3f}")
        return 0

    return run_tool(prog, body)


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr evaluate PRED --labels LABELS [--classes ...] [--out DIR]``."""
    prog = "torchgeo-lsr evaluate"

    def body() -> int:
        parser = tool_parser(prog, "Score class maps against hi-res labels.")
        parser.add_argument("predictions", type=str, help="class-map GeoTIFF or directory")
        names = add_dataclass_options(parser, EvaluateConfig)
        args = parse_options(parser, argv)
        options = EvaluateConfig(**{name: args[name] for name in names})

        from .evaluate import run_evaluation

        return run_evaluation(args.predictions, options)

    return run_tool(prog, body)
