"""``prior --workers N``: tiles built in worker processes, the same bytes as in one process.

Facts, not timings (``benchmarks/workers.py`` measures the speed-up): the files of
``workers=2`` are byte-identical to ``workers=1``'s, a resumed run skips finished tiles, a
worker's error is the serial path's one-line error, a bad ``--workers`` is refused, and
SIGTERM stops the workers without leaving a half-written file.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import rasterio

from torchgeo_lsr import cli
from torchgeo_lsr.priors.builder import PriorConfig, build_region_priors
from torchgeo_lsr.priors.config import MAX_WORKERS
from torchgeo_lsr.region import Region
from torchgeo_lsr.sample_city import SampleCity, make_sample_city

TILES, SIZE = 3, 128
#: 4 windows per tile, so the workers report progress inside a tile.
CONFIG = PriorConfig(window=64)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> SampleCity:
    return make_sample_city(
        tmp_path_factory.mktemp("workers") / "city", seed=0, tiles=TILES, size=SIZE, progress=False
    )


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    """``torchgeo-lsr prior ARGS`` in process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(["prior", *map(str, args)])
    return int(rc or 0), out.getvalue(), err.getvalue()


def files(directory: Path) -> dict[str, bytes]:
    """Every file of ``directory`` (the lock aside) and its bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".torchgeo-lsr")
    }


@pytest.mark.parametrize(
    "config", [CONFIG, PriorConfig(window=64, aux=("osm", "buildings"), dtype="uint8")]
)
def test_workers_write_the_same_bytes(
    city: SampleCity, tmp_path: Path, config: PriorConfig
) -> None:
    one = build_region_priors(city.root, tmp_path / "one", config, progress=False)
    two = build_region_priors(city.root, tmp_path / "two", config, progress=False, workers=2)
    names = [t.stem + ".tif" for t in Region.open(city.root).images]
    assert [p.name for p in one.written] == names
    assert [p.name for p in two.written] == names  # tile order, whichever finished first
    assert two.skipped == []
    assert files(tmp_path / "two") == files(tmp_path / "one")  # no partial file left either
    assert len(files(tmp_path / "one")) == TILES


def test_workers_resume_skips_finished_tiles(city: SampleCity, tmp_path: Path) -> None:
    out = tmp_path / "priors"
    images = Region.open(city.root).images
    first = images[1].stem
    done = build_region_priors(
        Region.open(city.root, tiles=[first]), out, CONFIG, progress=False
    ).written
    kept = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in done}
    report = build_region_priors(city.root, out, CONFIG, progress=False, workers=2)
    assert report.skipped == done
    assert [p.name for p in report.written] == [t.stem + ".tif" for t in images if t.stem != first]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in done} == kept
    again = build_region_priors(city.root, out, CONFIG, progress=False, workers=2)
    assert again.written == []
    assert again.outputs == sorted(out.glob("*.tif"))


def _corrupt_nlcd(city: SampleCity, dest: Path) -> Path:
    """A copy of the city whose NLCD header reads but whose pixels do not decode.

    Opening the region and planning the tiles pass (they read headers); the error comes
    from reading NLCD, inside ``build_tile_prior``, in the worker.
    """
    shutil.copytree(city.root, dest)
    (path,) = (dest / "nlcd").glob("*.tif")
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    data = bytearray(path.read_bytes())
    data[offset : offset + size] = b"\xff" * size
    path.write_bytes(bytes(data))
    return dest


def test_a_worker_error_is_the_serial_error(city: SampleCity, tmp_path: Path) -> None:
    region = _corrupt_nlcd(city, tmp_path / "bad")
    errors = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        with pytest.raises(ValueError, match="could not be read, truncated or corrupt") as err:
            build_region_priors(region, out, CONFIG, progress=False, workers=workers)
        errors[workers] = (type(err.value), str(err.value))
        assert not out.exists() or files(out) == {}, "nothing (half-)written"
    assert errors[2] == errors[1]
    rc, stdout, err_text = run_cli(
        region, "--out", tmp_path / "cli", "--workers", "2", "--no-progress"
    )
    assert (rc, stdout) == (2, "")
    assert err_text == f"torchgeo-lsr prior: {errors[1][1]}\n"


def test_a_tile_without_nlcd_is_refused_before_the_pool(city: SampleCity, tmp_path: Path) -> None:
    region = shutil.copytree(city.root, tmp_path / "far")
    with rasterio.open(region / "naip" / city.naip[0].name, "r+") as dst:
        dst.transform = dst.transform * rasterio.Affine.translation(1e6, 0)  # far from NLCD
    rc, stdout, err = run_cli(region, "--out", tmp_path / "out", "--workers", "2", "--no-progress")
    assert (rc, stdout) == (2, "")
    assert re.fullmatch(r"torchgeo-lsr prior: \S+: no NLCD file of .* overlaps this tile .*\n", err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_WORKERS + 1), "two"])
def test_a_bad_workers_is_refused(city: SampleCity, tmp_path: Path, value: str) -> None:
    rc, stdout, err = run_cli(city.root, "--out", tmp_path / "out", "--workers", value)
    assert (rc, stdout) == (2, "")
    assert err.startswith("torchgeo-lsr prior: --workers: expected ")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    if value != "two":
        with pytest.raises(ValueError, match=r"^--workers: expected 1 to"):
            build_region_priors(city.root, tmp_path / "out", workers=int(value))


def test_workers_with_the_learned_prior_is_refused(city: SampleCity, tmp_path: Path) -> None:
    args = ("--out", tmp_path / "out", "--workers", "2", "--learned-prior", tmp_path / "p.ckpt")
    rc, stdout, err = run_cli(city.root, *args)
    assert (rc, stdout) == (2, "")
    assert (
        err
        == "torchgeo-lsr prior: --workers: the learned prior runs in one process; drop --workers\n"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie nobody reaped yet is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_sigterm_stops_the_workers_and_leaves_no_partial_file(
    city: SampleCity, tmp_path: Path
) -> None:
    """Stopped while a worker writes a tile: exit 143, no partial file, no worker left.

    In process (the test's own pid gets the SIGTERM, as ``kill`` would send it to the
    command), from a thread that waits until a worker has a partial file.
    """
    out = tmp_path / "priors"
    partials: list[Path] = []

    def stop_when_writing() -> None:
        deadline = time.monotonic() + 120  # a bound on waiting, not an assertion on time
        while not partials and time.monotonic() < deadline:
            partials.extend(sorted(out.glob(".*.partial")) if out.exists() else [])
            time.sleep(0.01)
        if partials:
            os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=stop_when_writing, daemon=True)
    watcher.start()
    # 32 px windows: each tile takes 16 windows, so a partial file is there to be seen
    with pytest.raises(SystemExit) as stopped:
        run_cli(city.root, "--out", out, "--workers", "2", "--window", "32", "--no-progress")
    watcher.join()
    assert partials, "no partial file was seen before the run ended"
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    assert sorted(out.glob(".*.partial")) == []
    assert not (out / ".torchgeo-lsr.lock").exists()
    workers = {int(p.name.split(".")[-3]) for p in partials}
    assert os.getpid() not in workers
    end = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers), "a worker kept running"
    # what was finished is complete and kept: a rerun builds only the rest
    done = sorted(out.glob("*.tif"))
    rerun = build_region_priors(city.root, out, PriorConfig(window=32), progress=False)
    assert rerun.skipped == done
    assert len(rerun.written) == TILES - len(done)


def test_workers_benchmark_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, benchmark_module: Callable[[str], ModuleType]
) -> None:
    """The benchmark's JSON, from a miniature run through its real code path."""
    bench = benchmark_module("workers")
    monkeypatch.setattr(bench, "QUICK", (2, 64))  # 2 tiles: the 2-worker runs use a pool
    out = tmp_path / "workers.json"
    result = bench.main(["--quick", "--repeats", "1", "--out", str(out), "--cache", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["prior_s"]) == {"1", "2"}
    assert all(saved["prior_s"][k] > 0 for k in ("1", "2"))
    assert saved["prior_speedup"] == pytest.approx(saved["prior_s"]["1"] / saved["prior_s"]["2"])
    assert (saved["tiles"], saved["tile_size_px"], saved["pixels"]) == (2, 64, 2 * 64 * 64)
    assert saved["identical"] is True
    assert saved["cpus"] >= 1
    assert {"python", "torch", "torchgeo", "torchgeo_lsr"} <= set(saved["versions"])
    # the prediction half: one process against two CPU DDP ranks, the same maps
    assert set(saved["predict_s"]) == {"1", "2"}
    assert saved["predict_speedup"] == pytest.approx(
        saved["predict_s"]["1"] / saved["predict_s"]["2"]
    )
    assert saved["predict_same_maps"] is True


def test_a_killed_worker_is_one_error_and_leaves_no_partial_file(
    city: SampleCity, tmp_path: Path
) -> None:
    """A worker killed outright (the OOM killer's SIGKILL) cannot clean up: the parent does."""
    out = tmp_path / "priors"
    partials: list[Path] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 120  # a bound on waiting, not an assertion on time
        while not partials and time.monotonic() < deadline:
            partials.extend(sorted(out.glob(".*.partial")) if out.exists() else [])
            time.sleep(0.01)
        if partials:
            os.kill(int(partials[0].name.split(".")[-3]), signal.SIGKILL)

    watcher = threading.Thread(target=kill_a_worker, daemon=True)
    watcher.start()
    with pytest.raises(ChildProcessError, match=r"^prior: a worker process died \(killed"):
        build_region_priors(city.root, out, PriorConfig(window=32), progress=False, workers=2)
    watcher.join()
    assert partials, "no partial file was seen before the run ended"
    assert sorted(out.glob(".*.partial")) == []
    rerun = build_region_priors(city.root, out, PriorConfig(window=32), progress=False)
    assert len(rerun.skipped) + len(rerun.written) == TILES
