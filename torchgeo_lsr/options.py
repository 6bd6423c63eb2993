"""How every tool reads its options: parsers generated from config dataclasses.

Each of the project's own subcommands (``map``, ``prior``, ``evaluate``, ``sample-city``)
builds its parser here with :func:`tool_parser` and :func:`add_dataclass_options` from the
dataclass that holds its parameters (:class:`~torchgeo_lsr.mapping.MapConfig`,
:class:`~torchgeo_lsr.priors.PriorConfig`, ...), with jsonargparse (the parser Lightning's
CLI uses), so that

* every option has the help text of its field (the first sentence of the dataclass's
  ``Attributes:`` entry), its type and default, and the choices of a ``Literal`` type;
* values are typed (``--devices 2`` is an int, ``--devices auto`` a string) and checked
  before any work; lists are written ``--aux osm,buildings`` (or YAML, ``[osm]``);
* ``--config FILE.yaml`` takes the same keys (``patch_size``: a field's name; on the
  command line ``--patch-size`` or ``--patch_size``), ``--print_config`` shows the result;
* an error is one line naming the option or the config key and what was expected, with
  the nearest valid name for a misspelled one (:class:`OptionError`, exit 2).

:func:`run_tool` is the one translation of a tool's errors into exit codes. This module is
imported before any heavy library: a tool's ``--help`` costs its config modules only.

.. versionadded:: 0.2
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import jsonargparse
from jsonargparse import ArgumentParser, Namespace

__all__ = [
    "OptionError",
    "add_dataclass_options",
    "add_region_options",
    "as_path",
    "field_help",
    "given_options",
    "parse_options",
    "read_config",
    "run_tool",
    "tool_parser",
    "version_line",
]


class OptionError(ValueError):
    """A bad option or config key: one line that names it and says what was expected."""


# ------------------------------------------------------------------------ help text
_ROLE = re.compile(r":(?:\w+:)?\w+:`~?(?:[^`<]*<)?([^`>]+)>?`")
_LITERAL = re.compile(r"``([^`]+)``")


def _plain(text: str) -> str:
    """Docstring markup as plain text (``:func:`~a.b.c``` -> ``c``, ````x```` -> ``x``)."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return " ".join(_LITERAL.sub(r"\1", text).split())


def field_help(cls: type) -> dict[str, str]:
    """Each attribute's description from ``cls``'s Google-style ``Attributes:`` section."""
    doc = cls.__doc__ or ""
    lines = doc.expandtabs().splitlines()
    found: dict[str, list[str]] = {}
    inside, indent, current = False, 0, None
    for line in lines:
        stripped = line.strip()
        if stripped == "Attributes:":
            inside, indent = True, len(line) - len(line.lstrip())
            continue
        if not inside:
            continue
        if stripped and len(line) - len(line.lstrip()) <= indent:
            break  # the next section
        match = re.match(r"\s*(\w+)(?: \(.*?\))?: (.*)", line)
        if match and len(line) - len(line.lstrip()) == indent + 4:
            current = match.group(1)
            found[current] = [match.group(2)]
        elif current is not None and stripped:
            found[current].append(stripped)
    return {name: _plain(" ".join(parts)) for name, parts in found.items()}


# ------------------------------------------------------------------------- parsers
def tool_parser(prog: str, description: str, config: bool = True) -> ArgumentParser:
    """A tool's parser with the options every tool shares.

    ``--config`` (YAML of the tool's option names) and ``--print_config`` when
    ``config``; ``--quiet`` / ``--verbose`` (how much the tool prints) and ``--no-progress``.
    Options are spelt in full: an abbreviation (``--step`` for ``--steps``) is refused, as
    :func:`given_options` could not tell that it was given.
    """
    parser = ArgumentParser(
        prog=prog, description=description, exit_on_error=False, allow_abbrev=False
    )
    if config:
        parser.add_argument(
            "--config",
            action=jsonargparse.ActionConfigFile,  # type: ignore[attr-defined]
            help="a YAML file of options (keys: the option names with underscores)",
        )
    parser.add_argument(
        "--quiet", action="store_true", help="print errors and the final result only"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print third-party libraries' messages and warnings",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars or progress lines"
    )
    return parser


def add_region_options(parser: ArgumentParser, optional: bool = False) -> None:
    """The positional ``region`` and the tile selection options, for every command."""
    parser.add_argument(
        "region",
        type=str | None if optional else str,
        nargs="?" if optional else None,
        help="region directory (naip/, nlcd/, ...) or a Chesapeake CVPR release"
        + (" (default: the generated sample city)" if optional else ""),
    )
    for name, text in (
        ("states", "Chesapeake release: states to use, comma-separated (e.g. wv,md)"),
        ("splits", "Chesapeake release: splits to use (train,val,test or wv-test)"),
        ("tiles", "tiles to use, comma-separated: imagery stems, or Chesapeake tile ids"),
    ):
        parser.add_argument(f"--{name}", type=str | None, default=None, help=text)


def _field_types(cls: type, names: Iterable[str]) -> dict[str, Any]:
    """The resolved annotation of each named field (in the dataclass's module)."""
    namespace = vars(sys.modules[cls.__module__])
    found = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in names:
            hint = f.type
            found[f.name] = eval(hint, namespace) if isinstance(hint, str) else hint
    return found


def _is_sequence(hint: Any) -> bool:
    """Whether ``hint`` is a tuple/list type (possibly ``| None``), nothing else."""
    args = [a for a in get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    return bool(args) and all(get_origin(a) in (tuple, list) for a in args)


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType)


def _choices(hint: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` (possibly ``| None``, or the items of a tuple of one)."""
    if get_origin(hint) is Literal:
        return get_args(hint)
    return tuple(c for a in get_args(hint) for c in _choices(a))


def add_dataclass_options(
    parser: ArgumentParser,
    cls: type,
    skip: Iterable[str] = (),
    required: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    notes: dict[str, str] | None = None,
) -> list[str]:
    """Add one option per field of the dataclass ``cls``; returns the fields' names.

    Args:
        parser: from :func:`tool_parser`.
        cls: a dataclass whose docstring documents its fields under ``Attributes:``.
        skip: fields without an option.
        required: fields that must be given (their default is not used).
        defaults: option defaults that differ from the fields' own.
        notes: field -> a sentence appended to its help (e.g. another default elsewhere).
    """
    skipped, needed, defaults = set(skip), set(required), defaults or {}
    notes = notes or {}
    fields = [f for f in dataclasses.fields(cls) if f.name not in skipped]  # type: ignore[arg-type]
    helps = field_help(cls)
    hints = _field_types(cls, {f.name for f in fields})
    for f in fields:
        hint = hints[f.name]
        text = " ".join(t for t in (helps.get(f.name, ""), notes.get(f.name, "")) if t)
        text = text.replace("%", "%%")
        flags = [f"--{f.name.replace('_', '-')}"]  # --patch_size works too (_normalize)
        if hint is bool:
            parser.add_argument(*flags, action="store_true", help=text, dest=f.name)
            continue
        default = defaults.get(f.name, f.default)
        if default is dataclasses.MISSING or f.name in needed:
            parser.add_argument(*flags, type=hint, required=True, help=text, dest=f.name)
        else:
            parser.add_argument(*flags, type=hint, default=default, help=text, dest=f.name)
    return [f.name for f in fields]


# ------------------------------------------------------------------------- parsing
def _option_dests(parser: ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", None)}


def _nearest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _normalize(parser: ArgumentParser, argv: list[str]) -> list[str]:
    """The command line as the parser reads it.

    ``--patch_size`` (a config key's spelling) -> ``--patch-size``; ``--aux osm,buildings``
    -> ``--aux [osm, buildings]``; ``--aux none`` -> ``--aux []``; ``none`` of any other
    option that takes None -> ``null``.
    """
    known = {s for a in parser._actions for s in a.option_strings}
    sequence = {
        s
        for a in parser._actions
        if _is_sequence(getattr(a, "_typehint", None))
        for s in a.option_strings
    }
    optional = {
        s
        for a in parser._actions
        if type(None) in get_args(getattr(a, "_typehint", None))
        for s in a.option_strings
    }
    out = list(argv)
    for i, arg in enumerate(out):
        flag, eq, value = arg.partition("=")
        dashed = "--" + flag[2:].replace("_", "-")
        if flag.startswith("--") and flag not in known and dashed in known:
            flag = dashed
            out[i] = flag + eq + value
        convert = _as_list if flag in sequence else _as_null if flag in optional else None
        if convert is not None:
            if eq:
                out[i] = f"{flag}={convert(value)}"
            elif i + 1 < len(out):
                out[i + 1] = convert(out[i + 1])
    return out


def _as_null(value: str) -> str:
    return "null" if value.strip().lower() == "none" else value


def _as_list(value: str) -> str:
    if value.strip().startswith("["):
        return value
    if value.strip().lower() in ("", "none"):
        return "[]"
    return "[" + ", ".join(v.strip() for v in value.split(",") if v.strip()) + "]"


def read_config(path: str | os.PathLike[str], known: Iterable[str]) -> dict[str, Any]:
    """A YAML config file of options, checked: it exists, is a mapping, has only ``known`` keys.

    The one reader of option files: ``--config`` of every tool and
    :meth:`~torchgeo_lsr.mapping.MapConfig.from_yaml`.

    Raises:
        OptionError: naming the file, and for a misspelled key the nearest known one.
    """
    import yaml

    if not os.path.isfile(path):
        raise OptionError(f"--config {path}: no such file")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise OptionError(f"--config {path}: not YAML ({err.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise OptionError(f"--config {path}: expected a mapping of options")
    names = list(known)
    for key in data:
        if key not in names:
            raise OptionError(f"--config {path}: unknown key {key!r}{_nearest(str(key), names)}")
    return data


def given_options(parser: ArgumentParser, argv: Sequence[str] | None = None) -> set[str]:
    """The options ``argv`` sets: flags on the command line and keys of its ``--config`` files.

    What a tool needs to tell a value the user chose from a default (``map`` fills only
    the others from its accelerator's budget). Call after :func:`parse_options` (the
    config files are checked there).

    Example:
        >>> p = tool_parser("demo", "A demo.")
        >>> _ = p.add_argument("--patch-size", type=int, default=96, dest="patch_size")
        >>> sorted(given_options(p, ["--patch_size", "96", "--quiet"]))
        ['patch_size', 'quiet']
    """
    args = _normalize(parser, list(sys.argv[1:] if argv is None else argv))
    flags = {s: a.dest for a in parser._actions for s in a.option_strings}
    known = [d for d in _option_dests(parser) if d not in ("config", "print_config")]
    given: set[str] = set()
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag == "--config":
            given |= set(read_config(value if eq else args[i + 1], known))
        elif flag in flags:
            given.add(flags[flag])
    return given


def _check_config(parser: ArgumentParser, argv: list[str]) -> None:
    """Each ``--config`` file of ``argv`` passes :func:`read_config` with the parser's keys."""
    known = [d for d in _option_dests(parser) if d not in ("config", "print_config")]
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag == "--config":
            read_config(value if eq else (argv[i + 1] if i + 1 < len(argv) else ""), known)


def _one_line(parser: ArgumentParser, err: Exception) -> str:
    """The parser's error as one line that names the option and what it expects."""
    text = str(err)
    actions = _option_dests(parser)
    flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    unknown = re.search(r"unrecognized arguments: (\S+)", text, re.IGNORECASE)
    if unknown:
        arg = unknown.group(1).split("=")[0]
        return f"unknown option {arg}{_nearest(arg, flags)}; see --help"
    key = re.search(r'(?:Parser key|key) "([\w.]+)"', text)
    if key and key.group(1) in actions:
        action = actions[key.group(1)]
        name = (action.option_strings or [key.group(1)])[0]
        hint = getattr(action, "_typehint", None)
        got = re.search(r"(?:Got value|Given value): (.*)", text)
        value = f", got {got.group(1).strip()!r}" if got else ""
        choices = _choices(hint)
        kinds = [a for a in (get_args(hint) if _is_union(hint) else (hint,)) if a is not type(None)]
        if choices and all(get_origin(a) is Literal or _is_sequence(a) for a in kinds):
            shown = ", ".join(str(c) for c in choices)
            return f"{name}: expected one of {shown}{value}"
        return f"{name}: expected {_type_name(hint)}{value}"
    missing = re.search(r"required: (.*)", text) or re.search(r'Key "([\w.]+)" is required', text)
    if missing:
        names = [n.strip() for n in missing.group(1).split(",")]
        spelled = [
            (actions[n].option_strings or [n.upper()])[0] if n in actions else n for n in names
        ]
        return f"missing {', '.join(spelled)}; see --help"
    return " ".join(text.split())


def _type_name(hint: Any) -> str:
    """``int``, ``float | None``, ``tuple[...]``: how a type reads in an error."""
    if _is_union(hint):
        return " or ".join(_type_name(a) for a in get_args(hint))
    if get_origin(hint) is Literal:
        return " or ".join(repr(a) for a in get_args(hint))
    if isinstance(hint, type) and not get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    return str(hint).replace("typing.", "")


def parse_options(parser: ArgumentParser, argv: Sequence[str] | None = None) -> Namespace:
    """Parse ``argv`` (None: ``sys.argv[1:]``); bad input raises :class:`OptionError`.

    ``--quiet`` / ``--verbose`` set :func:`torchgeo_lsr.progress.set_verbosity`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _check_config(parser, args)
    try:
        parsed = parser.parse_args(_normalize(parser, args))
    except argparse.ArgumentError as err:
        raise OptionError(_one_line(parser, err)) from None
    if "quiet" in parsed and "verbose" in parsed:
        if parsed.quiet and parsed.verbose:
            raise OptionError("--quiet and --verbose: choose one")
        from . import progress

        level = progress.QUIET if parsed.quiet else progress.VERBOSE if parsed.verbose else None
        progress.set_verbosity(progress.NORMAL if level is None else level)
    return parsed


def run_tool(prog: str, body: Callable[[], int]) -> int:
    """Run a tool's ``body`` and turn its errors into one line and an exit code.

    Bad input (:class:`OptionError`, ``ValueError``, ``FileNotFoundError``): 2; a write
    that failed (``OSError``: full disk, I/O error): 1; an interrupted run
    (:class:`~torchgeo_lsr.interrupt.Interrupted`): its exit code (130 / 143), saying
    that rerunning the command resumes.
    """
    try:
        return body()
    except (ValueError, FileNotFoundError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1
    except BaseException as stop:
        # Interrupted comes from a module that imports Lightning: look for it only if it
        # was loaded (otherwise nothing can have raised it), so --help stays light
        interrupt = sys.modules.get(f"{__package__}.interrupt")
        if interrupt is None or not isinstance(stop, interrupt.Interrupted):
            raise
        print(f"{prog}: {stop}; rerun the same command to resume", file=sys.stderr)
        code: int = stop.exit_code
        return code


def version_line() -> str:
    """``torchgeo-lsr X (torchgeo Y)``, read from the installed metadata (no import)."""
    from importlib.metadata import version

    from . import __version__

    return f"torchgeo-lsr {__version__} (torchgeo {version('torchgeo')})"


def as_path(value: str | os.PathLike[str] | None) -> Path | None:
    """An option's path value (None stays None)."""
    return None if value is None else Path(value)
