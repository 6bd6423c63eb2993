"""``torchgeo-lsr sample-city``: the command line of :func:`make_sample_city`.

Its options are generated from :class:`SampleCityConfig` (:mod:`torchgeo_lsr.options`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..options import add_dataclass_options, parse_options, run_tool, tool_parser

__all__ = ["SampleCityConfig", "main"]


@dataclass(frozen=True)
class SampleCityConfig:
    """Options of ``torchgeo-lsr sample-city``.

    Attributes:
        seed: random seed (the same seed gives byte-identical files).
        tiles: number of NAIP tiles.
        size: tile side in pixels at 1 m.
        overwrite: replace an existing directory.
    """

    seed: int = 0
    tiles: int = 4
    size: int = 512
    overwrite: bool = False


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr sample-city OUT_DIR [--seed S] [--tiles N] [--size PX] [--overwrite]``.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 on success, 1 when the output directory exists (without ``--overwrite``), 2 on
        bad options.
    """
    prog = "torchgeo-lsr sample-city"

    def body() -> int:
        parser = tool_parser(
            prog,
            "Generate a synthetic sample city: NAIP tiles, NLCD, OSM, building footprints "
            "and 1 m labels, in the real formats and CRSs of each source.",
        )
        parser.add_argument("out_dir", type=str, help="region directory to create")
        names = add_dataclass_options(parser, SampleCityConfig)
        args = parse_options(parser, argv)
        options = SampleCityConfig(**{name: args[name] for name in names})
        from .generate import make_sample_city

        start = time.perf_counter()
        try:
            city = make_sample_city(
                Path(args.out_dir),
                seed=options.seed,
                tiles=options.tiles,
                size=options.size,
                overwrite=options.overwrite,
                progress=False if args.no_progress or args.quiet else None,
            )
        except FileExistsError as err:
            print(f"{prog}: {err}", file=sys.stderr)
            return 1
        fractions = ", ".join(f"{k} {100 * v:.1f} %" for k, v in city.class_fractions.items())
        print(
            f"wrote {city.root} ({city.tiles} tiles of {city.size} px, seed {city.seed}) in "
            f"{time.perf_counter() - start:.1f} s: {fractions}"
        )
        return 0

    return run_tool(prog, body)
