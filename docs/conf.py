"""Sphinx configuration of the torchgeo-lsr site: the API and the user guide.

The API pages are autodoc + napoleon over the package's Google-style docstrings, as
TorchGeo's are; the user guide is Markdown (MyST), so ``architecture.md`` and the
benchmark write-ups are included as they are. ``make docs`` builds it with warnings as
errors and ``nitpicky`` on: every cross-reference must resolve.

References are checked offline (no intersphinx). A reference that Sphinx cannot find
among the documented objects is looked up by importing it (:func:`_resolve_by_import`,
from the module and class it is written in): one of ours re-exported or imported under
another name links to where it is documented; one of another package (torch, TorchGeo,
the standard library, ...) that exists is shown as plain text; anything else, a name that
does not exist, stays a warning and fails the build.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.napoleon.docstring import GoogleDocstring

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torchgeo_lsr  # noqa: E402

project = "torchgeo-lsr"
author = "torchgeo-lsr contributors"
copyright = "torchgeo-lsr contributors"
version = release = torchgeo_lsr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
nitpicky = True

# --------------------------------------------------------------------------- autodoc
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "class"  # __init__'s arguments are documented in the class docstring
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False


def _prose_attribute_docstring(self: GoogleDocstring) -> list[str]:
    """An attribute's docstring as prose, never ``type: description``.

    Napoleon reads the text before a first colon of an attribute's (``#:``) docstring as
    its type; ours are prose ("Layers of the release -> what they hold: ...") and the
    types come from the annotations.
    """
    lines: list[str] = self._dedent(self._consume_to_end())  # type: ignore[attr-defined]
    return type(self)(lines, self._config).lines()  # type: ignore[attr-defined]


GoogleDocstring._parse_attribute_docstring = _prose_attribute_docstring  # type: ignore[method-assign]

# ------------------------------------------------------------------------------ MyST
myst_heading_anchors = 3

# ------------------------------------------------------------------------------ HTML
html_theme = "furo"
html_title = f"torchgeo-lsr {release}"
html_static_path: list[str] = []


# ---------------------------------------------------------------- reference fallback
_MISSING = object()
_CONSTANTS = {"None", "True", "False", "Ellipsis", "NotImplemented"}
_PLAIN = (int, float, str, bytes, bool, tuple, frozenset)
_documented_ids: dict[int, str] = {}


def _locate(path: str) -> Any:
    """The object a dotted ``path`` names (a module, then attributes), or ``_MISSING``."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        except Exception:  # a module that fails to import names nothing here
            return _MISSING
        for attr in parts[i:]:
            obj = _attribute(obj, attr)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _attribute(obj: Any, name: str) -> Any:
    """``obj.name`` (without running properties); for a class also an annotated attribute."""
    try:
        return inspect.getattr_static(obj, name)
    except AttributeError:
        pass
    if inspect.isclass(obj):
        for klass in obj.__mro__:
            if name in vars(klass).get("__annotations__", {}) or name in _assigned(klass):
                return _Annotated(klass, name)
    return _MISSING


@functools.cache
def _assigned(klass: type) -> frozenset[str]:
    """The ``self.NAME = ...`` attributes the methods of ``klass`` assign."""
    try:
        tree = ast.parse(inspect.getsource(klass).strip())  # dedented enough to parse
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    return frozenset(
        target.attr
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign)
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
    )


class _Annotated:
    """An attribute a class only annotates (a dataclass field, an instance attribute)."""

    def __init__(self, owner: type, name: str) -> None:
        self.owner, self.name = owner, name


def _names(obj: Any, candidate: str) -> list[str]:
    """Where ``obj`` (found as ``candidate``) would be documented, best first."""
    head, _, attr = candidate.rpartition(".")
    if isinstance(obj, _Annotated):
        owner: Any = obj.owner
    elif inspect.ismodule(obj):
        return [obj.__name__]
    elif isinstance(getattr(obj, "__qualname__", None), str) and getattr(obj, "__module__", None):
        return [f"{obj.__module__}.{obj.__qualname__}", candidate]
    else:
        owner = _locate(head) if head else _MISSING
    names = []
    if inspect.isclass(owner):  # an attribute: named after the class that defines it
        for klass in owner.__mro__:
            if attr in vars(klass) or attr in vars(klass).get("__annotations__", {}):
                names.append(f"{klass.__module__}.{klass.__qualname__}.{attr}")
                break
        names.append(f"{owner.__module__}.{owner.__qualname__}.{attr}")
    if not isinstance(obj, _PLAIN) and id(obj) in _documented_ids:
        names.append(_documented_ids[id(obj)])  # a value of ours imported under a name
    return [*names, candidate]


@functools.cache
def _imports(module: str) -> dict[str, str]:
    """Every name ``module`` imports, anywhere in it (``TYPE_CHECKING`` blocks included)."""
    try:
        tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    except (OSError, TypeError, ImportError, SyntaxError):
        return {}
    is_package = hasattr(importlib.import_module(module), "__path__")
    package = module if is_package else module.rpartition(".")[0]
    names = {}
    for stmt in ast.walk(tree):
        if isinstance(stmt, ast.ImportFrom):
            base = stmt.module or ""
            if stmt.level:
                parent = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in stmt.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                names[alias.asname or alias.name.partition(".")[0]] = (
                    alias.name if alias.asname else alias.name.partition(".")[0]
                )
    return names


@functools.cache
def _siblings(module: str) -> tuple[str, ...]:
    """The other modules of ``module``'s package."""
    package = importlib.import_module(module.rpartition(".")[0] or module)
    paths = getattr(package, "__path__", None)
    if not paths:
        return ()
    found = pkgutil.iter_modules(paths, package.__name__ + ".")
    return tuple(m.name for m in found if m.name != module)


def _in_module(module: str, target: str) -> list[str]:
    """``target`` as ``module`` sees it: defined there, or imported under its first name."""
    first, dot, rest = target.partition(".")
    found = [f"{module}.{target}"]
    imported = _imports(module).get(first)
    if imported is not None:
        found.append(imported + dot + rest)
    return found


def _candidates(node: pending_xref) -> list[str]:
    """Where a target may live, from the module and class the reference is written in.

    A bare name is looked up in the class, the module (what it defines or imports), the
    other modules of its package, then the builtins (never as a top-level module:
    ``select`` in a docstring is not the standard library's); a dotted one also as
    written; a relative one (``.grid.Grid``) from the module and its package.
    """
    target = node["reftarget"]
    module, klass = node.get("py:module"), node.get("py:class")
    found = []
    if target.startswith("."):
        relative = target.lstrip(".")
        if module:
            found += [f"{module}.{relative}", f"{module.rpartition('.')[0]}.{relative}"]
        return found
    if module and klass:
        found.append(f"{module}.{klass}.{target}")
    if module:
        found += _in_module(module, target)
        for sibling in _siblings(module):
            found += _in_module(sibling, target)
    found.append(target if "." in target else f"builtins.{target}")
    return found


def _resolve_by_import(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve a Python reference Sphinx did not find among the documented objects.

    Returns a link to where the object is documented, else the text alone for an object
    that exists (another package's, or a private helper of ours), or None (the warning
    stands, failing the build) for a name that does not exist.
    """
    if node.get("refdomain") != "py":
        return None
    if node["reftarget"] in _CONSTANTS:
        return contnode
    domain: Any = env.get_domain("py")
    if not _documented_ids:
        for name in domain.objects:
            obj = _locate(name)
            if obj is not _MISSING and not isinstance(obj, _PLAIN):
                _documented_ids.setdefault(id(obj), name)
    for candidate in _candidates(node):
        obj = _locate(candidate)
        if obj is _MISSING:
            continue
        for name in _names(obj, candidate):
            if name in domain.objects:
                new = node.deepcopy()
                new["reftarget"] = name
                new.attributes.pop("refspecific", None)  # an exact name, not a search
                found: nodes.Element | None = domain.resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], name, new, contnode
                )
                if found is not None:
                    return found
        return contnode
    return None


def _skip_tuple_fields(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skip a ``NamedTuple``'s field accessors: its ``Attributes:`` section documents them."""
    if type(obj).__name__ == "_tuplegetter" or (
        isinstance(obj, property) and (obj.__doc__ or "").startswith("Alias for field number")
    ):
        return True
    return None


def setup(app: Sphinx) -> None:
    """Register the reference fallback and the member filter."""
    app.connect("missing-reference", _resolve_by_import)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
