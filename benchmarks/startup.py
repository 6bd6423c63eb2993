#!/usr/bin/env python3
"""Start-up cost of the command line: each subcommand's ``--help`` against bare Python.

Every command runs in a fresh interpreter (a cold start, as a user pays it), ``--runs``
times, one after the other in one run of this script, and is timed by the CPU it used
(user + system of the child, from ``resource.getrusage``; robust on a loaded machine) and
by its wall time. The references are ``python -c pass`` and ``python -c "import torch"``;
the commands are ``torchgeo-lsr --help`` / ``--version``, every subcommand's ``--help``
and a misspelled option (an argument error, which must answer as fast as ``--help``), and
for the Lightning subcommands TorchGeo's own ``torchgeo fit --help``: Lightning's CLI lists
every option of the Trainer, the task and the data module, so it must import them.

Usage: ``python benchmarks/startup.py [--quick] [--runs N] [--out FILE.json]``. Writes JSON:
``commands`` (name -> ``argv``, ``cpu_s`` / ``wall_s`` medians, ``exit_code``,
``x_python`` = cpu_s over bare Python's, ``x_torch`` = cpu_s over ``import torch``'s),
``max_cpu_s`` (the slowest ``torchgeo-lsr`` command) and the settings. The issue's goal is
every ``torchgeo-lsr`` command under 2 s of CPU here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PY = sys.executable
CLI = [PY, "-m", "torchgeo_lsr"]

#: name -> argv; the first two are the references.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    "python -c 'import torch'": [PY, "-c", "import torch"],
    "torchgeo-lsr --help": [*CLI, "--help"],
    "torchgeo-lsr --version": [*CLI, "--version"],
    "torchgeo-lsr map --help": [*CLI, "map", "--help"],
    "torchgeo-lsr prior --help": [*CLI, "prior", "--help"],
    "torchgeo-lsr evaluate --help": [*CLI, "evaluate", "--help"],
    "torchgeo-lsr sample-city --help": [*CLI, "sample-city", "--help"],
    "torchgeo-lsr map, a misspelled option (error)": [*CLI, "map", "--out", "x", "--bogus", "1"],
    "torchgeo-lsr prior, a misspelled option (error)": [
        *CLI,
        "prior",
        "--out",
        "x",
        "--bogus",
        "1",
    ],
    "torchgeo-lsr fit --help": [*CLI, "fit", "--help"],
    # the reference for the Lightning subcommands: TorchGeo's own CLI
    "torchgeo fit --help": [
        PY,
        "-c",
        "import sys; from torchgeo.main import main; sys.argv = ['torchgeo', 'fit', '--help']; "
        "main()",
    ],
}
REFERENCES = ("python -c pass", "python -c 'import torch'")


def time_command(argv: list[str]) -> tuple[float, float, int]:
    """Run ``argv`` once; its (CPU seconds, wall seconds, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=os.environ.copy(), check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, done.returncode


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time every command; print a table; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run per command")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--skip-fit", action="store_true", help="leave out `fit --help`")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "startup.json"
    )
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    commands = {k: v for k, v in COMMANDS.items() if not (args.skip_fit and " fit " in k)}
    if args.skip_fit:
        print("leaving out the fit --help commands")
    time_command(COMMANDS["python -c 'import torch'"])  # warm the file cache once
    results: dict[str, dict[str, Any]] = {}
    for name, cmd in commands.items():
        cpus, walls, codes = [], [], set()
        for _ in range(runs):
            cpu, wall, code = time_command(cmd)
            cpus.append(cpu)
            walls.append(wall)
            codes.add(code)
        results[name] = {
            "argv": [os.path.basename(a) if a == PY else a for a in cmd],
            "cpu_s": round(statistics.median(cpus), 3),
            "wall_s": round(statistics.median(walls), 3),
            "exit_code": sorted(codes),
        }
    bare = results[REFERENCES[0]]["cpu_s"]
    torch_cpu = results[REFERENCES[1]]["cpu_s"]
    for entry in results.values():
        entry["x_python"] = round(entry["cpu_s"] / bare, 2) if bare else None
        entry["x_torch"] = round(entry["cpu_s"] / torch_cpu, 3) if torch_cpu else None
    ours = [v["cpu_s"] for k, v in results.items() if k.startswith("torchgeo-lsr ")]
    tools = [
        v["cpu_s"] for k, v in results.items() if k.startswith("torchgeo-lsr ") and " fit " not in k
    ]
    summary = {
        "benchmark": "startup",
        "runs": runs,
        "commands": results,
        "max_cpu_s": max(ours),
        "max_cpu_s_without_fit": max(tools),
        "goal_cpu_s": 2.0,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    width = max(len(k) for k in results)
    print(f"{'command':<{width}}  cpu_s  wall_s  x python  x torch  exit")
    for name, entry in results.items():
        print(
            f"{name:<{width}}  {entry['cpu_s']:5.2f}  {entry['wall_s']:6.2f}  "
            f"{entry['x_python']:8.1f}  {entry['x_torch']:7.2f}  {entry['exit_code']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return summary


if __name__ == "__main__":
    main()
