"""What a stopped, crashed, concurrent or disk-starved run leaves behind.

- SIGTERM / SIGINT: ``map`` saves a checkpoint at a resumable step, exits 143 / 130 with
  one line, and the rerun gives the uninterrupted result; outside training the signal
  stops at once with nothing half-written.
- One writer per ``--out``: a second run is refused with one line; a lock left by a dead
  process is taken over and its temporary files removed.
- A full disk: exit 1 with one line naming the file, nothing truncated under a final
  name, and a rerun with space completes.
- The writers' own checks: a failed check never replaces the target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability_helpers import assert_same_files, files, our_lines, run_cli

from torchgeo_lsr.outputs import (
    LOCK_NAME,
    OutputInUse,
    WriteError,
    atomic_output,
    check_raster,
    output_lock,
    write_json,
)

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def reference(city: Path, map_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "map"
    result = run_cli("map", city, "--out", out, "--config", map_config, "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


# ------------------------------------------------------------------------- signals
def test_map_sigterm_in_training_saves_exits_143_and_resumes(
    city: Path, map_config: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "map"
    args = ("map", city, "--out", out, "--config", map_config, "--no-progress")
    # SIGTERM arrives while the first periodic last.ckpt is being published
    stopped = run_cli(*args, kill_at_publish=1, signal="SIGTERM", match="last.ckpt")
    assert stopped.returncode == 143
    last = out / "checkpoints" / "last.ckpt"
    assert our_lines(stopped.stderr) == [
        f"torchgeo-lsr map: stopped by SIGTERM; saved {last}; rerun the same command to resume"
    ]
    assert last.exists()
    assert not (out / "checkpoints" / "final.ckpt").exists()
    assert not list(out.rglob("*.partial"))
    assert run_cli(*args).returncode == 0
    assert_same_files(out, reference)


def test_map_sigint_outside_training_stops_at_once(
    city: Path, map_config: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "map"
    args = ("map", city, "--out", out, "--config", map_config, "--no-progress")
    stopped = run_cli(*args, kill_at_publish=2, signal="SIGINT", match="/prior/")
    assert stopped.returncode == 130
    assert our_lines(stopped.stderr) == [
        "torchgeo-lsr map: stopped by SIGINT; rerun the same command to resume"
    ]
    assert len(list((out / "prior").glob("*.tif"))) == 1  # the second tile was not renamed
    assert not list(out.rglob("*.partial"))
    assert not (out / LOCK_NAME).exists()
    assert run_cli(*args).returncode == 0
    assert files(out / "q") == files(reference / "q")


# -------------------------------------------------------------------------- locks
def test_second_run_into_the_same_out_is_refused(city: Path, tmp_path: Path) -> None:
    out = tmp_path / "prior"
    with output_lock(out, "torchgeo-lsr prior"):
        result = run_cli("prior", city, "--out", out, "--no-progress")
        assert result.returncode == 2
        [line] = our_lines(result.stderr)
        assert line.startswith(f"torchgeo-lsr prior: {out} is in use by torchgeo-lsr prior")
        assert f"pid {os.getpid()}" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    assert not out.exists()  # the holder created it and left it empty


def test_lock_is_exclusive_in_process(tmp_path: Path) -> None:
    # same host, live pid (ours): not stale
    with (
        output_lock(tmp_path / "out", "a"),
        pytest.raises(OutputInUse, match="in use by a"),
        output_lock(tmp_path / "out", "b"),
    ):
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(city: Path, tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    out = tmp_path / "prior"
    out.mkdir()
    import socket

    lock = {"pid": pid, "host": socket.gethostname(), "command": "torchgeo-lsr prior"}
    (out / LOCK_NAME).write_text(json.dumps(lock))
    leftover = out / f".m_tile.tif.{pid}.1.partial"  # what a killed writer leaves
    leftover.write_bytes(b"half a GeoTIFF")
    result = run_cli("prior", city, "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not leftover.exists()
    assert not (out / LOCK_NAME).exists()
    assert len(list(out.glob("*.tif"))) == 2


@pytest.mark.parametrize("kind", ["file", "under_file", "read_only"])
def test_bad_out_directory_is_one_line(city: Path, tmp_path: Path, kind: str) -> None:
    target = tmp_path / "x"
    target.write_text("a file")
    out = {"file": target, "under_file": target / "sub", "read_only": tmp_path / "ro"}[kind]
    if kind == "read_only":
        out.mkdir()
        out.chmod(0o500)
        if os.geteuid() == 0:  # root writes through permissions: a read-only mount
            made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=8k", "tmpfs", str(out)])
            if made.returncode != 0:
                pytest.skip("root writes into read-only directories and cannot mount here")
    try:
        result = run_cli("prior", city, "--out", out, "--no-progress")
    finally:
        if kind == "read_only" and os.geteuid() == 0:
            subprocess.run(["umount", str(out)], capture_output=True)
    assert result.returncode == 2
    [line] = our_lines(result.stderr)
    assert line.startswith(f"torchgeo-lsr prior: output directory {out}: ")
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------- full disk
@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 48 KiB tmpfs (needs mount rights; skipped where the machine refuses)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root here")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("command", ["prior", "map"])
def test_full_disk_is_one_line_nothing_truncated_and_a_rerun_completes(
    city: Path, map_config: Path, small_disk: Path, command: str
) -> None:
    out = small_disk / "out"
    args = [command, city, "--out", out, "--no-progress"]
    if command == "map":
        args += ["--config", map_config]
    full = run_cli(*args)
    assert full.returncode == 1, full.stderr[-2000:]
    [line] = our_lines(full.stderr)
    assert line.startswith(f"torchgeo-lsr {command}: {out}/")
    for path in out.rglob("*.tif") if out.exists() else []:
        with rasterio.open(path) as src:  # everything under a final name reads in full
            src.read()
    assert not list(small_disk.rglob("*.partial"))
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------------------- the writers
def test_failed_check_keeps_the_old_target(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})

    def refuse(path: Path) -> None:
        raise WriteError(f"{target}: refused")

    with pytest.raises(WriteError, match="refused"), atomic_output(target, refuse) as tmp:
        tmp.write_text("new")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_exception_in_the_block_removes_the_temporary(tmp_path: Path) -> None:
    def half_then_stop(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), atomic_output(tmp_path / "b.tif") as tmp:
        half_then_stop(tmp)
    assert list(tmp_path.iterdir()) == []


def test_strict_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="JSON"):
        write_json(tmp_path / "m.json", {"acc": float("nan")})
    assert not (tmp_path / "m.json").exists()


def test_check_raster_sees_a_changed_or_truncated_file(tmp_path: Path) -> None:
    data = np.arange(2 * 64 * 64, dtype=np.uint8).reshape(2, 64, 64)
    path = tmp_path / "r.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 2, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    check_raster(path, data)  # what was written reads back
    with pytest.raises(WriteError, match=r"r\.tif"):
        check_raster(path, data + 1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WriteError, match=r"r\.tif"):
        check_raster(path, data)
