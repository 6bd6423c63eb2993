"""What the README, docs/ and configs/ point a reader at exists.

Read as text, no Sphinx needed (``make docs`` checks the cross-references of the API
pages): every repository path they name (``configs/...yaml``, ``benchmarks/...``, ...),
every option they pass to a ``torchgeo-lsr`` tool or to ``torchgeo-lsr fit``'s data module
and task, every ``make`` target; and every module of the package has an API page.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "notebooks" / "README.md",
    *sorted((ROOT / "benchmarks").glob("*.md")),
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts),
    *sorted((ROOT / "configs").rglob("*.yaml")),
]
#: Folders a run writes (ignored by git), named by the docs as where outputs go.
GENERATED = ("notebooks/executed", "demo_out", "docs/_build")

#: A path inside the repository: a top-level folder, then path characters; an optional
#: ``../`` prefix makes it relative to the document's own folder.
PATH = re.compile(
    r"(?<![\w./-])((?:\.\./)*)((?:configs|benchmarks|docs|tests|notebooks|torchgeo_lsr|\.ci)"
    r"/[\w./*{},-]*[\w*}])"
)


def _expand(path: str) -> list[str]:
    """Shell brace expansion of ``a{1,2}b`` (one level per brace, any number of braces)."""
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _exists(document: Path, up: str, path: str) -> bool:
    base = document.parent if up else ROOT
    for each in _expand(up + path.rstrip(".")):
        if not any(base.glob(each)) and not (base / f"{each}.md").exists():
            return False
    return True


def _paths() -> list[tuple[str, str, str]]:
    found = []
    for document in DOCS:
        for match in PATH.finditer(document.read_text()):
            up, path = match[1], match[2]
            if not up and path.startswith(GENERATED):
                continue
            found.append((str(document.relative_to(ROOT)), up, path))
    return found


@pytest.mark.parametrize(("document", "up", "path"), _paths())
def test_named_path_exists(document: str, up: str, path: str) -> None:
    assert _exists(ROOT / document, up, path), f"{document} names {up}{path}, which does not exist"


def test_the_path_check_sees_a_missing_file() -> None:
    assert _exists(ROOT / "README.md", "", "configs/paper/landcover.yaml")
    assert _exists(
        ROOT / "README.md", "", "benchmarks/results/sample_city_ablation_warmup{1,4}.json"
    )
    assert not _exists(ROOT / "README.md", "", "configs/paper/landcover_qr.yaml")
    assert not _exists(ROOT / "README.md", "", "benchmarks/results/sample_city_{quick,nope}.json")


# ------------------------------------------------------------------- command options
COMMAND = re.compile(r"torchgeo-lsr (map|prior|evaluate|sample-city|fit)\b((?:[^`\n]|\\\n)*)")


def _commands() -> list[tuple[str, str, str]]:
    found = []
    for document in DOCS:
        for match in COMMAND.finditer(document.read_text()):
            for option in re.findall(r"(?<![\w-])(--[a-z][\w.-]*)", match[2]):
                found.append((str(document.relative_to(ROOT)), match[1], option))
    return sorted(set(found))


@functools.cache
def _tool_options(tool: str) -> frozenset[str]:
    """The options of a ``torchgeo-lsr`` tool, from its ``--help``."""
    from torchgeo_lsr.cli import TOOLS

    module, _, function = TOOLS[tool][0].partition(":")
    main = getattr(importlib.import_module(module), function)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", out.getvalue()))


@functools.cache
def _fit_options() -> frozenset[str]:
    """``--config``, ``--print_config`` and the ``--data.`` / ``--model.`` keys of our classes."""
    from torchgeo_lsr.datamodules import LearnedPriorDataModule, LSRDataModule
    from torchgeo_lsr.trainers import LabelSuperResolutionTask, LearnedPriorTask

    options = {"--help", "--config", "--print_config", "--ckpt_path"}
    for prefix, classes in (
        ("data", (LSRDataModule, LearnedPriorDataModule)),
        ("model", (LabelSuperResolutionTask, LearnedPriorTask)),
    ):
        for cls in classes:
            options |= {f"--{prefix}.{name}" for name in inspect.signature(cls).parameters}
    return frozenset(options)


@pytest.mark.parametrize(("document", "tool", "option"), _commands())
def test_command_option_exists(document: str, tool: str, option: str) -> None:
    if tool == "fit":
        if option.startswith("--trainer."):
            return  # Lightning's Trainer: its own business
        known = _fit_options()
    else:
        known = _tool_options(tool)
    assert option in known, f"{document}: torchgeo-lsr {tool} has no option {option}"


def test_the_option_check_sees_a_wrong_option() -> None:
    assert "--cooccurrence" in _tool_options("prior")
    assert "--no-such-option" not in _tool_options("map")
    assert "--data.images" in _fit_options()
    assert "--data.imagery" not in _fit_options()


# ---------------------------------------------------------------------- make targets
def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    named = {
        (str(d.relative_to(ROOT)), t)
        for d in DOCS
        for t in re.findall(r"(?<![\w-])make ([a-z][\w-]*)", d.read_text())
    }
    assert named
    assert sorted((d, t) for d, t in named if t not in targets) == []


# ------------------------------------------------------------------------- API pages
def test_every_module_has_an_api_page() -> None:
    package = ROOT / "torchgeo_lsr"
    modules = set()
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.add(".".join(parts))
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.rst"):
        documented |= set(re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), re.M))
    assert sorted(modules - documented) == []
    assert sorted(documented - modules) == []
