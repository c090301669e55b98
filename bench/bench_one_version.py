"""One version on the 10 MB dataset: time per step, cold and warm, beside a floor.

The floor is what any way of publishing this version must at least do, measured in the same
run against the same S3 API and origin: read + md5 the file, upload it once, commit + push one
small file. Cold: empty DVC cache and no workspace. Warm: a new run after an earlier one, so the
shared DVC cache already holds the current version.

    .venv/bin/python bench/bench_one_version.py [--rows 74500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_pipeline.s3server import s3_client  # noqa: E402
from dataset_pipeline.stack import LocalStack, StackConfig  # noqa: E402
from shared_tasks.project.settings import Settings  # noqa: E402
from shared_tasks.run.steps import modify_data, pull_data, push_data  # noqa: E402
from tests.ports import free_port  # noqa: E402

STEPS = ("pull_data", "modify_data", "push_data")


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def one_version(settings: Settings, run_id: str) -> dict[str, float]:
    gc.collect()  # the previous versions' garbage: a step in its own process never carries it
    times = {
        "pull_data": timed(lambda: pull_data(settings, run_id)),
        "modify_data": timed(lambda: modify_data(settings, run_id, records=1)),
        "push_data": timed(lambda: push_data(settings, run_id, orchestrator="bench")),
    }
    times["total"] = sum(times.values())
    return times


def floor(settings: Settings, data: Path, endpoint: str, bucket: str, scratch: Path) -> dict[str, float]:
    def read_md5() -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with data.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)

    client = s3_client(endpoint)
    body = data.read_bytes()
    key = f"floor/{time.time_ns()}"
    clone = scratch / f"floor-{time.time_ns()}"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True)

    def commit_push() -> None:
        (clone / "floor.txt").write_text(str(time.time_ns()))
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b"}
        env["GIT_COMMITTER_EMAIL"] = "b@b"
        for args in (
            ["add", "floor.txt"],
            ["commit", "--quiet", "-m", "floor"],
            ["push", "--quiet", "origin", f"HEAD:refs/heads/{clone.name}"],
        ):
            subprocess.run(["git", *args], cwd=clone, env=env, check=True)

    figures = {
        "read+md5": timed(read_md5),
        "upload": timed(lambda: client.put_object(Bucket=bucket, Key=key, Body=body)),
        "commit+push": timed(commit_push),
    }
    figures["total"] = sum(figures.values())
    # Not part of the floor, reported beside it: a step in a fresh process must also make a client.
    figures["new S3 client"] = timed(lambda: s3_client(endpoint).head_bucket(Bucket=bucket))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=74_500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scratch = Path(tmp)
        stack = LocalStack(StackConfig(root=scratch / "stack", s3_port=free_port(), seed_rows=args.rows, services=()))
        try:
            stack.up()
            os.environ.update(stack.env())
            base = stack.settings()
            cold_runs, warm_runs, floors = [], [], []
            for repeat in range(args.repeats):
                cold_settings = base.model_copy(update={"work_root": scratch / f"cold-{repeat}"})
                cold_runs.append(one_version(cold_settings, f"bench-cold-{repeat}"))
                warm_runs.append(one_version(cold_settings, f"bench-warm-{repeat}"))
                data = cold_settings.work_root / "runs"
                newest = max(data.glob("*/repo/" + base.dataset_path), key=lambda p: p.stat().st_mtime)
                floors.append(floor(base, newest, stack.s3_endpoint, stack.config.bucket, scratch))
            size = newest.stat().st_size
        finally:
            stack.down()

    print(
        f"one version of a {size / 1e6:.1f} MB dataset ({args.rows} rows), {args.repeats} repeats, median [min-max] s"
    )
    print(f"{'':14}{'cold':>22}{'warm':>22}")
    for step in (*STEPS, "total"):
        print(f"{step:14}{fmt([r[step] for r in cold_runs]):>22}{fmt([r[step] for r in warm_runs]):>22}")
    print("floor (same run, same S3 API and origin):")
    for part in ("read+md5", "upload", "commit+push", "total"):
        print(f"  {part:12}{fmt([f[part] for f in floors]):>22}")
    print(f"  (beside it: a new S3 client + first request {fmt([f['new S3 client'] for f in floors])})")
    floor_median = statistics.median(f["total"] for f in floors)
    warm_median = statistics.median(r["total"] for r in warm_runs)
    cold_median = statistics.median(r["total"] for r in cold_runs)
    print(f"warm / floor = {warm_median / floor_median:.2f}x   cold / floor = {cold_median / floor_median:.2f}x")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


if __name__ == "__main__":
    main()
