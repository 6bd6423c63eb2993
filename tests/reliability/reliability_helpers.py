"""Helpers of the reliability suite (on ``sys.path`` through this folder's conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
KILLED_MARK = "killer: signalled before publishing "  # as killer.py prints it


def run_cli(
    *args: str | os.PathLike[str],
    kill_at_publish: int | None = None,
    signal: str = "SIGKILL",
    match: str = "",
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``torchgeo-lsr ARGS`` in a fresh process (optionally killed, see killer.py)."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    spec = json.dumps({"publish": kill_at_publish or 0, "signal": signal, "match": match})
    return subprocess.run(
        [sys.executable, str(HERE / "killer.py"), spec, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def killed_target(result: subprocess.CompletedProcess[str]) -> str | None:
    """What a killer.py run was about to publish when it signalled itself."""
    for line in result.stderr.splitlines():
        if line.startswith(KILLED_MARK):
            return line[len(KILLED_MARK) :]
    return None


def our_lines(stderr: str) -> list[str]:
    """stderr lines of ours (``torchgeo-lsr ...:``), without third-party noise."""
    return [line for line in stderr.splitlines() if line.startswith("torchgeo-lsr")]


def files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, minus those starting with ``skip``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip):
            out[rel] = path.read_bytes()
    return out


#: Not compared between a resumed and an uninterrupted run: logs (timings, appended rows),
#: summary.json (timings, its own --out), the lock, and last.ckpt (the working loop state;
#: the result is final.ckpt).
NOT_COMPARED = ("logs/", "summary.json", ".torchgeo-lsr.lock", "checkpoints/last.ckpt")


def assert_same_files(
    got_root: Path, want_root: Path, skip: tuple[str, ...] = NOT_COMPARED
) -> None:
    """The same files under both roots, byte for byte (``skip`` prefixes aside)."""
    got, want = files(got_root, skip), files(want_root, skip)
    assert sorted(got) == sorted(want)
    assert [name for name in want if got[name] != want[name]] == []
