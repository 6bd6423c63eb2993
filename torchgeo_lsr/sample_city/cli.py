"""``torchgeo-lsr sample-city``: the command line of :func:`make_sample_city`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .generate import make_sample_city


def main(argv: Sequence[str] | None = None) -> int:
    """``torchgeo-lsr sample-city OUT_DIR [--seed S] [--tiles N] [--size PX] [--overwrite]``.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        0 on success, 1 when the output directory exists (without ``--overwrite``).
    """
    parser = argparse.ArgumentParser(
        prog="torchgeo-lsr sample-city",
        description="Generate a synthetic sample city: NAIP tiles, NLCD, OSM, building "
        "footprints and 1 m labels, in the real formats and CRSs of each source.",
    )
    parser.add_argument("out_dir", type=Path, help="region directory to create")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tiles", type=int, default=4, help="number of NAIP tiles (default 4)")
    parser.add_argument(
        "--size", type=int, default=512, help="tile side in pixels at 1 m (default 512)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    try:
        start = time.perf_counter()
        city = make_sample_city(
            args.out_dir,
            seed=args.seed,
            tiles=args.tiles,
            size=args.size,
            overwrite=args.overwrite,
            progress=False if args.no_progress else None,
        )
    except FileExistsError as err:
        print(f"torchgeo-lsr sample-city: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        parser.error(str(err))
    fractions = ", ".join(f"{k} {100 * v:.1f} %" for k, v in city.class_fractions.items())
    print(
        f"wrote {city.root} ({city.tiles} tiles of {city.size} px, seed {city.seed}) in "
        f"{time.perf_counter() - start:.1f} s: {fractions}"
    )
    return 0
