"""The package's layers, read from its source: no import circle, and who may import what.

Every ``import`` statement of every module is read with :mod:`ast`, function-local ones
included (a function-local import that closes a circle is a circle held apart only by
when it runs); imports under ``if TYPE_CHECKING:`` never run and are left out. The rules
are those of ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "torchgeo_lsr"
NAME = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> dict[str, int]:
    """The modules (of any package) ``module`` imports, each with a line that does."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    found: dict[str, int] = {}
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, node.lineno)
            continue
        target = _resolve(module, path.name == "__init__.py", node)
        found.setdefault(target, node.lineno)
        for alias in node.names:  # ``from . import x`` where x is a module
            if f"{target}.{alias.name}" in MODULES:
                found.setdefault(f"{target}.{alias.name}", node.lineno)
    return found


def internal_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    return {m: {t for t in imports_of(m) if t in MODULES and t != m} for m in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_a_circle() -> None:
    """The circle finder on a made-up graph (so an empty answer below means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_reader_sees_function_local_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .hidden import X\n"
        "def f():\n    from ..priors import builder\n    import rasterio\n"
    )
    tree = ast.parse(source)
    names = [
        (n.module if isinstance(n, ast.ImportFrom) else n.names[0].name) for n in _imports(tree)
    ]
    assert names == ["typing", "priors", "rasterio"]


def test_no_import_circle() -> None:
    found = circles(internal_graph())
    assert found == [], "import circles (function-local imports included): " + "; ".join(
        " <-> ".join(c) for c in found
    )


#: Layer rules: a module under the key may not import anything under the values (the
#: package's own rooms by prefix, third-party packages by top-level name).
FORBIDDEN = {
    f"{NAME}.losses": ["rasterio", "torchgeo", "geopandas", "shapely", f"{NAME}.datasets"],
    f"{NAME}.checks": ["rasterio", "torchgeo", f"{NAME}."],
    # the tools' option parsing answers --help before any heavy import (test_options.py)
    f"{NAME}.options": ["torch", "lightning", "torchgeo", "rasterio", f"{NAME}.datasets"],
    f"{NAME}._lazy": [f"{NAME}."],
    # floor 1, and used by the datasets and priors: Lightning only inside its functions
    f"{NAME}.progress": ["rasterio", "torchgeo", f"{NAME}."],
    f"{NAME}.adapters": [
        "rasterio",
        "torchgeo",
        "geopandas",
        "shapely",
        "pyproj",
        "osmnx",
        f"{NAME}.datasets",
        f"{NAME}.priors",
        f"{NAME}.region",
        f"{NAME}.mapping",
        f"{NAME}.samplers",
        f"{NAME}.formats",
    ],
    f"{NAME}.datasets": [
        f"{NAME}.trainers",
        f"{NAME}.datamodules",
        f"{NAME}.mapping",
        f"{NAME}.cli",
        f"{NAME}.priors",
        f"{NAME}.region",
        "lightning",
    ],
    f"{NAME}.samplers": [
        f"{NAME}.trainers",
        f"{NAME}.datamodules",
        f"{NAME}.mapping",
        f"{NAME}.cli",
        "lightning",
    ],
    f"{NAME}.priors": [f"{NAME}.mapping", f"{NAME}.datamodules", f"{NAME}.cli"],
    f"{NAME}.formats": [f"{NAME}.datasets", f"{NAME}.priors", f"{NAME}.region"],
    f"{NAME}.region": [f"{NAME}.priors", f"{NAME}.mapping", f"{NAME}.trainers"],
    f"{NAME}.trainers": [
        f"{NAME}.datasets",
        f"{NAME}.priors",
        f"{NAME}.mapping",
        f"{NAME}.region",
        "rasterio",
    ],
    f"{NAME}.sample_city": [f"{NAME}.priors", f"{NAME}.mapping", f"{NAME}.trainers", "lightning"],
}


def _under(name: str, prefix: str) -> bool:
    return (
        name == prefix.rstrip(".")
        or name.startswith(prefix if prefix.endswith(".") else prefix + ".")
        or (not prefix.startswith(NAME) and name.split(".")[0] == prefix)
    )


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_layer_rules(room: str) -> None:
    broken = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {target}"
        for m in MODULES
        if _under(m, room)
        for target, line in imports_of(m).items()
        for banned in FORBIDDEN[room]
        if _under(target, banned) and not _under(target, room)
    ]
    assert broken == []


#: Inside ``datasets``: ``grid`` <- ``warping`` <- ``base`` <- the sources. Of the
#: package's modules, each of these three may import only those listed.
DATASETS_FLOORS = {
    f"{NAME}.datasets.grid": set(),
    f"{NAME}.datasets.warping": {f"{NAME}.datasets.grid"},
    # and the line shim (GeoSlice sample keys) and, inside plot(), the figures
    f"{NAME}.datasets.base": {
        f"{NAME}.datasets.grid",
        f"{NAME}.datasets.warping",
        f"{NAME}._compat",
        f"{NAME}.plot",
    },
}


@pytest.mark.parametrize("module", sorted(DATASETS_FLOORS))
def test_datasets_floors(module: str) -> None:
    internal = {t for t in imports_of(module) if t in MODULES and t != module}
    assert internal <= DATASETS_FLOORS[module]
