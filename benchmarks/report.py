#!/usr/bin/env python3
"""Regenerate ``benchmarks/RESULTS.md`` from the JSON files in ``benchmarks/results/``.

Run by ``make bench`` after the benchmarks; every table names the JSON it came from, and
the page records the command, the machine and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, json.JSONDecodeError):
        return None


def _f(x: Any, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _ms(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def sampling(data: dict[str, Any], name: str) -> list[str]:
    composed = data.get("composed_per_s")
    return [
        f"### Sampling (`{name}`)",
        "",
        "| line | tiles | ours (patches/s) | TorchGeo (patches/s) | speedup | incl. setup "
        "| composed + prior transform (patches/s) |",
        "|---|---|---|---|---|---|---|",
        f"| torchgeo {data['versions']['torchgeo']} | {data['tiles']} x {data['tile_size_px']} px "
        f"| {data['ours_per_s']:.0f} | {data['torchgeo_per_s']:.1f} | {data['speedup']:.1f}x "
        f"| {data.get('speedup_incl_setup', float('nan')):.1f}x "
        f"| {'not run' if composed is None else f'{composed:.1f}'} |",
        "",
        "Composed: our `NAIP & NLCD & BuildingFootprints` with `PriorTransform` as the "
        "intersection's transform, TorchGeo's sampler (a TorchGeo user building the prior "
        "per sample)."
        if composed is not None
        else "",
        "",
    ]


#: Settings shown above an accuracy table (the baselines skip the warm-up).
RECIPE_KEYS = ("steps", "lr", "lr_schedule", "warmup_loss", "warmup_epochs", "normalize")


def sample_city(data: dict[str, Any], name: str, title: str = "Sample city") -> list[str]:
    """Accuracy table: per method q and r, then the prior's argmax (and the coarse map)."""
    cities = data.get("city", {}).get("seeds")
    where = f"; cities {cities}" if cities else ""
    run = "quick" if data["quick"] else "full"
    lines = [f"### {title} (`{name}`; {run}, seeds {data['seeds']}{where})", ""]
    config = data.get("config") or data.get("settings") or {}
    recipe = [f"{k} {config[k]}" for k in RECIPE_KEYS if k in config]
    if data.get("benchmark") == "sample_city" and "normalize" not in config:
        recipe.append("imagery x / 255 (run before `map` standardised bands)")
    if recipe:
        lines += ["Training: " + ", ".join(recipe) + ".", ""]
    lines += [
        "| method | acc q | mIoU q | acc r | mIoU r |",
        "|---|---|---|---|---|",
    ]
    for method, row in data["methods"].items():
        cells = " | ".join(_ms(row[k]) for k in ("acc_q", "miou_q", "acc_r", "miou_r"))
        lines.append(f"| {method} | {cells} |")
    p = data["prior_argmax"]
    lines.append(f"| prior argmax | {_ms(p['acc'])} | {_ms(p['miou'])} | | |")
    if "coarse" in data:
        c = data["coarse"]
        lines.append(f"| coarse map | {_ms(c['acc'])} | {_ms(c['miou'])} | | |")
    lines.append("")
    if len(data.get("per_city", {})) > 1:
        lines += ["mIoU of r per generated city (mean over seeds):", ""]
        lines += ["| method | " + " | ".join(f"city {c}" for c in data["per_city"]) + " |"]
        lines += ["|---" * (len(data["per_city"]) + 1) + "|"]
        for method in data["methods"]:
            cells = [_f(city[method]["miou_r"]["mean"]) for city in data["per_city"].values()]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    if data.get("iou_r_per_class"):
        lines += per_class_iou(data["classes"], data["iou_r_per_class"])
    return lines


def per_class_iou(classes: list[str], runs: dict[str, list[list[float | None]]]) -> list[str]:
    """IoU of r per class: mean over seeds, and the worst seed (a dropped class shows)."""
    lines = [
        "IoU of r per class, mean over seeds (worst seed):",
        "",
        "| method | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for method, seeds in runs.items():
        cells = []
        for k in range(len(classes)):
            values = [run[k] for run in seeds if run[k] is not None]
            cells.append(f"{statistics.fmean(values):.2f} ({min(values):.2f})" if values else "")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def simple(data: dict[str, Any], name: str, keys: list[str], title: str) -> list[str]:
    return [
        f"### {title} (`{name}`)",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        "| " + " | ".join(_f(data.get(k)) for k in keys) + " |",
        "",
    ]


def mnist(data: dict[str, Any], name: str) -> list[str]:
    """Negative labels / rankings: held-out accuracy (final and best epoch) per run."""
    lines = [
        f"### {data.get('benchmark', name)} on MNIST-5k (`{name}`)",
        "",
        "| run | final accuracy | best accuracy (epoch) |",
        "|---|---|---|",
    ]
    for run, row in data.get("results", {}).items():
        lines.append(
            f"| {run} | {_f(row.get('final_test_acc'))} | "
            f"{_f(row.get('best_test_acc'))} ({row.get('best_epoch')}) |"
        )
    if "chance_accuracy" in data:
        lines.append(f"| chance | {_f(data['chance_accuracy'])} | |")
    return [*lines, ""]


def _patch_number(patch: str) -> int:
    """``m_3708020_sw_17_1-p3`` -> 3."""
    return int(patch.rsplit("-p", 1)[-1])


def chesapeake(data: dict[str, Any], name: str) -> list[str]:
    """Real NAIP: pooled q and r per method and budget, baselines, per-class IoU, per patch."""
    run = "quick" if data["quick"] else "full"
    lines = [
        f"### Real NAIP, Chesapeake West Virginia (`{name}`; {run}, {len(data['folds'])} folds "
        f"over {len(data['patches'])} patches, seeds {data['seeds']})",
        "",
        "Pooled over every patch (each scored once, by the fold that did not see its labels); "
        "mean ± sd over seeds. Last column: the mean of the folds' own mIoU.",
        "",
    ]
    baselines = data["baselines"]
    for budget, block in data["budgets"].items():
        config = block["config"]
        recipe = [
            f"{k} {config[k]}"
            for k in ("steps", "batch_size", "patch_size", "num_filters", "lr", "warmup_epochs")
            if k in config
        ]
        lines += [f"Budget `{budget}`: " + ", ".join(recipe) + ".", ""]
        lines += [
            "| method | acc q | mIoU q | acc r | mIoU r | mIoU r, fold mean |",
            "|---|---|---|---|---|---|",
        ]
        for method, row in block["methods"].items():
            keys = ("acc_q", "miou_q", "acc_r", "miou_r", "miou_fold_mean_r")
            lines.append(f"| {method} | " + " | ".join(_ms(row[k]) for k in keys) + " |")
        rows = [("prior argmax", block["prior_argmax"])]
        rows += [(k.replace("_", " "), v) for k, v in baselines.items()]
        for label, row in rows:
            cells = [_f(row["acc"]), _f(row["miou"]), "", "", _f(row["miou_fold_mean"])]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [""]
        lines += per_class_iou(
            data["classes"], {m: row["iou_r_per_seed"] for m, row in block["methods"].items()}
        )
        patches = sorted(next(iter(block["methods"].values()))["per_patch_r"], key=_patch_number)
        lines += ["mIoU of r per patch, mean over seeds:", ""]
        lines += ["| method | " + " | ".join(p.rsplit("-", 1)[-1] for p in patches) + " |"]
        lines += ["|---" * (len(patches) + 1) + "|"]
        for method, row in block["methods"].items():
            cells = [_f(statistics.fmean(row["per_patch_r"][p]["miou"])) for p in patches]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        for label, row in [("nlcd argmax", baselines["nlcd_argmax"])]:
            cells = [_f(row["per_patch"][p]["miou"]) for p in patches]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def startup(data: dict[str, Any], name: str) -> list[str]:
    """Cold start of each command: CPU and wall seconds, and over bare Python / torch."""
    lines = [
        f"## Command-line start-up (`{name}`)",
        "",
        f"Median of {data.get('runs')} cold starts each; goal: every `torchgeo-lsr` tool "
        f"command under {data.get('goal_cpu_s')} s of CPU.",
        "",
        "| command | CPU s | wall s | x `python -c pass` | x `import torch` |",
        "|---|---|---|---|---|",
    ]
    for command, entry in data.get("commands", {}).items():
        lines.append(
            f"| `{command}` | {_f(entry.get('cpu_s'), 2)} | {_f(entry.get('wall_s'), 2)} | "
            f"{_f(entry.get('x_python'), 1)} | {_f(entry.get('x_torch'), 2)} |"
        )
    return [*lines, ""]


def workers(data: dict[str, Any], name: str) -> list[str]:
    """Priors at 1 and 2 worker processes (``benchmarks/workers.py``)."""
    times = data.get("prior_s", {})
    note = " (contended: other work shared the CPUs)" if data.get("contended") else ""
    return [
        f"### Prior workers (`{name}`)",
        "",
        f"Median wall seconds of `build_region_priors` on {data.get('cpus')} CPUs{note}.",
        "",
        "| tiles | 1 worker (s) | 2 workers (s) | speed-up | forkserver start (s) | same bytes |",
        "|---|---|---|---|---|---|",
        f"| {data.get('tiles')} x {data.get('tile_size_px')} px | {_f(times.get('1'), 2)} | "
        f"{_f(times.get('2'), 2)} | {_f(data.get('prior_speedup'), 2)} | "
        f"{_f(data.get('pool_start_s'), 2)} | {data.get('identical')} |",
        "",
    ]


def workers_prediction(data: dict[str, Any]) -> list[str]:
    """The prediction half of ``benchmarks/workers.py``: 1 process against 2 DDP ranks."""
    times = data.get("predict_s")
    if not times:
        return []
    return [
        "| prediction | 1 process (s) | 2 DDP ranks (s) | speed-up | same maps |",
        "|---|---|---|---|---|",
        f"| {data.get('tiles')} x {data.get('tile_size_px')} px | {_f(times.get('1'), 2)} | "
        f"{_f(times.get('2'), 2)} | {_f(data.get('predict_speedup'), 2)} | "
        f"{data.get('predict_same_maps')} |",
        "",
    ]


def full_tile(data: dict[str, Any], name: str) -> list[str]:
    """One full NAIP tile through ``map`` (``benchmarks/full_tile.py``)."""
    rows, cols = data.get("tile_px", [None, None])
    stages = data.get("stages_s", {})
    peaks = data.get("stage_peak_rss_gib", {})
    lines = [
        f"### One {rows} x {cols} px tile through `map` (`{name}`)",
        "",
        f"Demo budget on {data.get('cpus')} CPUs. Stages that grow with the area: "
        f"**{_f(data.get('area_stages_s'), 1)} s** (goal <= {data.get('goal_area_stages_s')} s); "
        f"peak RSS **{_f(data.get('peak_rss_gib'), 2)} GiB** (goal <= "
        f"{data.get('goal_peak_rss_gib')} GiB). Prediction "
        f"{_f(data.get('prediction_mpx_s'), 2)} Mpx/s against the network alone "
        f"{_f(data.get('forward_mpx_s'), 2)} Mpx/s (x{_f(data.get('predict_over_forward'), 2)}).",
        "",
        "| stage | wall s | highest RSS sampled (GiB) |",
        "|---|---|---|",
    ]
    for stage, seconds in stages.items():
        lines.append(f"| {stage} | {_f(seconds, 1)} | {_f(peaks.get(stage), 2)} |")
    sizes = ", ".join(f"{k} {_f(v, 1)}" for k, v in data.get("output_mib", {}).items())
    return [*lines, "", f"Output sizes (MiB): {sizes}.", ""]


def _e(x: Any) -> str:
    return f"{x:.1e}" if isinstance(x, float) else "" if x is None else str(x)


def training(data: dict[str, Any], name: str) -> list[str]:
    """Seconds per training step, ours against the bare loop; the bare loop's CPU variants."""
    versions = data.get("versions", {})
    lines = [
        f"## Training step: `map` against a bare PyTorch loop (`{name}`)",
        "",
        f"Python {versions.get('python')}, torch {versions.get('torch')}, torchgeo "
        f"{versions.get('torchgeo')}, Lightning {versions.get('lightning')}; "
        f"{data.get('threads', {}).get('intra_op')} intra-op threads; median of "
        f"{data.get('repeats')} runs each. `ratio` = ours / bare s/step (steady state), goal "
        f"<= {data.get('goal_ratio')}; fit s/step is the whole `train()` call over its steps; "
        "CPU: seconds of CPU of the process (steadier on a loaded machine).",
        "",
        "| budget | steps | patch | batch | filters | ours s/step | bare s/step | ratio "
        "| ours fit s/step | ours CPU s/step | bare CPU s/step | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    budgets = data.get("budgets", {})
    for budget, entry in budgets.items():
        st = entry.get("settings", {})
        lines.append(
            f"| {budget} | {st.get('steps')} | {st.get('patch_size')} | {st.get('batch_size')} | "
            f"{st.get('num_filters')} | {_f(entry.get('ours_s_per_step'))} | "
            f"{_f(entry.get('bare_s_per_step'))} | {_f(entry.get('ratio'), 2)} | "
            f"{_f(entry.get('ours_fit_s_per_step'))} | {_f(entry.get('ours_cpu_s_per_step'))} | "
            f"{_f(entry.get('bare_cpu_s_per_step'))} | {_f(entry.get('cpu_ratio'), 2)} |"
        )
    for budget, entry in budgets.items():
        if "variants" not in entry:
            continue
        lines += [
            "",
            f"Bare-loop variants, {budget} budget (speed-up over the plain NCHW loop, same run):",
            "",
            "| variant | s/step | speed-up | CPU s/step | max rel. loss diff | note |",
            "|---|---|---|---|---|---|",
        ]
        for variant, v in entry["variants"].items():
            note = v.get("error") or v.get("note", "")
            if "compile_s" in v:
                note = f"compile {_f(v['compile_s'], 1)} s; {note}"
            lines.append(
                f"| {variant} | {_f(v.get('s_per_step'))} | {_f(v.get('speedup'), 2)} | "
                f"{_f(v.get('cpu_s_per_step'))} | "
                f"{_e(v.get('max_rel_loss_diff'))} | {note} |"
            )
    return [*lines, ""]


def build(results: Path) -> str:
    out = [
        "# Benchmark results",
        "",
        "Regenerated by `make bench` (every script in `benchmarks/` with `--quick`, then "
        "`python benchmarks/report.py`). Figures come from the JSON files in "
        "`benchmarks/results/`; each section names its file.",
        "",
        f"- generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPUs",
        f"- python: {platform.python_version()}",
        "",
    ]
    findings = results.parent / "FINDINGS.md"
    if findings.exists():  # hand-written conclusions, kept across regenerations
        out += [findings.read_text().strip(), ""]
    for path in sorted(results.glob("*.json")):
        data = _load(path)
        if data is None:
            continue
        kind = data.get("benchmark", path.stem)
        if kind == "sampling":
            out += sampling(data, path.name)
        elif kind == "sample_city":
            out += sample_city(data, path.name)
        elif kind == "chesapeake":
            out += chesapeake(data, path.name)
        elif kind == "raleigh":
            out += sample_city(
                data, path.name, f"Raleigh Landsat, coarse labels x{data.get('factor', 8)}"
            )
        elif kind == "training":
            out += training(data, path.name)
        elif kind == "startup":
            out += startup(data, path.name)
        elif kind == "workers":
            out += workers(data, path.name) + workers_prediction(data)
        elif kind == "full_tile":
            out += full_tile(data, path.name)
        elif kind == "mapping":
            out += simple(
                data,
                path.name,
                ["tiles", "tile_size_px", "forward_s", "predict_s", "overhead"],
                "Mapping overhead",
            )
        elif "ours_s" in data:
            out += simple(
                data,
                path.name,
                [
                    "tile",
                    "ours_s",
                    "reference_s",
                    "speedup",
                    "max_abs_diff",
                    "ours_uint8_s",
                    "max_abs_diff_uint8",
                    "ours_peak_rss_gib",
                ],
                "Prior builder vs the paper's recipe",
            )
        else:
            out += mnist(data, path.name)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    text = build(args.results)
    partial = args.out.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
