"""Build a prior GeoTIFF for every imagery tile of a region directory.

The recipe (paper §4.3 and Appendix D): NLCD on the tile's 1 m grid (nearest) -> each
pixel takes its NLCD class's column of the co-occurrence matrix ``P(class | NLCD)``
(this equals remapping the one-hot NLCD) -> Gaussian blur (sigma 31 px, kernel 101) with
normalised borders -> optional fusion of rasterised roads, buildings, water bodies and
waterways -> additive smoothing onto the simplex. Blur and remap are both linear, so
remapping first (5 channels instead of 17) gives the same map at a third of the cost.

With the default ``blur="fast"`` nearly all of the work runs on the blur's coarse canvas
(:func:`_fast_prior_window`): NLCD is looked up once per 1 m pixel (source cells found
through an exactly transformed lattice, see :func:`~torchgeo_lsr.datasets.warping.warp_to_grid`),
counted into coarse cells by one ``bincount``, remapped, blurred (separable FFT) and put on
the simplex there, and only the final bilinear upsampling touches the 1 m grid. Outputs
are ZSTD-compressed. ``benchmarks/priors.py`` measures this against the paper's recipe.

Tiles are processed in windows (with a margin of the blur radius), so a full
7,000 x 6,000 px NAIP tile needs a few hundred MB. Each output is written under a
temporary name and renamed when complete, and carries a key of its inputs and parameters
(the ``LSR_PRIOR_KEY`` tag): a rerun skips tiles whose key matches, so an interrupted run
resumes where it stopped and a changed input or parameter rebuilds.

``workers > 1`` builds whole tiles in that many processes on this machine
(:func:`build_region_priors`); the files are the same bytes whatever the number.

.. versionadded:: 0.1
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import math
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

from ..classes import NLCD as NLCD_SCHEME
from ..classes import ClassScheme, LabelScheme, get_scheme, reference_cooccurrence
from ..datasets.base import GeoSource, RasterSource
from ..datasets.grid import Grid
from ..formats import content_key, prior_writer, stored_key, write_prior
from ..outputs import remove_stale_partials
from ..progress import Progress
from ..region import (
    Region,
    fingerprint,
    read_label_file,
)
from .blur import (
    _APPROX_MIN_WEIGHT,
    _pair_kernel,
    blur_probs,
    fast_blur_factor,
    pyramid_blur_coarse,
    pyramid_canvas,
    pyramid_up,
)
from .config import PriorConfig, check_workers
from .fusion import fuse_auxiliary
from .simplex import to_simplex

__all__ = [
    "PriorConfig",
    "PriorReport",
    "build_label_priors",
    "build_region_priors",
    "build_tile_prior",
    "estimate_region_cooccurrence",
    "plan_tiles",
    "resolve_cooccurrence",
]


@dataclass
class PriorReport:
    """What :func:`build_region_priors` did."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    matrix: np.ndarray | None = None

    @property
    def outputs(self) -> list[Path]:
        """Every prior of the region (written now or reused), in tile order."""
        return sorted(self.written + self.skipped)


# ------------------------------------------------------------------- co-occurrence
def resolve_cooccurrence(config: PriorConfig, region: Region | None = None) -> np.ndarray:
    """The ``(classes, 17)`` matrix P(class | NLCD index) named by ``config.cooccurrence``.

    Raises:
        ValueError: on an unknown name, a file of the wrong shape, or a scheme without a
            matrix.
    """
    scheme = config.scheme
    source = config.cooccurrence
    matrix: np.ndarray
    if source == "estimate":
        if region is None:
            raise ValueError("cooccurrence='estimate' needs the region's labels")
        matrix = estimate_region_cooccurrence(region, config)
    elif source == "scheme":
        if scheme.nlcd_matrix is None:
            raise ValueError(f"class scheme {scheme.name!r} has no nlcd_matrix")
        matrix = scheme.nlcd_matrix
    elif source.endswith(".npy"):
        if not os.path.exists(source):
            raise FileNotFoundError(f"--cooccurrence {source}: no such file")
        matrix = np.load(source)
    else:
        try:
            matrix = reference_cooccurrence(source, scheme.name)
        except ValueError as err:
            raise ValueError(
                f"--cooccurrence {source!r}: not a reference city, .npy file, 'scheme' or "
                f"'estimate' ({err})"
            ) from err
    if matrix.shape != (len(scheme), len(NLCD_SCHEME)):
        raise ValueError(
            f"co-occurrence matrix {source!r} is {matrix.shape}; expected "
            f"({len(scheme)}, {len(NLCD_SCHEME)}) for classes {scheme.name!r} x NLCD"
        )
    if not np.issubdtype(matrix.dtype, np.number) or not np.isfinite(matrix).all():
        raise ValueError(f"co-occurrence matrix {source!r}: has NaN or infinite entries")
    if (matrix < 0).any():
        raise ValueError(f"co-occurrence matrix {source!r}: has negative entries")
    if not (matrix.sum(axis=0) > 0).any():
        raise ValueError(f"co-occurrence matrix {source!r}: every column sums to 0")
    return matrix.astype(np.float64)


def estimate_region_cooccurrence(
    region: Region | str | os.PathLike[str], config: PriorConfig
) -> np.ndarray:
    """P(class | NLCD) from the region's labels and NLCD, averaged per tile.

    Labels are read on each imagery tile's grid and NLCD onto the same grid (nearest);
    each tile gives a matrix and each column is averaged over the tiles where that NLCD
    class occurs (the paper's per-tile average). Labels are decoded by
    ``config.label_scheme``, or by the region's own scheme when it is None.
    """
    from .cooccurrence import estimate_cooccurrence

    region = Region.open(region)
    if region.labels is None:
        raise FileNotFoundError(f"region {region.root}: --cooccurrence estimate needs labels")
    scheme = config.scheme
    label_scheme = config.label_scheme or region.label_scheme
    nlcd = region.nlcd()
    coarse, fine = [], []
    for tile, label_file in zip(region.images, region.labels, strict=True):
        grid = Grid.of_raster(tile)
        idx = nlcd[grid]
        fine_idx = read_label_file(label_file, grid, scheme, label_scheme)
        ok = idx["valid"].numpy() & (fine_idx != 255)
        coarse.append(np.where(ok, idx["mask"].numpy(), 0))
        fine.append(np.where(ok, fine_idx, 0))
    c = torch.from_numpy(np.stack(coarse))
    f = torch.from_numpy(np.stack(fine))
    matrix = estimate_cooccurrence(
        c, f, len(NLCD_SCHEME), len(scheme), valid=c > 0, mode="tile_average"
    )
    estimated: np.ndarray = matrix.numpy()
    return estimated


# ---------------------------------------------------------------------- one tile
def prior_window(
    nlcd_index: torch.Tensor,
    nlcd_valid: torch.Tensor,
    matrix: torch.Tensor,
    config: PriorConfig,
    aux: dict[str, torch.Tensor] | None = None,
    crop: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior of one window from NLCD indices (and aux masks) on its padded grid.

    Args:
        nlcd_index: ``(H + 2 crop, W + 2 crop)`` NLCD 17-index raster.
        nlcd_valid: same shape, False where NLCD has no data.
        matrix: ``(K, 17)`` co-occurrence matrix.
        config: blur, smoothing and fusion settings.
        aux: name -> masks on the same padded grid as ``nlcd_index`` (fusion layers).
        crop: margin removed after blurring and fusion.

    Returns:
        ``(K, H, W)`` probabilities (all zero where there is no information) and the
        ``(H, W)`` validity mask.
    """
    informative = matrix.sum(dim=0) > 0
    valid = nlcd_valid & informative[nlcd_index]
    if config.blur == "fast":
        return _fast_prior_window(nlcd_index, valid, matrix, config, aux, crop)
    base = matrix[:, nlcd_index] * valid  # remap(one_hot(NLCD)) with no-info pixels zero
    blurred = blur_base(base.float(), valid, config)
    return _fuse_and_normalise(blurred, config, aux, crop)


def blur_base(base: torch.Tensor, valid: torch.Tensor, config: PriorConfig) -> torch.Tensor:
    """The recipe's blur of a ``(K, H, W)`` co-occurrence window.

    No-information pixels (``~valid``) are filled from their neighbours; the border is
    ``"normalized"``.
    """
    return blur_probs(
        base,
        config.sigma,
        kernel_size=config.kernel_size,
        valid=valid,
        method=config.blur,
        border="normalized",
        fill=True,
    )


def fuse_layers(
    blurred: torch.Tensor, config: PriorConfig, aux: Mapping[str, torch.Tensor] | None
) -> torch.Tensor:
    """The recipe's auxiliary fusion of a blurred ``(K, H, W)`` window (``config.fusion_spec``).

    Raises:
        ValueError: on a layer that has no fusion target in ``config.classes``.
    """
    if not aux:
        return blurred
    spec = config.fusion_spec()
    missing = sorted(set(aux) - set(spec))
    if missing:
        raise ValueError(
            f"prior: no fusion target for {missing} in classes {config.classes!r} "
            "(buildings and roads need a class named 'impervious', water layers one "
            "named 'water'); drop them from aux or pass a fusion config"
        )
    layers = dict(aux)
    return fuse_auxiliary(
        blurred,
        layers,
        targets={k: int(spec[k]["target"]) for k in layers},
        weights={k: float(spec[k].get("weight", 1.0)) for k in layers},
        dilate={k: int(spec[k].get("dilate", 0)) for k in layers},
        sigma={k: float(spec[k].get("sigma", 0.0)) for k in layers},
    )


def _fuse_and_normalise(
    blurred: torch.Tensor, config: PriorConfig, aux: dict[str, torch.Tensor] | None, crop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Auxiliary fusion, margin crop and smoothing onto the simplex of a blurred window."""
    blurred = fuse_layers(blurred, config, aux)
    if crop:  # after fusion, so dilated roads and water see across window seams
        blurred = blurred[:, crop:-crop, crop:-crop]
    probs, ok = to_simplex(blurred, eps=config.eps)
    return probs, ok


def _fast_prior_window(
    nlcd_index: torch.Tensor,
    valid: torch.Tensor,
    matrix: torch.Tensor,
    config: PriorConfig,
    aux: dict[str, torch.Tensor] | None,
    crop: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`prior_window` with ``blur="fast"``, computed on the coarse canvas.

    The same math as ``blur_probs(method="fast")`` applied to the remapped map (area-pool,
    coarse blur, bilinear up), rearranged so nothing but the final upsampling runs on the
    fine grid: the pooled class mass comes from one ``bincount`` of the NLCD indices
    (pooling the remapped map equals remapping the pooled class fractions), the
    normalised blur and, without auxiliary layers, the smoothing onto the simplex run on
    the coarse canvas, and bilinear upsampling (a convex combination) keeps pixels on the
    simplex.
    """
    h, w = nlcd_index.shape
    sig = (float(config.sigma), float(config.sigma))
    ksize = _pair_kernel(config.kernel_size, sig)
    f = fast_blur_factor(config.sigma, ksize[0])
    hc, wc = pyramid_canvas(h, w, (f, f))
    n = matrix.shape[1]
    cell_r = (torch.arange(h) // f + 1) * wc
    cell_c = torch.arange(w) // f + 1
    code = torch.where(valid, nlcd_index.long(), n)  # pixels without information: bin n
    key = (cell_r[:, None] + cell_c[None, :]) * (n + 1) + code
    counts = torch.bincount(key.view(-1), minlength=hc * wc * (n + 1)).view(hc * wc, n + 1)
    fractions = counts[:, :n].T.float() / (f * f)  # (n, cells) area fractions per NLCD index
    # matrix @ fractions, summed in a fixed order: a matrix product's rounding depends on
    # the number of torch threads, and a prior must be the same bytes however it is built
    m = matrix.float()
    mass = m[:, :1] * fractions[:1]
    for j in range(1, n):
        mass.addcmul_(m[:, j : j + 1], fractions[j : j + 1])
    mass = mass.view(-1, hc, wc)
    weight = fractions.sum(dim=0).view(1, hc, wc)
    both = pyramid_blur_coarse(torch.cat([mass, weight])[None], ksize, sig, (f, f))[0]
    num, den = both[:-1], both[-1:]
    seen = den > _APPROX_MIN_WEIGHT
    blurred = (torch.where(seen, num, 0) / torch.where(seen, den, 1)).clamp_min(0)
    if aux:
        return _fuse_and_normalise(pyramid_up(blurred[None], (f, f), h, w)[0], config, aux, crop)
    # onto the simplex (as to_simplex; the blurred mass is finite and >= 0 here)
    total = blurred.sum(dim=0, keepdim=True)
    ok_c = total > 0
    probs_c = (blurred / torch.where(ok_c, total, 1)).add_(config.eps) / (1 + len(num) * config.eps)
    probs_c *= ok_c
    probs = pyramid_up(probs_c[None], (f, f), h, w)[0]
    if crop:
        probs = probs[:, crop:-crop, crop:-crop]
    if bool(ok_c.all()):
        return probs, torch.ones(probs.shape[1:], dtype=torch.bool)
    # next to pixels without information, the interpolation mixes in zero vectors
    total = probs.sum(dim=0)
    ok = total > 1e-6
    return torch.where(ok, probs / torch.where(ok, total, 1), 0), ok


def build_tile_prior(
    tile: Path,
    out: Path,
    nlcd: GeoSource,
    matrix: np.ndarray,
    config: PriorConfig,
    aux: dict[str, GeoSource] | None = None,
    key: str = "",
    progress: Callable[[int], object] | None = None,
) -> Path:
    """Write the prior of one imagery tile on exactly its grid (CRS, transform, shape).

    The file is written under a temporary name, read back and renamed when complete
    (:func:`~torchgeo_lsr.outputs.atomic_output`).
    """
    scheme = config.scheme
    grid = Grid.of_raster(tile)
    m = torch.from_numpy(matrix).float()
    margin, win = config.margin, config.window
    # ZSTD with a predictor writes smooth priors several times faster than deflate, and
    # smaller (prior GeoTIFFs are read by rasterio/GDAL >= 2.3, which all decode ZSTD)
    profile: dict[str, Any] = dict(
        compress="zstd",
        zstd_level=1,
        predictor=2 if config.dtype == "uint8" else 3,
        num_threads=_WORKER.get("gdal_threads", "ALL_CPUS"),  # a worker: its share
    )
    with prior_writer(out, grid, scheme, key=key, dtype=config.dtype, **profile) as dst:
        for window, padded in grid.windows(win, margin):
            sample = nlcd[padded]
            layers = {name: src[padded]["mask"] > 0 for name, src in (aux or {}).items()}
            probs, _ = prior_window(sample["mask"], sample["valid"], m, config, layers, margin)
            dst.write(probs, window)
            if progress is not None:
                progress(int(window.width * window.height))
    return out


def plan_tiles(
    tiles: Sequence[Path], out_dir: Path, params: object, report: PriorReport
) -> list[tuple[Path, Path, str]]:
    """The tiles to (re)build, as ``(tile, output, key)``; the others go to ``report.skipped``.

    A tile is rebuilt when its output is missing or carries another key. The key hashes
    ``params`` (parameters and input fingerprints) with the tile's own fingerprint, so a
    changed parameter, input or tile rebuilds just what it affects.
    """
    todo: list[tuple[Path, Path, str]] = []
    for tile in tiles:
        out = out_dir / (tile.stem + ".tif")
        key = content_key(params, fingerprint([tile]), 1)
        if out.exists() and stored_key(out) == key:
            report.skipped.append(out)
        else:
            todo.append((tile, out, key))
    return todo


def build_region_priors(
    region: Region | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: PriorConfig | None = None,
    progress: bool | None = None,
    *,
    workers: int = 1,
) -> PriorReport:
    """Build one prior GeoTIFF per imagery tile of ``region`` into ``out_dir``.

    Outputs are named like their imagery tile. A tile whose output exists with the same
    input/parameter key is skipped (resume); otherwise it is (re)built.

    Args:
        region: an open :class:`~torchgeo_lsr.region.Region`, a region directory
            (``naip/``, ``nlcd/``, optional ``osm/``, ``buildings/``, ``labels/``) or a
            Chesapeake CVPR release (every tile; open a :class:`Region` to select).
        out_dir: where to write the priors.
        config: prior parameters (default :class:`PriorConfig`).
        progress: False shows no progress, True shows it, None decides from the
            verbosity (:mod:`torchgeo_lsr.progress`): tiles done/total with an ETA,
            reused tiles said so.
        workers: processes building tiles (1 to
            :data:`~torchgeo_lsr.priors.config.MAX_WORKERS`). 1 (default) builds them
            one after the other in this process; more starts a pool of that many
            processes (at most one per tile to build), each building whole tiles with
            ``cpu_count // workers`` torch threads. The files are byte for byte the
            same whatever the number, which is not part of their key. An error in a
            worker is raised here as it would be without workers; on an error or a
            signal the workers are stopped and leave no half-written file.

    Returns:
        :class:`PriorReport` with the written and skipped files (in tile order) and the
        matrix used.

    Raises:
        ValueError: on a bad ``workers``, a tile no NLCD file covers, or bad inputs.
    """
    check_workers(workers)
    config = config or PriorConfig()
    region, out_dir = Region.open(region), Path(out_dir)
    nlcd = region.nlcd()
    in_pool = workers > 1 and set(config.aux) <= set(region.available_aux())
    aux = None if in_pool else region.aux_sources(config.aux)  # workers open their own
    matrix = resolve_cooccurrence(config, region)
    params = dataclasses.asdict(config) | {
        "fusion": config.fusion_spec(),
        "matrix": hashlib.sha256(matrix.tobytes()).hexdigest(),
    }
    inputs = fingerprint(region.input_files(config.aux, config.cooccurrence == "estimate"))
    report = PriorReport(matrix=matrix)
    todo = plan_tiles(list(region.images), out_dir, [params, inputs], report)
    for tile, _, _ in todo:  # refuse before anything is written
        grid = Grid.of_raster(tile)
        if isinstance(nlcd, RasterSource) and not nlcd.files_for(grid):
            raise ValueError(
                f"{tile}: no NLCD file of {region.root} overlaps this tile "
                f"({grid.bounds} in {grid.crs}); the NLCD must cover the imagery"
            )
    done = len(report.skipped)
    with Progress("prior", done + len(todo), "tiles", reused=done, progress=progress) as bar:
        if in_pool and len(todo) > 1:
            written = _build_in_pool(region, todo, matrix, config, min(workers, len(todo)), bar)
            report.written.extend(written)
            return report
        aux = region.aux_sources(config.aux) if aux is None else aux
        for tile, out, key in todo:
            pixels = math.prod(Grid.of_raster(tile).shape)  # windows: fractions of a tile

            def windows(n: int, pixels: int = pixels, name: str = tile.name) -> None:
                bar.update(n / pixels, item=name)

            build_tile_prior(tile, out, nlcd, matrix, config, aux, key, windows)
            report.written.append(out)
            bar.update_to(done + len(report.written))
    return report


# ------------------------------------------------------------------- worker processes
#: How the worker processes start (see :func:`_build_in_pool`): ``forkserver`` forks them
#: from a server process that has imported this module once (and is reused by later pools
#: of the same process); ``spawn`` would import torch and the geo stack in each worker.
#: Never ``fork``: forking a process whose torch or GDAL threads run is unsafe.
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"

#: Seconds between two looks at the workers' progress messages.
_POLL_S = 0.2


class _Stopped(BaseException):
    """Raised in a worker by SIGTERM (the parent stopping the pool) while it builds a tile."""


class _Terminated(BaseException):
    """Raised in the parent by SIGTERM while the pool runs, when nobody else handles it."""


#: A worker process's sources and settings (set by :func:`_init_worker`).
_WORKER: dict[str, Any] = {}


def _cpu_count() -> int:
    """CPUs this process may run on (its affinity: a SLURM or taskset allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (a killed ``prior``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def _stop_worker(signum: int, frame: FrameType | None) -> None:
    if _WORKER.get("busy"):
        raise _Stopped  # atomic_output removes the half-written file on the way out
    os._exit(128 + signum)


def _init_worker(
    region: Region, matrix: np.ndarray, config: PriorConfig, threads: int, messages: Any
) -> None:
    """A worker's start: signals, torch threads, what its tiles need (opened when used)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    signal.signal(signal.SIGTERM, _stop_worker)
    _die_with_parent()
    torch.set_num_threads(threads)
    _WORKER.clear()
    _WORKER.update(region=region, matrix=matrix, config=config, messages=messages, busy=False)
    _WORKER["gdal_threads"] = str(threads)  # ZSTD compression threads (the bytes do not change)


def _worker_sources() -> tuple[GeoSource, dict[str, GeoSource]]:
    """The worker's NLCD and aux sources, opened from its region at the first tile."""
    if "nlcd" not in _WORKER:
        region: Region = _WORKER["region"]
        config: PriorConfig = _WORKER["config"]
        _WORKER["nlcd"] = region.nlcd()
        _WORKER["aux"] = region.aux_sources(config.aux)
    return _WORKER["nlcd"], _WORKER["aux"]


def _portable(err: Exception) -> Exception:
    """``err`` if it reaches the parent unchanged; else its builtin kind with its text.

    Pickling an exception calls its class with ``args``, which some classes take to mean
    something else (TorchGeo's ``DatasetNotFoundError`` says "Dataset not found." then).
    """
    try:
        copy = pickle.loads(pickle.dumps(err))
        if type(copy) is type(err) and str(copy) == str(err):
            return err
    except Exception:
        pass
    kind = next(c for c in type(err).__mro__ if c.__module__ == "builtins")
    made: Exception = kind(str(err))
    return made


def _worker_build(index: int, tile: Path, out: Path, key: str) -> Path:
    """Build one tile in a worker (:func:`build_tile_prior`), reporting its windows."""
    messages = _WORKER["messages"]
    _WORKER["busy"] = True
    try:
        nlcd, aux = _worker_sources()
        pixels = math.prod(Grid.of_raster(tile).shape)

        def windows(n: int) -> None:
            messages.put((index, n / pixels))

        config: PriorConfig = _WORKER["config"]
        return build_tile_prior(tile, out, nlcd, _WORKER["matrix"], config, aux, key, windows)
    except _Stopped:
        os._exit(128 + signal.SIGTERM)
    except Exception as err:
        portable = _portable(err)
        if portable is err:
            raise
        raise portable from None
    finally:
        _WORKER["busy"] = False


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the pool runs, SIGTERM stops it and exits 143, unless someone handles it.

    The ``prior`` command leaves SIGTERM to its default (the process ends at once), which
    would leave the workers running; here the workers are stopped first, then
    ``SystemExit(143)`` ends the command (releasing its output lock on the way). A handler
    already installed (``map``'s :func:`~torchgeo_lsr.interrupt.graceful_signals`) stays.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_pool(pool: ProcessPoolExecutor, out_dir: Path) -> None:
    """Cancel what has not started and stop the workers now (SIGTERM, then SIGKILL).

    A worker stopped by SIGTERM removes its partial file; one that could not (killed,
    or dead of its own) leaves it, and it is removed here.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()  # a busy worker removes its partial file, then exits
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
    pool.shutdown(wait=True)
    remove_stale_partials(out_dir)  # of dead processes only


def _build_in_pool(
    region: Region,
    todo: Sequence[tuple[Path, Path, str]],
    matrix: np.ndarray,
    config: PriorConfig,
    workers: int,
    bar: Progress,
) -> list[Path]:
    """Build ``todo`` in ``workers`` processes; the outputs in ``todo``'s order.

    The workers send the fraction of each window they finish; ``bar`` counts tiles done
    plus the fractions of the tiles under way.
    """
    context = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":
        context.set_forkserver_preload([__name__])  # imported once, in the server
    messages = context.Queue()
    threads = max(1, _cpu_count() // workers)
    start = bar.done
    finished: dict[int, Path] = {}
    partial: dict[int, float] = {}

    def show(index: int | None = None) -> None:
        item = None if index is None else todo[index][0].name
        bar.update_to(start + len(finished) + sum(partial.values()), item=item)

    with _sigterm_raises():
        pool = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(region, matrix, config, threads, messages),
        )
        try:
            futures: dict[Future[Path], int] = {
                pool.submit(_worker_build, i, tile, out, key): i
                for i, (tile, out, key) in enumerate(todo)
            }
            pending = set(futures)
            while pending:
                ready, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
                last = None
                while not messages.empty():
                    try:
                        index, fraction = messages.get_nowait()
                    except queue.Empty:  # another look next time
                        break
                    if index not in finished:
                        partial[index] = min(1.0, partial.get(index, 0.0) + fraction)
                        last = index
                for future in sorted(ready, key=futures.__getitem__):
                    index = futures[future]
                    finished[index] = future.result()  # a worker's error is raised here
                    partial.pop(index, None)
                    last = index
                if last is not None:
                    show(last)
        except BrokenProcessPool:
            _stop_pool(pool, todo[0][1].parent)
            raise ChildProcessError(
                "prior: a worker process died (killed, or out of memory: fewer --workers need "
                "less; from Python, a script that starts workers needs an "
                "`if __name__ == '__main__':` guard); rerun to resume"
            ) from None
        except BaseException:
            _stop_pool(pool, todo[0][1].parent)
            raise
        finally:
            messages.close()
            messages.cancel_join_thread()
        pool.shutdown(wait=True)
    return [finished[i] for i in sorted(finished)]


def build_label_priors(
    region: Region | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    classes: str | ClassScheme = "enviroatlas5",
    label_scheme: LabelScheme | None = None,
) -> PriorReport:
    """One-hot "priors" of the region's own hi-res labels, one GeoTIFF per imagery tile.

    Not a weak prior: training on it is supervised learning (cross-entropy on a one-hot
    prior is the usual loss), the upper bound that benchmarks compare weak supervision
    with. Pixels without a label are all zero (no information). Files and keys as
    :func:`build_region_priors` writes them.

    Raises:
        FileNotFoundError: if the region has no labels.
    """
    region, out_dir = Region.open(region), Path(out_dir)
    if region.labels is None:
        raise FileNotFoundError(f"region {region.root}: a prior from labels needs labels")
    scheme = get_scheme(classes) if isinstance(classes, str) else classes
    coding = label_scheme or region.label_scheme
    report = PriorReport()
    params = ["labels", scheme.name, coding, fingerprint(region.input_files(labels=True))]
    for tile, out, key in plan_tiles(list(region.images), out_dir, params, report):
        grid = Grid.of_raster(tile)
        target = region.read_labels(tile.stem, grid, scheme, coding)
        one_hot = (target[None] == np.arange(len(scheme))[:, None, None]).astype(np.float32)
        write_prior(out, one_hot, grid, scheme, key=key, dtype="uint8", compress="zstd")
        report.written.append(out)
    return report
