"""How every command writes its outputs: atomically, checked, and one writer at a time.

* :func:`atomic_output` yields a temporary name beside the target; when the block
  succeeds, the file is checked (a ``check`` callable, e.g. :func:`raster_check`),
  flushed to disk and renamed over the target; when it fails, the temporary file is
  removed. So a file under a final name is always complete: a full disk, an I/O error
  or a kill leaves either the previous file or none, never a truncated one.
* :func:`check_raster` reads a written GeoTIFF back (GDAL reports some write errors,
  a full disk among them, only as log lines and may return zeros on read): shape,
  dtype and, given the array that was written, every value.
* :func:`write_text` / :func:`write_json` for small text files (JSON without ``NaN``).
* :func:`output_lock`: one writer per output directory. A lock file holds the holder's
  pid and host; a second run refuses with :class:`OutputInUse`; the lock of a process
  that died (same host, pid gone) is taken over, with the temporary files it left.

Errors are :class:`WriteError` (an :class:`OSError` whose message names the file);
commands print it as one line.

.. versionadded:: 0.2
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LOCK_NAME",
    "OutputInUse",
    "RasterDigest",
    "WriteError",
    "atomic_output",
    "check_raster",
    "output_lock",
    "png_check",
    "publish",
    "raster_check",
    "remove_stale_partials",
    "save_figure",
    "write_json",
    "write_text",
]

#: Suffix of the temporary files :func:`atomic_output` writes (``.<name>.<pid>.<id>.partial``).
PARTIAL_SUFFIX = ".partial"

#: The lock file :func:`output_lock` keeps in an output directory.
LOCK_NAME = ".torchgeo-lsr.lock"


class WriteError(OSError):
    """A write that did not complete (full disk, I/O error, a check that failed)."""


class OutputInUse(ValueError):
    """Another live run holds the output directory's lock."""


def _partial_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(
    target: str | os.PathLike[str], check: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success check it and rename it.

    The parent directory is created. On any exception in the block or in ``check``
    the temporary file is removed and the exception propagates (an :class:`OSError`
    is re-raised as :class:`WriteError` naming ``target``); ``target`` is untouched.

    Args:
        target: the final name.
        check: called with the temporary path before the rename; raises if the file
            is not what was meant to be written (see :func:`raster_check`).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with atomic_output(d / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
        ('done', ['a.txt'])
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(f"{target}: cannot create its directory ({_reason(err)})") from None
    tmp = _partial_name(target)
    try:
        yield tmp
        publish(tmp, target, check)
    except BaseException:  # an error, or a signal (Interrupted) during the check
        tmp.unlink(missing_ok=True)
        raise


def publish(
    tmp: str | os.PathLike[str],
    target: str | os.PathLike[str],
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Check ``tmp``, flush it to disk and rename it to ``target``; remove it on failure.

    What :func:`atomic_output` does after its block; call it directly when the temporary
    name is not yours to choose (e.g. one name shared by the ranks of a distributed run).

    Raises:
        WriteError: naming ``target``, if ``tmp`` is missing, fails ``check`` or cannot
            be flushed or renamed.
    """
    tmp, target = Path(tmp), Path(target)
    try:
        if not tmp.exists():
            raise WriteError(f"{target}: nothing was written")
        if check is not None:
            check(tmp)
        _fsync(tmp)
        os.replace(tmp, target)
    except WriteError:
        raise
    except OSError as err:
        raise WriteError(f"{target}: write failed ({_reason(err)})") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def check_raster(
    path: str | os.PathLike[str],
    expected: np.ndarray | None = None,
    *,
    shape: tuple[int, int, int] | None = None,
    dtype: str | None = None,
    name: str | os.PathLike[str] | None = None,
) -> None:
    """Read a written raster back and check it; raise :class:`WriteError` if it is wrong.

    Args:
        path: the raster.
        expected: the ``(C, H, W)`` (or ``(H, W)``) array that was written; every value
            is compared.
        shape: ``(C, H, W)`` it must have (taken from ``expected`` when given).
        dtype: its band dtype (taken from ``expected`` when given).
        name: the name to report (default ``path``).
    """
    import rasterio
    from rasterio.errors import RasterioError

    label = name or path
    if expected is not None:
        arr = expected if expected.ndim == 3 else expected[None]
        shape, dtype = (arr.shape[0], arr.shape[1], arr.shape[2]), arr.dtype.name
    try:
        with rasterio.open(path) as src:
            found = (src.count, src.height, src.width)
            if shape is not None and found != tuple(shape):
                raise WriteError(f"{label}: written as {found}, expected {tuple(shape)}")
            if dtype is not None and src.dtypes[0] != dtype:
                raise WriteError(f"{label}: written as {src.dtypes[0]}, expected {dtype}")
            data = src.read()
    except RasterioError as err:
        raise WriteError(f"{label}: unreadable after writing ({err})") from None
    if expected is not None and not np.array_equal(data, arr, equal_nan=arr.dtype.kind == "f"):
        raise WriteError(f"{label}: read back differs from what was written (full disk?)")


def raster_check(expected: np.ndarray | None = None, **kwargs: Any) -> Callable[[Path], None]:
    """A ``check`` for :func:`atomic_output`: :func:`check_raster` with these arguments."""

    def check(path: Path) -> None:
        check_raster(path, expected, **kwargs)

    return check


class RasterDigest:
    """Checks a raster written window by window, without holding it in memory.

    Call :meth:`update` with each window as it is written; :meth:`check` (a ``check``
    for :func:`atomic_output`) reads the same windows back and compares their digest.

    Example:
        >>> digest = RasterDigest()
        >>> digest.update(None, np.zeros((1, 2, 2), np.uint8))
    """

    def __init__(self, name: str | os.PathLike[str] | None = None) -> None:
        self.name = name
        self.windows: list[Any] = []
        self._hash = hashlib.sha256()

    @staticmethod
    def _add(h: Any, window: Any, data: np.ndarray) -> None:
        h.update(repr(window).encode())
        h.update(np.ascontiguousarray(data).tobytes())

    def update(self, window: Any, data: np.ndarray) -> None:
        """Record ``data`` ``(C, h, w)`` written at ``window`` (a rasterio window or None)."""
        self.windows.append(window)
        self._add(self._hash, window, data)

    def check(self, path: Path) -> None:
        """Read the recorded windows of ``path`` back; :class:`WriteError` if they differ."""
        import rasterio
        from rasterio.errors import RasterioError

        label = self.name or path
        h = hashlib.sha256()
        try:
            with rasterio.open(path) as src:
                for window in self.windows:
                    self._add(h, window, src.read(window=window))
        except RasterioError as err:
            raise WriteError(f"{label}: unreadable after writing ({err})") from None
        if h.digest() != self._hash.digest():
            raise WriteError(f"{label}: read back differs from what was written (full disk?)")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` atomically (read back before the rename); returns ``path``."""
    path = Path(path)

    def check(tmp: Path) -> None:
        if tmp.read_text(encoding="utf-8") != text:
            raise WriteError(f"{path}: read back differs from what was written (full disk?)")

    with atomic_output(path, check) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as strict JSON (``NaN`` or infinity is a :class:`ValueError`)."""
    return write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


# ----------------------------------------------------------------------- lock
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _is_main_rank() -> bool:
    """False in the extra processes of a distributed launch (they share rank 0's lock)."""
    return all(os.environ.get(k, "0") == "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def remove_stale_partials(directory: str | os.PathLike[str]) -> int:
    """Remove temporary files of :func:`atomic_output` left by dead processes; their count."""
    removed = 0
    for path in Path(directory).rglob(f".*{PARTIAL_SUFFIX}"):
        parts = path.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is not None and pid != os.getpid() and not _alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def output_lock(directory: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold ``directory``'s lock while the block runs; yields the lock file.

    A second run into the same directory raises :class:`OutputInUse` (its message is the
    one line a command prints). A lock left by a process that died on this host is taken
    over, and the temporary files that process left are removed. A directory this call
    created is removed again if the run leaves it empty. In the non-zero ranks
    of a distributed launch, which run inside rank 0's job, this does nothing.

    Args:
        directory: the output directory (created).
        command: what holds it (written into the lock, shown to the second run).
    """
    directory = Path(directory)
    lock = directory / LOCK_NAME
    if not _is_main_rank():
        yield lock
        return
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"output directory {directory}: not a directory") from None
    except OSError as err:
        raise ValueError(
            f"output directory {directory}: cannot create it ({_reason(err)})"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK) or not _writable(directory):
        raise ValueError(f"output directory {directory}: not writable")
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host, "command": command, "started": time.time()}
    for _ in range(50):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(lock)
            if holder is None:  # being written, or removed meanwhile
                time.sleep(0.05)
                continue
            if holder.get("host") == host and not _alive(int(holder.get("pid", -1))):
                # stale: rename it away first, so two takers cannot both take it
                try:
                    os.replace(lock, lock.with_name(f"{LOCK_NAME}.{os.getpid()}.stale"))
                except FileNotFoundError:
                    continue
                lock.with_name(f"{LOCK_NAME}.{os.getpid()}.stale").unlink(missing_ok=True)
                remove_stale_partials(directory)
                continue
            raise OutputInUse(
                f"{directory} is in use by {holder.get('command', 'another run')} "
                f"(pid {holder.get('pid')} on {holder.get('host')}): wait for it to finish, "
                f"or use another --out (if that run is gone, remove {lock})"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:  # pragma: no cover - a lock file that stays unreadable
        raise OutputInUse(f"{lock}: unreadable lock file; remove it if no run is using {directory}")
    try:
        yield lock
    finally:
        holder = _read_lock(lock)
        if holder is not None and holder.get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        if created and not any(directory.iterdir()):  # a refused run leaves no directory
            directory.rmdir()


def _writable(directory: Path) -> bool:
    """Whether a file can be created in ``directory`` (``os.access`` ignores read-only mounts)."""
    probe = directory / f".{LOCK_NAME}.{os.getpid()}.probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True


def _read_lock(lock: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(lock.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def png_check(name: str | os.PathLike[str]) -> Callable[[Path], None]:
    """A check for :func:`atomic_output`: the written PNG decodes in full."""

    def check(path: Path) -> None:
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()
        except OSError as err:
            raise WriteError(f"{name}: unreadable after writing ({err})") from None

    return check


def save_figure(fig: Any, out: str | os.PathLike[str], dpi: int = 80) -> Path:
    """Save a matplotlib figure as a PNG atomically (decoded before the rename), then close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        with atomic_output(out, png_check(out)) as partial:
            fig.savefig(partial, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return out
