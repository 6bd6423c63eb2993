#!/usr/bin/env python3
"""Seconds per training step of ``torchgeo-lsr map``'s training loop against a bare loop.

Both run in one process on the generated sample city (seed 0, 4 tiles of 512 px) with
its ``handmade`` prior, for two budgets: ``demo`` (``configs/map/demo.yaml``: 96 px
patches, batch 8, FCN 5 x 16; :class:`~torchgeo_lsr.mapping.MapConfig`'s defaults, the CPU
budget) and ``larger`` (:data:`LARGER`: 128 px, batch 16, FCN 5 x 32, the defaults before
issue 18), each run ``--repeats`` times, ours and bare
interleaved:

* ``ours``: :func:`torchgeo_lsr.mapping.training.train` exactly as ``map`` runs it
  (``LSRDataModule`` with its mixed-tile sampler and dihedral augmentation,
  ``LabelSuperResolutionTask`` through Lightning, validation every epoch of 100 steps,
  ``last.ckpt`` every ``min(50, steps // 4)`` steps, CSV logging, ``deterministic=True``).
  A callback records ``perf_counter`` at every ``on_train_batch_start``; the median
  interval after the first ``WARM`` steps is ``ours_s_per_step`` (steady state).
  ``ours_fit_s_per_step`` is the whole ``train()`` call (tiles read, validation,
  checkpoints, ``final.ckpt``) over the steps: what a user pays.
* ``bare``: the same FCN, batch, patch size, loss (``make_loss`` as the task builds it,
  its warm-up loss for the same steps, the task's softmax and border crop) and AdamW on
  batches already in memory (patches cut from the same tiles by the same sampler and
  normalised once), a plain ``for`` loop of ``zero_grad`` / ``backward`` / ``step``, its
  input in the task's memory format (channels-last on the CPU when
  ``LabelSuperResolutionTask.channels_last``; ``bare_memory_format`` in the JSON).

``ratio = ours_s_per_step / bare_s_per_step`` (the issue's goal: <= 1.2). Every figure
also comes as CPU seconds of this process (``time.process_time``, all its threads):
``cpu_s_per_step``, ``cpu_ratio``; on a loaded machine, where wall times swing with the
other work, they are steadier (two threads spinning at a barrier still count).

Then CPU variants of the bare loop on the demo budget (both budgets without
``--quick``), each against the plain (NCHW) bare loop in the same run, interleaved:
intra-op threads 1 vs 2, inter-op threads 1 (a child process: the inter-op pool is fixed
once used), ``channels_last`` (model and input; ``_input``: the input only, as the task
does), ``torch.use_deterministic_algorithms`` as ``Trainer(deterministic=True)`` sets it
(with and without its NaN fill of new tensors), bf16 autocast (``precision: bf16-mixed``
in a map config), ``torch.compile`` (compile time apart from the steady state; a failure
is recorded, not raised) and batches from ``LSRDataModule``'s loader with 0, 1 or 2
workers (``pin_memory`` only speeds host to CUDA copies: nothing to measure on a CPU).
Each records its median s/step, its speed-up over the plain loop and how far its losses
drift from the plain loop's.

Usage: ``python benchmarks/training.py [--quick] [--repeats N] [--threads N]
[--variants NAME ...] [--budgets demo larger] [--out FILE.json]``. On a loaded machine two
threads wait on each other: compare figures of one run only. On 2 CPU cores ``--quick`` takes
about 2 minutes, ``--budgets demo`` about 4 (``results/training.json``), and the full run of
both budgets more than an hour (3 repeats of 600 steps of the larger budget, ours and bare).

Writes JSON: ``budgets`` (name -> ``settings``, ``ours_s_per_step``, ``bare_s_per_step``,
``ratio``, ``ours_fit_s_per_step``, ``bare_total_s_per_step``, per-repeat ``runs``,
``variants`` name -> ``s_per_step``, ``speedup``, ``max_rel_loss_diff``), top-level
``ratio`` (the demo budget's), ``goal_ratio``, ``versions`` (python, torch, torchgeo,
lightning), ``threads`` (intra- and inter-op) and ``cpu``; with ``--profile``, per budget
``ours_profile_s``: Lightning ``SimpleProfiler`` totals of one more run of ours (data,
normalisation and augmentation, forward + loss, backward, validation, checkpoints).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from itertools import islice, pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from torchgeo_lsr.mapping import MapConfig
from torchgeo_lsr.outputs import write_json

DEMO_CONFIG = Path(__file__).parents[1] / "configs" / "map" / "demo.yaml"
#: Steps left out of the steady-state medians (allocation, first checkpoint, workers).
WARM = 5
GOAL_RATIO = 1.2
#: Steps of each budget with --quick (no warm-up epoch: it would take every step).
QUICK_STEPS = {"demo": 60, "larger": 30}
#: The ``larger`` budget: MapConfig's defaults before issue 18 made them the demo's.
LARGER = {"steps": 600, "patch_size": 128, "batch_size": 16, "num_filters": 32}
#: Distinct in-memory batches the bare loop cycles through.
BARE_BATCHES = 32
#: Steps of each bare run of a variant (--quick, else).
VARIANT_STEPS = {True: 25, False: 60}


def budget_config(name: str, quick: bool) -> MapConfig:
    """The MapConfig of a budget on the CPU (``--quick``: fewer steps, no warm-up)."""
    base = MapConfig.from_yaml(DEMO_CONFIG) if name == "demo" else MapConfig(**LARGER)
    config = dataclasses.replace(base, accelerator="cpu")
    if quick:
        config = dataclasses.replace(config, steps=QUICK_STEPS[name], warmup_epochs=0)
    return config


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def _steady(stamps: list[float]) -> list[float]:
    """Per-step intervals of consecutive time stamps, the first WARM steps left out."""
    intervals = [b - a for a, b in pairwise(stamps)]
    return intervals[WARM:] if len(intervals) > WARM + 2 else intervals


# --------------------------------------------------------------------- ours
def _step_timer() -> tuple[Any, list[float], list[float]]:
    from lightning.pytorch import Callback

    stamps: list[float] = []
    cpu: list[float] = []

    class StepTimer(Callback):  # type: ignore[misc]
        def on_train_batch_start(self, *args: Any) -> None:
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())

        def on_train_end(self, *args: Any) -> None:
            stamps.append(time.perf_counter())  # the last step's end
            cpu.append(time.process_time())

    return StepTimer(), stamps, cpu


#: Lightning profiler actions of a --profile run (substrings) -> the JSON's names.
PROFILE_ACTIONS = {
    "train_dataloader_next": "data_next",
    "on_after_batch_transfer": "normalize_augment",
    "Strategy]SingleDeviceStrategy.training_step": "forward_loss",
    "Strategy]SingleDeviceStrategy.backward": "backward",
    "optimizer_step": "optimizer_step_with_forward_backward",
    "validation_step": "validation_steps",
    "save_checkpoint": "save_checkpoint",
    "[Callback]ResumeCheckpoint.on_train_batch_end": "resume_checkpoint_callback",
    "run_training_epoch": "training_epochs",
}


def run_ours(
    region: Path, priors: Path, out: Path, config: MapConfig, profile: bool = False
) -> dict[str, Any]:
    """One ``train()`` as ``map`` runs it; its steady and whole-call seconds per step.

    ``profile``: under Lightning's ``SimpleProfiler``, whose totals per action (seconds,
    :data:`PROFILE_ACTIONS`) come back under ``"profile"``.
    """
    from lightning.pytorch.profilers import SimpleProfiler

    from torchgeo_lsr.mapping.training import train

    timer, stamps, cpu = _step_timer()
    original = MapConfig.trainer
    profiler = SimpleProfiler() if profile else None

    def trainer(self: MapConfig, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), timer]
        if profiler is not None:
            kwargs["profiler"] = profiler
        return original(self, **kwargs)

    shutil.rmtree(out, ignore_errors=True)  # a finished run would be reused, not trained
    start = time.perf_counter()
    with mock.patch.object(MapConfig, "trainer", trainer):
        train(region, priors, out, config, progress=False)
    total = time.perf_counter() - start
    steady = _steady(stamps)
    result: dict[str, Any] = {
        "s_per_step": _median(steady),
        "cpu_s_per_step": _median(_steady(cpu)),
        "mean_s_per_step": sum(steady) / len(steady),
        "fit_s_per_step": total / config.steps,
        "train_call_s": total,
        "steps_timed": len(steady),
    }
    if profiler is not None:
        durations = profiler.recorded_durations
        result["profile"] = {
            name: sum(sum(d) for action, d in durations.items() if key in action)
            for key, name in PROFILE_ACTIONS.items()
        }
    return result


# --------------------------------------------------------------------- bare
def _datamodule(region: Path, priors: Path, config: MapConfig, num_workers: int = 0) -> Any:
    from torchgeo_lsr.datamodules import LSRDataModule
    from torchgeo_lsr.mapping.config import Normalization, prior_files
    from torchgeo_lsr.region import Region

    opened = Region.open(region)
    norm = Normalization.of(opened, config.normalize)
    return LSRDataModule(
        images=list(opened.images),
        priors=prior_files(opened, priors),
        mean=norm.mean,
        std=norm.std,
        patch_size=config.patch_size,
        batch_size=config.batch_size,
        num_workers=num_workers,
        train_length=config.epoch_steps() * config.batch_size,
        train_sampler=config.train_sampler,
        seed=config.seed,
    )


def bare_batches(dm: Any, n: int | None = None) -> list[dict[str, torch.Tensor]]:
    """``n`` (:data:`BARE_BATCHES`) training batches of the data module, normalised, in memory."""
    n = n or BARE_BATCHES
    dm.setup("fit")
    return [
        {k: v for k, v in dm.on_after_batch_transfer(b, 0).items() if k in ("image", "prior")}
        for b in islice(dm.train_dataloader(), n)
    ]


def _loader_batches(dm: Any) -> Iterator[dict[str, torch.Tensor]]:
    """The data module's training batches, epoch after epoch, normalised per batch."""
    dm.setup("fit")
    loader = dm.train_dataloader()
    while True:
        for batch in loader:
            yield dm.on_after_batch_transfer(batch, 0)


@dataclasses.dataclass
class Variant:
    """How a bare run differs from the plain loop."""

    threads: int | None = None
    channels_last: bool = False
    channels_last_model: bool = True  # with channels_last: the weights too, not only the input
    deterministic: bool = (
        False  # torch.use_deterministic_algorithms, as Trainer(deterministic=True)
    )
    fill_uninitialized: bool = True  # its NaN fill of new tensors (with deterministic)
    bf16: bool = False
    compile: bool = False
    workers: int | None = None  # batches from the data module's loader with this many


def run_bare(
    config: MapConfig,
    batches: list[dict[str, torch.Tensor]],
    steps: int,
    variant: Variant | None = None,
    source: Iterator[dict[str, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """The plain PyTorch loop; per-step times, losses and (compiled) the first step's time."""
    from lightning.pytorch import seed_everything

    from torchgeo_lsr.losses import DEFAULT_SMOOTHING, make_loss
    from torchgeo_lsr.models import FCN

    variant = variant or Variant()
    seed_everything(config.seed, verbose=False)
    bands, classes = batches[0]["image"].shape[1], batches[0]["prior"].shape[1]
    model = FCN(bands, classes, config.num_filters, config.num_layers)
    smoothing = {"prior_smoothing": DEFAULT_SMOOTHING, "output_smoothing": DEFAULT_SMOOTHING}
    criterion = make_loss(
        config.loss,  # type: ignore[arg-type]
        **smoothing,
        momentum=config.denominator_momentum,
        num_classes=classes,
    )
    warmup = make_loss(config.warmup_loss, **smoothing)  # type: ignore[arg-type]
    warmup_steps = config.warmup() * config.epoch_steps()
    border = (model.receptive_field - 1) // 2
    fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
    if variant.channels_last_model:
        model = model.to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if variant.compile:
        forward = torch.compile(model)  # type: ignore[assignment]
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if variant.bf16
        else contextlib.nullcontext
    )
    if variant.channels_last:
        batches = [{**b, "image": b["image"].contiguous(memory_format=fmt)} for b in batches]
    threads = torch.get_num_threads()
    if variant.threads is not None:
        torch.set_num_threads(variant.threads)
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(variant.deterministic)
    torch.utils.deterministic.fill_uninitialized_memory = variant.fill_uninitialized  # type: ignore[attr-defined]
    stamps, cpu, losses = [time.perf_counter()], [time.process_time()], []
    try:
        for i in range(steps):
            batch = next(source) if source is not None else batches[i % len(batches)]
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                logits = forward(batch["image"])
            q = torch.softmax(logits.float(), dim=1)[..., border:-border, border:-border]
            prior = batch["prior"][..., border:-border, border:-border]
            loss = (warmup if i < warmup_steps else criterion)(q, prior, prior.sum(dim=1) > 0)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]
    steady = _steady(stamps)
    return {
        "s_per_step": _median(steady),
        "cpu_s_per_step": _median(_steady(cpu)),
        "total_s_per_step": (stamps[-1] - stamps[0]) / steps,
        "first_step_s": stamps[1] - stamps[0],
        "losses": losses,
    }


def _rel_diff(losses: list[float], reference: list[float]) -> float:
    return max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, reference, strict=False))


def _child_bare(region: Path, priors: Path, budget: str, quick: bool, steps: int) -> dict[str, Any]:
    """The plain loop in a fresh interpreter with one inter-op thread."""
    code = (
        "import sys, json, torch; torch.set_num_interop_threads(1); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import training as t; "
        f"c = t.budget_config({budget!r}, {quick!r}); "
        f"b = t.bare_batches(t._datamodule(t.Path({str(region)!r}), t.Path({str(priors)!r}), c)); "
        f"r = t.run_bare(c, b, {steps}); r['interop'] = torch.get_num_interop_threads(); "
        "print('JSON' + json.dumps(r))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("JSON")]
    if done.returncode or not lines:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "no output")
    result: dict[str, Any] = json.loads(lines[-1][4:])
    return result


def variants(
    region: Path,
    priors: Path,
    budget: str,
    config: MapConfig,
    quick: bool,
    repeats: int,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Each CPU variant of the bare loop against the plain loop, interleaved, medians."""
    dm = _datamodule(region, priors, config)
    batches = bare_batches(dm)
    steps = VARIANT_STEPS[quick]
    named = {
        "plain": Variant(),
        "threads_1": Variant(threads=1),
        "threads_2": Variant(threads=2),
        "channels_last": Variant(channels_last=True),
        "channels_last_input": Variant(channels_last=True, channels_last_model=False),
        "deterministic": Variant(deterministic=True),
        "deterministic_no_fill": Variant(deterministic=True, fill_uninitialized=False),
        "bf16_autocast": Variant(bf16=True),
        "channels_last_bf16": Variant(channels_last=True, bf16=True),
        "loader_workers_0": Variant(workers=0),
        "loader_workers_1": Variant(workers=1),
        "loader_workers_2": Variant(workers=2),
    }
    if only is not None:
        named = {k: v for k, v in named.items() if k in only or k == "plain"}
    child = only is None or "interop_1" in only
    times: dict[str, list[float]] = {
        name: [] for name in [*named, "interop_1"][: len(named) + child]
    }
    cpu: dict[str, list[float]] = {name: [] for name in times}
    losses: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    loaders = {}
    for name, v in named.items():
        if v.workers is not None:
            loader_dm = _datamodule(region, priors, config, v.workers)
            loader_dm.tiles = dm.tiles  # read once
            loaders[name] = _loader_batches(loader_dm)
    for _ in range(repeats):
        for name, v in named.items():
            result = run_bare(config, batches, steps, v, loaders.get(name))
            times[name].append(result["s_per_step"])
            cpu[name].append(result["cpu_s_per_step"])
            losses.setdefault(name, result["losses"])
        if not child:
            continue
        try:
            result = _child_bare(region, priors, budget, quick, steps)
            times["interop_1"].append(result["s_per_step"])
            cpu["interop_1"].append(result["cpu_s_per_step"])
        except Exception as err:
            errors["interop_1"] = f"{type(err).__name__}: {err}"
    plain = _median(times["plain"])
    out: dict[str, Any] = {}
    for name, ts in times.items():
        if not ts:
            out[name] = {"error": errors.get(name, "not run")}
            continue
        s = _median(ts)
        out[name] = {"s_per_step": s, "speedup": plain / s, "runs": ts}
        out[name] |= {"cpu_s_per_step": _median(cpu[name]), "cpu_runs": cpu[name]}
        if name in losses:
            out[name]["max_rel_loss_diff"] = _rel_diff(losses[name], losses["plain"])
    if child:
        out["interop_1"]["note"] = "a child process (a fresh interpreter), against plain in-process"
    for name in [
        k for k in ("loader_workers_0", "loader_workers_1", "loader_workers_2") if k in out
    ]:
        out[name]["note"] = (
            "batches from LSRDataModule's loader (no augmentation), normalised per batch; "
            "the same sampler and seed: the first repeat's batches are plain's"
        )
    out["pin_memory"] = {
        "note": "not measured: pinning speeds host-to-CUDA copies only; on the CPU there is "
        "no copy (PyTorch ignores pin_memory without an accelerator)"
    }
    if only is None or "compile" in only:
        out["compile"] = _compile_variant(config, batches, steps)
    return out


def _compile_variant(
    config: MapConfig, batches: list[dict[str, torch.Tensor]], steps: int
) -> dict[str, Any]:
    """``torch.compile`` of the model, against a plain run right after it."""
    try:
        start = time.perf_counter()
        compiled = run_bare(config, batches, steps, Variant(compile=True))
        wall = time.perf_counter() - start
    except Exception as err:
        return {
            "error": f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}",
            "traceback_tail": traceback.format_exc().strip().splitlines()[-3:],
        }
    plain = run_bare(config, batches, steps)
    return {
        "s_per_step": compiled["s_per_step"],
        "cpu_s_per_step": compiled["cpu_s_per_step"],
        "plain_cpu_s_per_step": plain["cpu_s_per_step"],
        "speedup": plain["s_per_step"] / compiled["s_per_step"],
        "plain_s_per_step": plain["s_per_step"],
        "compile_s": compiled["first_step_s"] - compiled["s_per_step"],
        "wall_s": wall,
        "max_rel_loss_diff": _rel_diff(compiled["losses"], plain["losses"]),
        "note": "compile_s: the first step's time beyond a steady step (compilation; "
        "Inductor's on-disk cache makes a second run's far shorter)",
    }


# --------------------------------------------------------------------- main
def _versions() -> dict[str, str]:
    import lightning
    import torchgeo

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchgeo": torchgeo.__version__,
        "lightning": lightning.__version__,
    }


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time ours and bare per budget, then the bare loop's CPU variants; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"fewer steps ({QUICK_STEPS})")
    parser.add_argument("--repeats", type=int, default=None, help="runs each (default 2, 3)")
    parser.add_argument("--budgets", nargs="+", default=["demo", "larger"])
    parser.add_argument(
        "--variant-budgets", nargs="*", default=None, help="default: demo (--quick), else all"
    )
    parser.add_argument("--variants", nargs="+", help="only these variants (and plain)")
    parser.add_argument(
        "--profile", action="store_true", help="one more run of ours under SimpleProfiler"
    )
    parser.add_argument("--tiles", type=int, default=4, help="sample city tiles")
    parser.add_argument("--tile-size", type=int, default=512, help="sample city tile side, px")
    parser.add_argument(
        "--threads", type=int, help="torch.set_num_threads for the whole run (default: torch's)"
    )
    parser.add_argument("--work", type=Path, help="keep the region and runs here")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "training.json"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 3)
    variant_budgets = args.variant_budgets
    if variant_budgets is None:
        variant_budgets = ["demo"] if args.quick else list(args.budgets)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        from torchgeo_lsr.priors.builder import build_region_priors
        from torchgeo_lsr.region import Region
        from torchgeo_lsr.sample_city import make_sample_city

        region_dir = work / "region"
        if not (region_dir / "city.json").exists():
            make_sample_city(
                region_dir,
                seed=0,
                tiles=args.tiles,
                size=args.tile_size,
                overwrite=region_dir.exists(),
                progress=False,
            )
        priors = work / "prior"
        budgets: dict[str, Any] = {}
        from torchgeo_lsr.trainers import LabelSuperResolutionTask

        task_channels_last = bool(getattr(LabelSuperResolutionTask, "channels_last", False))
        for name in args.budgets:
            config = budget_config(name, args.quick)
            region = Region.open(region_dir)
            build_region_priors(
                region, priors, config.prior_config(config.prior_aux(region)), progress=False
            )
            batches = bare_batches(_datamodule(region_dir, priors, config))
            # the bare loop in the task's memory format (channels-last input on the CPU)
            same = Variant(channels_last=task_channels_last, channels_last_model=False)
            ours, bare = [], []
            for r in range(repeats):  # interleaved
                out = work / f"ours_{name}_{r}"
                ours.append(run_ours(region_dir, priors, out, config))
                bare.append(run_bare(config, batches, config.steps, same))
            profiled = None
            if args.profile:  # apart from the timed runs: the profiler costs a little
                profiled = run_ours(region_dir, priors, work / f"ours_{name}_p", config, True)
            ours_s = _median([o["s_per_step"] for o in ours])
            bare_s = _median([b["s_per_step"] for b in bare])
            ours_cpu = _median([o["cpu_s_per_step"] for o in ours])
            bare_cpu = _median([b["cpu_s_per_step"] for b in bare])
            budgets[name] = {
                "settings": {
                    k: getattr(config, k)
                    for k in (
                        "steps",
                        "patch_size",
                        "batch_size",
                        "num_filters",
                        "num_layers",
                        "loss",
                        "warmup_loss",
                        "train_sampler",
                        "lr_schedule",
                    )
                }
                | {"warmup_steps": config.warmup() * config.epoch_steps(), "warm_steps": WARM},
                "ours_s_per_step": ours_s,
                "bare_s_per_step": bare_s,
                "ratio": ours_s / bare_s,
                "ours_cpu_s_per_step": ours_cpu,
                "bare_cpu_s_per_step": bare_cpu,
                "cpu_ratio": ours_cpu / bare_cpu,
                "ours_fit_s_per_step": _median([o["fit_s_per_step"] for o in ours]),
                "bare_total_s_per_step": _median([b["total_s_per_step"] for b in bare]),
                "runs": {
                    "ours": ours,
                    "bare": [{k: v for k, v in b.items() if k != "losses"} for b in bare],
                },
            }
            if profiled is not None:
                budgets[name]["ours_profile_s"] = profiled["profile"] | {
                    "train_call_s": profiled["train_call_s"]
                }
            if name in variant_budgets:
                budgets[name]["variants"] = variants(
                    region_dir, priors, name, config, args.quick, repeats, args.variants
                )
    first = "demo" if "demo" in budgets else next(iter(budgets))
    result = {
        "benchmark": "training",
        "quick": args.quick,
        "repeats": repeats,
        "ratio": budgets[first]["ratio"],
        "bare_memory_format": "channels_last" if task_channels_last else "contiguous",
        "tiles": args.tiles,
        "tile_size_px": args.tile_size,
        "ratio_budget": first,
        "goal_ratio": GOAL_RATIO,
        "budgets": budgets,
        "versions": _versions(),
        "threads": {
            "intra_op": torch.get_num_threads(),
            "inter_op": torch.get_num_interop_threads(),
        },
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - started,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)  # atomic, read back
    return result


if __name__ == "__main__":
    main()
