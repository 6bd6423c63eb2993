"""Every notebook in ``notebooks/`` runs top to bottom, and none is committed with outputs.

The notebooks are executed with nbclient in a ``python3`` kernel whose working directory is
``notebooks/`` and whose environment is this process's (so ``PYTHONPATH`` decides which
``torchgeo_lsr`` the kernel imports, checked by :func:`test_kernel_imports_package_under_test`),
plus ``LSR_NOTEBOOK_QUICK=1``: the one switch every notebook reads in its first code cell
(``QUICK = os.environ.get("LSR_NOTEBOOK_QUICK") == "1"``) to use small settings.

Notebooks that need data which is not in the repository declare it in their metadata,
``{"torchgeo_lsr": {"needs": ["chesapeake"]}}``; without the data they are skipped here with
the places that were looked at.

``make notebooks`` runs this file as a script: every notebook with full settings
(``LSR_NOTEBOOK_QUICK`` unset), executed copies written to ``notebooks/executed/``::

    python tests/test_notebooks.py notebooks/executed
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
QUICK_VAR = "LSR_NOTEBOOK_QUICK"
#: Seconds one cell may take (quick mode aims at well under a minute per notebook).
CELL_TIMEOUT = int(os.environ.get("LSR_NOTEBOOK_CELL_TIMEOUT", "300"))
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ------------------------------------------------------------------------ data needs
def chesapeake_candidates() -> list[Path]:
    """Where the 8 real Chesapeake patches are looked for, in order."""
    places = []
    if os.environ.get("TORCHGEO_LSR_CHESAPEAKE"):
        places.append(Path(os.environ["TORCHGEO_LSR_CHESAPEAKE"]))
    places.append(ROOT.parent / "shared" / "data" / "chesapeake_wv")
    return places


def chesapeake_missing() -> str | None:
    """None when the patches are found, else why not (naming every place looked at)."""
    if any((p / "patches.csv").exists() for p in chesapeake_candidates()):
        return None
    env = os.environ.get("TORCHGEO_LSR_CHESAPEAKE")
    return (
        "the real Chesapeake patches are not here: TORCHGEO_LSR_CHESAPEAKE is "
        + (f"{env} (no patches.csv)" if env else "unset")
        + f", and {ROOT.parent / 'shared' / 'data' / 'chesapeake_wv'} has no patches.csv"
    )


#: A notebook's ``metadata.torchgeo_lsr.needs`` entry -> a check returning a skip reason.
NEEDS = {"chesapeake": chesapeake_missing}


def missing_data(nb: nbformat.NotebookNode) -> str | None:
    """The first unmet data need of a notebook, or None."""
    needs = nb.metadata.get("torchgeo_lsr", {}).get("needs", [])
    for need in needs:
        if need not in NEEDS:
            raise ValueError(f"unknown need {need!r} in notebook metadata; known: {list(NEEDS)}")
        reason = NEEDS[need]()
        if reason:
            return reason
    return None


# -------------------------------------------------------------------------- running
class NotebookFailed(Exception):
    """A notebook stopped at a cell; the message names both."""


def _head(source: str, lines: int = 6) -> str:
    text = source.splitlines()[:lines]
    more = "\n    ..." if len(source.splitlines()) > lines else ""
    return "\n".join(f"    {line}" for line in text) + more


def _error_summary(cell: Any, exc: BaseException) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            tb = ANSI.sub("", "\n".join(output.get("traceback", [])))
            return "\n".join(tb.splitlines()[-25:])
    return ANSI.sub("", str(exc)).strip()[-3000:]


def execute(
    path: Path, quick: bool, out: Path | None = None, timeout: int = CELL_TIMEOUT
) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in a fresh ``python3`` kernel, cwd = its folder.

    Args:
        path: the notebook.
        quick: set ``LSR_NOTEBOOK_QUICK=1`` for the kernel (else it is removed).
        out: also write the executed notebook here (even when a cell fails).
        timeout: seconds per cell.

    Raises:
        NotebookFailed: naming the notebook, the failing cell and the error.
    """
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop(QUICK_VAR, None)
    if quick:
        env[QUICK_VAR] = "1"
    current: dict[str, Any] = {}

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current.update(cell=cell, index=cell_index)

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_cell_start,
    )
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        cell, index = current.get("cell"), current.get("index", -1)
        what = "timed out" if isinstance(exc, CellTimeoutError) else "failed"
        source = _head(cell.source) if cell is not None else "    (no cell started)"
        detail = _error_summary(cell or {}, exc)
        message = f"{path.name}: cell {index} {what}:\n{source}\n{detail}"
        raise NotebookFailed(message) from None
    finally:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
    return nb


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    reason = missing_data(nbformat.read(path, as_version=4))
    if reason:
        pytest.skip(f"{path.name}: {reason}")
    try:
        execute(path, quick=True)
    except NotebookFailed as exc:
        pytest.fail(str(exc), pytrace=False)


def test_outputs_are_stripped() -> None:
    dirty = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if cell.get("outputs") or cell.get("execution_count") is not None:
                dirty.append(f"{path.name} cell {i}: {cell.source.splitlines()[:1]}")
    assert not dirty, "notebooks committed with outputs (clear them before committing):\n" + (
        "\n".join(dirty)
    )


def test_first_code_cell_reads_the_quick_switch() -> None:
    missing = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or QUICK_VAR not in code[0].source:
            missing.append(path.name)
    assert not missing, f"first code cell does not read {QUICK_VAR}: {missing}"


def test_kernel_imports_package_under_test(tmp_path: Path) -> None:
    import torchgeo_lsr

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os, sys, torchgeo_lsr\n"
            "print(torchgeo_lsr.__file__)\nprint(sys.executable)\nprint(os.getcwd())\n"
            f"print(os.environ.get({QUICK_VAR!r}))"
        )
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    ran = execute(path, quick=True)
    package, executable, cwd, quick = ran.cells[0].outputs[0]["text"].split()
    assert Path(package).resolve() == Path(torchgeo_lsr.__file__).resolve()
    assert Path(executable).resolve() == Path(sys.executable).resolve()
    assert Path(cwd).resolve() == tmp_path.resolve()
    assert quick == "1"
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    pythonpath = [Path(p).resolve() for p in entries if p]
    if ROOT in pythonpath:
        assert Path(package).resolve().is_relative_to(ROOT)


def test_failure_names_notebook_and_cell(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("# the cell that breaks\nraise RuntimeError('boom')"),
    ]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookFailed) as info:
        execute(path, quick=True)
    message = str(info.value)
    assert "broken.ipynb: cell 1 failed" in message
    assert "# the cell that breaks" in message
    assert "RuntimeError" in message
    assert "boom" in message


# ------------------------------------------------------------------- make notebooks
def main(argv: list[str]) -> int:
    """Run every notebook with full settings; executed copies into ``argv[0]``."""
    out_dir = Path(argv[0]) if argv else NOTEBOOKS_DIR / "executed"
    failed = []
    for path in NOTEBOOKS:
        reason = missing_data(nbformat.read(path, as_version=4))
        if reason:
            print(f"== {path.name}: skipped, {reason}", flush=True)
            continue
        print(f"== {path.name}", flush=True)
        start = time.perf_counter()
        try:
            execute(path, quick=False, out=out_dir / path.name, timeout=3600)
        except NotebookFailed as exc:
            print(exc, file=sys.stderr, flush=True)
            failed.append(path.name)
        print(f"   {time.perf_counter() - start:.0f} s -> {out_dir / path.name}", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
