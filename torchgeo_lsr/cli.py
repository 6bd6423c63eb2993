"""Command-line interface: ``torchgeo-lsr SUBCOMMAND ...``.

``fit``, ``validate``, ``test`` and ``predict`` run a :class:`LightningCLI` configured
as :func:`torchgeo.main.main` (:mod:`torchgeo_lsr.lightning_cli`), so the same YAML
configs also run under ``torchgeo fit``. Other subcommands are the project's own tools
(:data:`TOOLS`) and are listed by ``torchgeo-lsr --help``. Nothing heavy is imported
here: each subcommand imports what it needs once it runs, so ``--help``, ``--version``
and a mistyped option answer in a fraction of a second (``benchmarks/startup.py``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .lightning_cli import lightning_main

__all__ = ["LIGHTNING_SUBCOMMANDS", "TOOLS", "lightning_main", "main"]

#: Subcommands handled by Lightning.
LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

#: The project's own subcommands: name -> ("module:function", one-line help). Imported
#: only when run, so a tool's optional dependencies never slow down or break another.
TOOLS: dict[str, tuple[str, str]] = {
    "map": (
        "torchgeo_lsr.mapping.cli:map_main",
        "map a region in one command (prior, training, prediction, GeoTIFFs)",
    ),
    "evaluate": (
        "torchgeo_lsr.mapping.cli:evaluate_main",
        "score class maps against hi-res labels (accuracy, mIoU, confusion)",
    ),
    "prior": (
        "torchgeo_lsr.priors.cli:main",
        "build one prior GeoTIFF per imagery tile of a region directory",
    ),
    "sample-city": (
        "torchgeo_lsr.sample_city.cli:main",
        "write the generated sample city (a region directory) to OUT_DIR",
    ),
}


def _tool(name: str) -> Callable[[Sequence[str]], int | None]:
    module, _, function = TOOLS[name][0].partition(":")
    entry: Callable[[Sequence[str]], int | None] = getattr(
        importlib.import_module(module), function
    )
    return entry


def __getattr__(name: str) -> Any:
    """``lightning_main``, from :mod:`torchgeo_lsr.lightning_cli` when first asked for."""
    if name == "lightning_main":
        from .lightning_cli import lightning_main

        return lightning_main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _usage() -> str:
    lines = [
        f"torchgeo-lsr {__version__}: label super-resolution for TorchGeo",
        "",
        "usage: torchgeo-lsr SUBCOMMAND [options]   (torchgeo-lsr SUBCOMMAND --help for options)",
        "",
        "training (Lightning, YAML configs with class_path/init_args, as `torchgeo fit`):",
        "  fit        train a model:          torchgeo-lsr fit --config configs/tiny.yaml",
        "  validate   score on the val split",
        "  test       score on the test split",
        "  predict    run the model on the predict split",
    ]
    if TOOLS:
        lines += ["", "tools:"]
        lines += [f"  {name:<10} {summary}" for name, (_, summary) in sorted(TOOLS.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int | None:
    """Entry point of the ``torchgeo-lsr`` console script.

    Args:
        argv: arguments without the program name; None reads ``sys.argv``.

    Returns:
        The tool's exit status (Lightning subcommands exit through Lightning).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if args[0] == "--version":
        from .options import version_line

        print(version_line())
        return 0
    if args[0] in LIGHTNING_SUBCOMMANDS:
        # Let Lightning read sys.argv itself when we were called as a script.
        from .interrupt import Interrupted
        from .lightning_cli import CheckpointMismatch, lightning_main

        try:
            lightning_main(None if argv is None else args)
        except CheckpointMismatch as err:
            print(f"torchgeo-lsr {args[0]}: {err}", file=sys.stderr)
            return 2
        except Interrupted as stop:
            resume = " (rerun with --ckpt_path last to resume)" if stop.checkpoint else ""
            print(f"torchgeo-lsr {args[0]}: {stop}{resume}", file=sys.stderr)
            return stop.exit_code
        return 0
    if args[0] in TOOLS:
        return _tool(args[0])(args[1:])
    print(f"torchgeo-lsr: unknown subcommand {args[0]!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
