"""``environment.yml`` has the packages and version ranges of ``setup.cfg``.

Its header says so; this test holds it to that. Both files are parsed (``setup.cfg`` with
:mod:`configparser`, ``environment.yml`` with YAML) and every requirement becomes a
canonical name and a :class:`~packaging.specifiers.SpecifierSet`, so ``>=2.4`` equals
``>=2.4.0`` and the order of the clauses does not matter. Compared:
``install_requires`` plus every extra that ``environment.yml`` claims to cover (its
``# <name> extra`` comments). conda-forge spells two things differently, and the test
knows both: ``pytorch`` is PyPI's ``torch``, and an extra of a dependency
(``jsonargparse[signatures]``), which conda cannot name, is listed as the packages that
extra brings (read from the installed package's metadata).
"""

from __future__ import annotations

import configparser
import importlib.metadata
import re
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
SETUP_CFG = ROOT / "setup.cfg"
ENVIRONMENT = ROOT / "environment.yml"

#: conda-forge package name -> PyPI project name, where they differ.
CONDA_TO_PYPI = {"pytorch": "torch"}
#: environment.yml entries that are not requirements of the package.
NOT_REQUIREMENTS = {"pip"}

#: A requirement: canonical name -> its range; None for a package that only an extra of
#: another requirement brings (its range is that package's business, see
#: :func:`test_extra_packages_are_installable_at_their_range`).
Spec = dict[str, SpecifierSet | None]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and line[0] != "#"]


def setup_cfg_requirements(text: str, extras: list[str]) -> tuple[Spec, SpecifierSet]:
    """``install_requires`` and the named extras of a ``setup.cfg``, and ``python_requires``.

    A requirement's extras (``jsonargparse[signatures]``) add the packages they bring,
    with no range. A package named twice (in two extras) gets both ranges.
    """
    config = configparser.ConfigParser()
    config.read_string(text)
    lines = _lines(config["options"]["install_requires"])
    declared = config["options.extras_require"]
    for extra in extras:
        if extra not in declared:
            raise KeyError(f"setup.cfg has no extra {extra!r} (extras: {sorted(declared)})")
        lines += _lines(declared[extra])
    found: Spec = {}
    for line in lines:
        requirement = Requirement(line)
        _add(found, canonicalize_name(requirement.name), requirement.specifier)
        for extra in sorted(requirement.extras):
            for name in extra_packages(requirement.name, extra):
                found.setdefault(name, None)
    return found, SpecifierSet(config["options"]["python_requires"])


def _add(found: Spec, name: str, spec: SpecifierSet) -> None:
    before = found.get(name)
    found[name] = spec if before is None else before & spec


def extra_packages(project: str, extra: str) -> set[str]:
    """The packages ``project[extra]`` brings on this Python, from its installed metadata.

    Nested extras of the project itself (``jsonargparse[typing-extensions]``) are followed.
    """
    names: set[str] = set()
    pending, seen = [extra], set()
    while pending:
        current = pending.pop()
        seen.add(current)
        for line in importlib.metadata.requires(project) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or not marker.evaluate({**default_environment(), "extra": current}):
                continue
            if canonicalize_name(requirement.name) == canonicalize_name(project):
                pending += [e for e in requirement.extras if e not in seen]
            else:
                names.add(canonicalize_name(requirement.name))
    return names


def environment_requirements(text: str) -> tuple[Spec, list[str], SpecifierSet]:
    """The conda dependencies of an ``environment.yml``, the extras it claims, its Python.

    Raises:
        ValueError: on an entry that is not ``name`` followed by a pip-style range.
    """
    claimed = re.findall(r"^\s*#\s*([\w-]+) extra\b", text, flags=re.MULTILINE)
    found: Spec = {}
    python = SpecifierSet()
    for entry in yaml.safe_load(text)["dependencies"]:
        if not isinstance(entry, str):
            continue  # the pip section: the package itself
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry.strip())
        if match is None:
            raise ValueError(f"environment.yml: cannot read {entry!r}")
        name, spec = match[1].lower(), match[2].replace(" ", "")
        try:
            specifier = SpecifierSet(spec)
        except ValueError:
            raise ValueError(f"environment.yml: {entry!r} is not a pip-style range") from None
        if name == "python":
            python = specifier
        elif name not in NOT_REQUIREMENTS:
            _add(found, canonicalize_name(CONDA_TO_PYPI.get(name, name)), specifier)
    return found, claimed, python


def compare(expected: Spec, found: Spec) -> list[str]:
    """What differs between ``setup.cfg``'s requirements and ``environment.yml``'s, one line each.

    A package with range None (brought by an extra) need only be present.
    """
    problems = [f"{name}: missing from environment.yml" for name in expected.keys() - found]
    problems += [f"{name}: in environment.yml, not setup.cfg" for name in found.keys() - expected]
    for name in sorted(expected.keys() & found.keys()):
        want, have = expected[name], found[name]
        if want is not None and want != have:
            problems.append(f"{name}: setup.cfg says {str(want)!r}, environment.yml {str(have)!r}")
    return sorted(problems)


def _read() -> tuple[Spec, Spec, list[str], SpecifierSet, SpecifierSet]:
    found, claimed, python = environment_requirements(ENVIRONMENT.read_text())
    expected, python_requires = setup_cfg_requirements(SETUP_CFG.read_text(), claimed)
    return expected, found, claimed, python, python_requires


def test_environment_matches_setup_cfg() -> None:
    expected, found, _, _, _ = _read()
    assert compare(expected, found) == []


def test_environment_claims_the_extras_it_needs() -> None:
    _, _, claimed, _, _ = _read()
    assert {"test", "notebooks", "docs"} <= set(claimed), claimed


def test_environment_python_is_a_supported_line() -> None:
    """Every Python line of the classifiers is allowed by both files; older ones by neither."""
    _, _, _, python, python_requires = _read()
    config = configparser.ConfigParser()
    config.read_string(SETUP_CFG.read_text())
    lines = re.findall(r"Python :: (3\.\d+)$", config["metadata"]["classifiers"], re.MULTILINE)
    assert lines
    for line in lines:
        assert python.contains(line), line
        assert python_requires.contains(line), line
    oldest = min(Version(v) for v in lines)
    older = f"{oldest.major}.{oldest.minor - 1}"
    assert not python.contains(older)
    assert not python_requires.contains(older)


def test_extra_packages_are_installable_at_their_range() -> None:
    """A package an extra brings has, in environment.yml, a range its installed version meets."""
    expected, found, _, _, _ = _read()
    brought = [name for name, spec in expected.items() if spec is None]
    assert brought  # jsonargparse[signatures]
    for name in brought:
        spec = found[name]
        assert spec is not None
        assert spec.contains(importlib.metadata.version(name), prereleases=True), (name, spec)


# ------------------------------------------------- the comparison, on wrong inputs
SETUP = """
[options]
python_requires = >=3.11
install_requires =
    torch>=2.2
    lightning>=2.4,!=2.5.0,<3
    jsonargparse[signatures]>=4.28
    numpy>=1.24
[options.extras_require]
test =
    pytest>=8
    types-PyYAML
"""

ENVIRONMENT_OK = """
dependencies:
  - python>=3.11,<3.13
  - pip
  - pytorch>=2.2.0
  - lightning<3,!=2.5.0,>=2.4
  - jsonargparse>=4.28
  - docstring_parser>=0.17
  - typeshed_client
  - numpy >=1.24
  # test extra
  - pytest>=8
  - types-pyyaml
  - pip:
      - -e .
"""


def _compare(environment: str) -> list[str]:
    found, claimed, _ = environment_requirements(environment)
    expected, _ = setup_cfg_requirements(SETUP, claimed)
    return compare(expected, found)


def test_compare_accepts_the_same_ranges_spelled_otherwise() -> None:
    assert _compare(ENVIRONMENT_OK) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("lightning<3,!=2.5.0,>=2.4", "lightning>=2.4,<3"), "lightning: setup.cfg says"),
        (("pytorch>=2.2.0", "pytorch>=2.3"), "torch: setup.cfg says"),
        (("numpy >=1.24", "numpy"), "numpy: setup.cfg says"),
        (("  - numpy >=1.24\n", ""), "numpy: missing from environment.yml"),
        (("  - pytest>=8\n", "  - pytest>=8\n  - pandas\n"), "pandas: in environment.yml, not"),
        (("  - typeshed_client\n", ""), "typeshed-client: missing from environment.yml"),
        (("# test extra", "# tests"), "pytest: in environment.yml, not setup.cfg"),
    ],
)
def test_compare_reports_a_mismatch(change: tuple[str, str], problem: str) -> None:
    old, new = change
    assert old in ENVIRONMENT_OK
    problems = _compare(ENVIRONMENT_OK.replace(old, new))
    assert any(p.startswith(problem) for p in problems), problems


def test_a_conda_only_spelling_is_refused() -> None:
    with pytest.raises(ValueError, match="not a pip-style range"):
        environment_requirements("dependencies:\n  - numpy 1.24.*\n")


def test_an_unknown_extra_is_refused() -> None:
    with pytest.raises(KeyError, match="no extra 'docs'"):
        setup_cfg_requirements(SETUP, ["docs"])
