"""Ours beside the original system, one version at a time, on the same S3 API and origin.

The original system's three steps as it wrote them, each in a fresh process as each was a pod:
a fresh `git clone`, the `dvc pull` CLI; pandas reading the CSV and appending one record;
`dvc add`, `dvc push`, `git add`, `git commit`, `git push` (token-free here: the origin is a
local bare repository, the remote this stack's S3 API, reached through an uncommitted
.dvc/config.local, as a real endpoint needs none). Ours, in the same run: each step in a fresh
Python process (as each is a pod on the cluster), and warm, all three in one process. Each way
runs in its steady state: an unmeasured version first, so each builds on a version of its own
and ours finds the version before in the shared DVC cache (as the cluster's volume holds it after
the first run; a version made elsewhere would be downloaded and validated first); the original
clones afresh every run, as it was written to.

    .venv/bin/python bench/bench_original.py [--sizes 10,100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_pipeline.stack import LocalStack, StackConfig  # noqa: E402
from shared_tasks.project.pipeline import PIPELINE, StepInputs  # noqa: E402
from shared_tasks.project.settings import Settings  # noqa: E402
from tests.ports import free_port  # noqa: E402

ROWS_PER_MB = 7_450  # the synthetic dataset: about 10 MB per 74,500 rows
STEPS = tuple(step.name for step in PIPELINE)
TARGET_FRESH, TARGET_WARM = 0.3, 0.1
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "original",
    "GIT_AUTHOR_EMAIL": "original@example.invalid",
    "GIT_COMMITTER_NAME": "original",
    "GIT_COMMITTER_EMAIL": "original@example.invalid",
}
# The original's modify step: pandas reads the CSV, appends one record, writes it back.
ORIGINAL_MODIFY = """
import sys
import pandas as pd
path = sys.argv[1]
frame = pd.read_csv(path)
record = frame.iloc[-1].copy()
record["Employee ID"] = int(frame["Employee ID"].max()) + 1
frame = pd.concat([frame, record.to_frame().T], ignore_index=True)
frame.to_csv(path, index=False)
"""
# One of our steps in a fresh process, as a pod runs it.
OUR_STEP = """
import sys
from shared_tasks.project.pipeline import STEPS, StepInputs
from shared_tasks.project.settings import Settings
STEPS[sys.argv[1]].run(Settings(), sys.argv[2], StepInputs(records=1, orchestrator="bench", runner="bench"))
"""


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    completed = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {completed.stderr.strip()[-500:]}")


def original_version(settings: Settings, env: dict[str, str], endpoint: str, scratch: Path) -> dict[str, float]:
    """One version the original's way; each step a fresh process (or several, as its pod ran them)."""
    shared = scratch / "shared"
    repo = shared / "repo"
    dvc = str(Path(sys.executable).with_name("dvc"))
    data = settings.dataset_path
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)

    def pull() -> None:
        run(["git", "clone", "--quiet", "--branch", settings.git_branch, settings.git_url, str(repo)], shared, env)
        section = f"'remote \"{settings.dvc_remote}\"'"
        (repo / ".dvc" / "config.local").write_text(f"[{section}]\n    endpointurl = {endpoint}\n")
        run([dvc, "pull", "--quiet"], repo, env)

    def modify() -> None:
        run([sys.executable, "-c", ORIGINAL_MODIFY, str(repo / data)], repo, env)

    def push() -> None:
        run([dvc, "add", "--quiet", data], repo, env)
        run([dvc, "push", "--quiet"], repo, env)
        pointer = f"{data}.dvc"
        run(["git", "add", pointer, str(Path(data).parent / ".gitignore")], repo, env)
        run(["git", "commit", "--quiet", "-m", "Update dataset"], repo, env)
        run(["git", "push", "--quiet", "origin", settings.git_branch], repo, env)

    times = {"pull_data": timed(pull), "modify_data": timed(modify), "push_data": timed(push)}
    times["total"] = sum(times.values())
    return times


def ours_fresh(env: dict[str, str], run_id: str) -> dict[str, float]:
    times = {
        name: timed(lambda name=name: run([sys.executable, "-c", OUR_STEP, name, run_id], ROOT, env))  # type: ignore[misc]
        for name in STEPS
    }
    times["total"] = sum(times.values())
    return times


def ours_warm(settings: Settings, run_id: str) -> dict[str, float]:
    times = {
        step.name: timed(lambda step=step: step.run(settings, run_id, StepInputs(records=1, orchestrator="bench")))  # type: ignore[misc]
        for step in PIPELINE
    }
    times["total"] = sum(times.values())
    return times


def measure_size(megabytes: int, repeats: int, scratch: Path) -> dict[str, list[dict[str, float]]]:
    rows = megabytes * ROWS_PER_MB
    stack = LocalStack(
        StackConfig(root=scratch / f"stack-{megabytes}", s3_port=free_port(), seed_rows=rows, services=())
    )
    try:
        stack.up()
        env = {**os.environ, **stack.env(), **stack.settings_env(), **GIT_IDENTITY}
        os.environ.update({**stack.env(), **stack.settings_env()})
        settings = stack.settings()
        methods: dict[str, Callable[[str], dict[str, float]]] = {
            "original": lambda run_id: original_version(settings, env, stack.s3_endpoint, scratch),
            "ours fresh": lambda run_id: ours_fresh(env, run_id),
            "ours warm": lambda run_id: ours_warm(settings, run_id),
        }
        figures: dict[str, list[dict[str, float]]] = {}
        for name, make in methods.items():
            # Unmeasured first: each then builds on a version of its own (as it would day after day),
            # not on another's that ours would download and validate as a version made elsewhere.
            make(f"bench-{name.replace(' ', '-')}-{megabytes}-first")
            figures[name] = [make(f"bench-{name.replace(' ', '-')}-{megabytes}-{repeat}") for repeat in range(repeats)]
        size = (scratch / "shared" / "repo" / settings.dataset_path).stat().st_size
        print(f"\n{size / 1e6:.0f} MB dataset ({rows} rows), {repeats} repeats, median [min-max] s", flush=True)
        return figures
    finally:
        stack.down()


def report(figures: dict[str, list[dict[str, float]]]) -> None:
    print(f"{'':14}" + "".join(f"{name:>24}" for name in figures))
    for step in (*STEPS, "total"):
        print(f"{step:14}" + "".join(f"{fmt([run[step] for run in runs]):>24}" for runs in figures.values()))
    original = statistics.median(run["total"] for run in figures["original"])
    fresh = statistics.median(run["total"] for run in figures["ours fresh"])
    warm = statistics.median(run["total"] for run in figures["ours warm"])
    print(
        f"ours / original: fresh process per step {fresh / original:.2f}x (target <= {TARGET_FRESH}x), "
        f"warm {warm / original:.2f}x (target <= {TARGET_WARM}x)",
        flush=True,
    )


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="Dataset sizes in MB, comma-separated.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-original-") as tmp:
        for megabytes in (int(size) for size in args.sizes.split(",")):
            report(measure_size(megabytes, args.repeats, Path(tmp)))


if __name__ == "__main__":
    main()
