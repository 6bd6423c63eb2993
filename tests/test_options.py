"""The tools' command lines: generated options, typed values, one-line errors, light start-up."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
import yaml

from torchgeo_lsr._lazy import type_checking_exports
from torchgeo_lsr.cli import main
from torchgeo_lsr.mapping.config import EvaluateConfig, MapConfig
from torchgeo_lsr.options import (
    OptionError,
    add_dataclass_options,
    field_help,
    parse_options,
    tool_parser,
)
from torchgeo_lsr.priors.config import PriorConfig
from torchgeo_lsr.sample_city.cli import SampleCityConfig


@dataclass(frozen=True)
class Toy:
    """A toy.

    Some prose that is not an attribute: ignored.

    Attributes:
        mode: how it runs: ``fast`` or
            ``slow`` (see :func:`~torchgeo_lsr.priors.blur.blur_probs`).
        size_px: side in pixels.
        tags: labels, 100% optional.
        flag: a switch.

    Returns:
        Not an attribute either.
    """

    mode: Literal["fast", "slow"] = "fast"
    size_px: int = 8
    tags: tuple[Literal["a", "b"], ...] | None = None
    flag: bool = False


def _toy_parser():  # type: ignore[no-untyped-def]
    parser = tool_parser("toy", "A toy tool.")
    names = add_dataclass_options(parser, Toy)
    return parser, names


def test_field_help_reads_the_attributes_section() -> None:
    assert field_help(Toy) == {
        "mode": "how it runs: fast or slow (see blur_probs).",
        "size_px": "side in pixels.",
        "tags": "labels, 100% optional.",
        "flag": "a switch.",
    }


def test_options_are_typed_and_spelled_both_ways() -> None:
    parser, names = _toy_parser()
    assert names == ["mode", "size_px", "tags", "flag"]
    args = parse_options(parser, ["--size-px", "3", "--mode", "slow", "--flag"])
    assert (args.size_px, args.mode, args.flag, args.tags) == (3, "slow", True, None)
    assert parse_options(parser, ["--size_px=5"]).size_px == 5
    assert parse_options(parser, ["--tags", "a,b"]).tags == ("a", "b")
    assert parse_options(parser, ["--tags", "[b]"]).tags == ("b",)
    assert parse_options(parser, ["--tags=none"]).tags == ()
    defaults = parse_options(parser, [])
    assert {n: defaults[n] for n in names} == dataclasses.asdict(Toy())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mode", "medium"], "--mode: expected one of fast, slow, got 'medium'"),
        (["--size-px", "big"], "--size-px: expected int, got 'big'"),
        (["--tags", "a,c"], "--tags: expected one of a, b, got 'c'"),
        (["--sise-px", "3"], "unknown option --sise-px (did you mean --size-px?); see --help"),
        (["--zzz"], "unknown option --zzz; see --help"),
        # no abbreviations: argparse would take --size for --size-px, unseen by given_options
        (["--size", "3"], "unknown option --size (did you mean --size-px?); see --help"),
    ],
)
def test_bad_options_are_one_line(argv: list[str], message: str) -> None:
    parser, _ = _toy_parser()
    with pytest.raises(OptionError) as err:
        parse_options(parser, argv)
    assert str(err.value) == message


def test_config_file_keys_and_nearest_key(tmp_path: Path) -> None:
    parser, _ = _toy_parser()
    good = tmp_path / "good.yaml"
    good.write_text("size_px: 12\nmode: slow\ntags: [a]\n")
    args = parse_options(parser, ["--config", str(good), "--mode", "fast"])
    assert (args.size_px, args.mode, args.tags) == (12, "fast", ("a",))  # the command line wins
    typo = tmp_path / "typo.yaml"
    typo.write_text("size_pxx: 12\n")
    with pytest.raises(OptionError, match=r"^--config .*typo.yaml: unknown key 'size_pxx' "):
        parse_options(parser, ["--config", str(typo)])
    with pytest.raises(OptionError, match=r"did you mean size_px\?"):
        parse_options(parser, ["--config", str(typo)])
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(OptionError, match="expected a mapping of options"):
        parse_options(parser, [f"--config={tmp_path / 'list.yaml'}"])
    with pytest.raises(OptionError, match=r"nope\.yaml: no such file"):
        parse_options(parser, ["--config", str(tmp_path / "nope.yaml")])


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrap the help's line breaks


@pytest.mark.parametrize(
    ("tool", "cls", "skip"),
    [
        ("map", MapConfig, set()),
        ("prior", PriorConfig, {"fusion"}),
        ("evaluate", EvaluateConfig, set()),
        ("sample-city", SampleCityConfig, set()),
    ],
)
def test_help_describes_every_option(
    tool: str, cls: type, skip: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help([tool], capsys)
    docs = field_help(cls)
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    module = importlib.import_module(cls.__module__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        assert flag in text, f"{tool} --help: no {flag}"
        assert docs.get(f.name), f"{cls.__name__}.{f.name} has no description"
        assert " ".join(docs[f.name].split()[:4]) in text, f"{flag}: description not shown"
        hint = eval(hints[f.name], vars(module)) if isinstance(hints[f.name], str) else f.type
        if get_origin(hint) is Literal:
            assert "{" + ",".join(map(str, get_args(hint))) + "}" in text, f"{flag}: choices"
    for flag in ("--config", "--print_config", "--quiet", "--verbose"):
        assert flag in text


def test_map_exposes_the_prior_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["map"], capsys)
    for flag in ("--aux", "--kernel-size", "--blur {exact,fft,fast}", "--prior-eps", "--sigma"):
        assert flag in text
    prior = {f.name for f in dataclasses.fields(PriorConfig)} - {
        "fusion",  # not an option of either command
        "dtype",  # map's priors are its own intermediate files
        "window",  # map's window is the prediction window
        "label_scheme",  # map reads the region's own
        "eps",  # prior_eps in map
    }
    assert prior <= {f.name for f in dataclasses.fields(MapConfig)}


def _print_config(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--print_config"])
    assert done.value.code == 0
    data: dict[str, object] = yaml.safe_load(capsys.readouterr().out)
    return data


def test_map_values_are_typed(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["map", "--out", "o"]
    assert _print_config([*base, "--devices", "2"], capsys)["devices"] == 2
    assert _print_config([*base, "--devices", "auto"], capsys)["devices"] == "auto"
    assert _print_config([*base, "--devices", "[0, 1]"], capsys)["devices"] == [0, 1]
    data = _print_config([*base, "--aux", "osm", "--kernel-size", "none"], capsys)
    assert (data["aux"], data["kernel_size"]) == (["osm"], None)
    # what --print_config writes is a config that reproduces the run
    defaults = {
        k: v for k, v in _print_config(base, capsys).items() if k in MapConfig.__annotations__
    }
    assert MapConfig(**defaults) == MapConfig()


def test_print_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["map", "--out", "o", "--steps", "7", "--loss", "rq", "--aux", "buildings"]
    printed = _print_config(argv, capsys)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(printed))
    assert _print_config(["map", "--config", str(config)], capsys) == printed


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["map", "--out", "o", "--loss", "qrr"], "torchgeo-lsr map: --loss: expected one of "),
        (["map", "--out", "o", "--patch-szie", "3"], "(did you mean --patch-size?)"),
        (["map"], "torchgeo-lsr map: missing --out; see --help"),
        (["prior"], "torchgeo-lsr prior: missing REGION, --out; see --help"),
        (["map", "--out", "o", "--steps", "x"], "torchgeo-lsr map: --steps: expected int"),
        (["map", "--out", "o", "--aux", "osm", "--prior", "nlcd"], "fused into prior='handmade'"),
        (["prior", "r", "--out", "o", "--blur", "slow"], "--blur: expected one of exact, fft"),
        (["sample-city", "c", "--tiles", "x"], "sample-city: --tiles: expected int, got 'x'"),
    ],
)
def test_tool_errors_are_one_line_and_exit_2(
    argv: list[str],
    line: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert line in captured.err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_map_config_typo_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "map.yaml"
    config.write_text("steps: 10\nbatchsize: 4\n")
    assert main(["map", "--out", str(tmp_path / "o"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"torchgeo-lsr map: --config {config}: unknown key 'batchsize' (did you mean batch_size?)\n"
    )


#: Modules whose import means the command paid for the heavy stack.
HEAVY = ("torch", "lightning", "torchgeo", "rasterio", "kornia", "geopandas")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["map", "--help"],
        ["prior", "--help"],
        ["evaluate", "--help"],
        ["sample-city", "--help"],
        ["map", "--out", "o", "--bogus"],
        ["prior", "r", "--out", "o", "--sigma", "x"],
        ["map", "--out", "o", "--print_config"],
    ],
)
def test_start_up_imports_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    """``--help``, ``--version`` and argument errors answer before torch is imported.

    A fact about imports, not a timing (``benchmarks/startup.py`` measures the time).
    """
    code = (
        "import sys\n"
        "from torchgeo_lsr.cli import main\n"
        f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "import json; print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{argv}: imported {result['heavy']}"
    assert result["rc"] in (0, 2, None)


@pytest.mark.parametrize(
    "package", ["torchgeo_lsr.priors", "torchgeo_lsr.mapping", "torchgeo_lsr.sample_city"]
)
def test_lazy_packages_export_what_they_list(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    listed = type_checking_exports(module.__file__)
    assert sorted(listed) == sorted(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        origin = importlib.import_module(listed[name], package)
        assert value is getattr(origin, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018
