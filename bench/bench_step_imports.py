"""What each step costs a fresh process before it does anything: the import of its function.

Every pod on the cluster pays this once per step. For each step of `PIPELINE`, in fresh
interpreters: the CPU time (user + system) of `python -c "import <module of the step's function>"`
minus that of `python -c pass`, the CPU time inside the process of importing the pipeline
description and then of `StepSpec.load()` (as an adapter does), each the median of the repeats,
and which heavy libraries the import brought in. CPU time rather than wall time: it barely moves
when other work shares the cores (wall time is printed too, for an idle machine).

    .venv/bin/python bench/bench_step_imports.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_tasks.project.pipeline import PIPELINE  # noqa: E402

HEAVY = ("pandas", "polars", "numpy", "pyarrow", "dvc.repo")

# Runs in the fresh interpreter: the pipeline description first (as the adapters import it), then the step.
_LOAD = """
import json, sys, time
started = time.process_time()
from shared_tasks.project.pipeline import STEPS
described = time.process_time()
STEPS[sys.argv[1]].load()
loaded = time.process_time()
heavy = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
print(json.dumps({"pipeline": described - started, "load": loaded - described, "heavy": heavy}))
"""


def child(code: str, *args: str) -> tuple[float, float, str]:
    """CPU seconds and wall seconds of `python -c code args`, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    passes = [child("pass") for _ in range(repeats)]
    cpu_pass = statistics.median(cpu for cpu, _, _ in passes)
    wall_pass = statistics.median(elapsed for _, elapsed, _ in passes)
    print(f"python -c pass: {cpu_pass:.3f} s CPU, {wall_pass:.3f} s wall (median of {repeats}); below: medians in s")
    print(f"{'step':<12} {'module':<20} {'import CPU':>10} {'wall':>6} {'pipeline':>9} {'load':>6}  heavy modules")
    for step in PIPELINE:
        module = step.function.partition(":")[0]
        imports = [child(f"import {module}") for _ in range(repeats)]
        cpu = statistics.median(cpu for cpu, _, _ in imports) - cpu_pass
        elapsed = statistics.median(elapsed for _, elapsed, _ in imports) - wall_pass
        loads = [json.loads(child(_LOAD, step.name, json.dumps(HEAVY))[2]) for _ in range(repeats)]
        pipeline = statistics.median(load["pipeline"] for load in loads)
        load = statistics.median(load["load"] for load in loads)
        heavy = ", ".join(loads[-1]["heavy"]) or "-"
        print(f"{step.name:<12} {module:<20} {cpu:>10.3f} {elapsed:>6.3f} {pipeline:>9.3f} {load:>6.3f}  {heavy}")


if __name__ == "__main__":
    main()
