"""Lazy package exports: a package's public names, imported when first used.

A package ``__init__`` lists its public names as ``from .module import Name`` under
``if TYPE_CHECKING:`` (what type checkers, IDEs and readers see) and its ``__all__``, and
ends with ``__getattr__, __dir__ = lazy_exports(__name__, __file__)``: a name is imported
from its module when it is first asked for (PEP 562). Importing a light submodule (a
config dataclass the command line builds its options from) then costs that submodule
only, not torch and the geo stack that the package's other modules load; ``--help``
answers at once. The ``TYPE_CHECKING`` block is the one list: the mapping is read from it.

.. versionadded:: 0.2
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "type_checking_exports"]


def type_checking_exports(path: str | Path) -> dict[str, str]:
    """Name -> relative module of each ``from .module import Name`` under ``TYPE_CHECKING``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"):
            continue
        for child in node.body:
            if isinstance(child, ast.ImportFrom) and child.level == 1 and child.module:
                for alias in child.names:
                    found[alias.asname or alias.name] = f".{child.module}"
    return found


def lazy_exports(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose exports are listed under TYPE_CHECKING.

    Args:
        package: the package's ``__name__``.
        init_file: its ``__init__.py`` (``__file__``).

    Returns:
        The module-level ``__getattr__`` (imports a listed name's module on first use and
        caches the name in the package) and ``__dir__``.
    """
    exports = type_checking_exports(init_file)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
