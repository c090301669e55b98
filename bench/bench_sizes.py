"""One version at several dataset sizes, in both layouts: time per step, bytes uploaded, peak memory.

For each size and layout the benchmark starts a local stack (S3 API as its own process, a bare
Git origin seeded with a generated dataset of that size in that layout), publishes one version
to warm the shared DVC cache, then times `--versions` warm versions step by step in this process
and counts the bytes each one added to the bucket. One more version runs each step in a fresh
process (as a pod would) to measure the step's peak RSS. The floor is measured in the same run:
read + md5 of the bytes a version must upload (the whole file, or the new part), one upload of
them with a ready client, and a commit + push of one small file.

    .venv/bin/python bench/bench_sizes.py [--sizes-mb 10,100,1000] [--layouts single-file,partitioned]
        [--versions 3] [--records 1]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_pipeline.s3server import s3_client  # noqa: E402
from dataset_pipeline.stack import LocalStack, StackConfig  # noqa: E402
from shared_tasks.project.settings import Layout, Settings  # noqa: E402
from shared_tasks.run.steps import modify_data, pull_data, push_data  # noqa: E402
from shared_tasks.run.workspace import Workspace  # noqa: E402
from shared_tasks.storage.layout import part_files  # noqa: E402
from tests.ports import free_port  # noqa: E402

STEPS = ("pull_data", "modify_data", "push_data")
ROWS_PER_MB = 7_376  # the generated dataset's density: 74,500 rows in 10.1 MB
STEP_IN_A_PROCESS = """
import json, re, sys, time
from pathlib import Path
from shared_tasks.project.settings import Settings
from shared_tasks.run import steps

def status_mb(field):  # VmHWM restarts at exec; ru_maxrss would carry the parent's
    text = Path("/proc/self/status").read_text()
    return int(re.search(field + r":\\s+(\\d+) kB", text).group(1)) / 1024

settings = Settings.model_validate_json(sys.argv[1])
name, run_id = sys.argv[2], sys.argv[3]
kwargs = {"records": int(sys.argv[4])} if name == "modify_data" else {}
if name == "push_data":
    kwargs = {"orchestrator": "bench"}
imports = status_mb("VmHWM")
started = time.perf_counter()
getattr(steps, name)(settings, run_id, **kwargs)
print(json.dumps({"seconds": time.perf_counter() - started, "imports_mb": imports, "peak_mb": status_mb("VmHWM")}))
"""


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bucket_bytes(client: Any, bucket: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        sizes.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return sizes


def warm_version(settings: Settings, run_id: str, records: int, client: Any, bucket: str) -> dict[str, float]:
    before = bucket_bytes(client, bucket)
    gc.collect()  # the previous versions' garbage: a step in its own process never carries it
    figures = {
        "pull_data": timed(lambda: pull_data(settings, run_id)),
        "modify_data": timed(lambda: modify_data(settings, run_id, records=records)),
        "push_data": timed(lambda: push_data(settings, run_id, orchestrator="bench")),
    }
    figures["total"] = sum(figures[step] for step in STEPS)
    after = bucket_bytes(client, bucket)
    figures["uploaded"] = float(sum(size for key, size in after.items() if key not in before))
    return figures


def step_memory(settings: Settings, run_id: str, records: int) -> dict[str, float]:
    """Each step in a fresh process: its peak RSS, and the RSS of the imports alone."""
    memory = {}
    for step in STEPS:
        completed = subprocess.run(
            [sys.executable, "-c", STEP_IN_A_PROCESS, settings.model_dump_json(), step, run_id, str(records)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        memory[step] = result["peak_mb"]
        memory[f"{step} imports"] = result["imports_mb"]
    return memory


def published_bytes(settings: Settings, run_id: str) -> bytes:
    """What a version of this run had to upload at least: the file, or its new part."""
    data = Workspace.for_run(settings.work_root, run_id).repo / settings.data_relpath
    if settings.layout is Layout.SINGLE_FILE:
        return data.read_bytes()
    return part_files(data)[-1].read_bytes()


def floor(settings: Settings, body: bytes, client: Any, bucket: str, scratch: Path) -> dict[str, float]:
    clone = scratch / f"floor-{time.time_ns()}"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b"}
    env.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")

    def commit_push() -> None:
        (clone / "floor.txt").write_text(str(time.time_ns()))
        for args in (
            ["add", "floor.txt"],
            ["commit", "-qm", "floor"],
            ["push", "-q", "origin", f"HEAD:refs/heads/{clone.name}"],
        ):
            subprocess.run(["git", *args], cwd=clone, env=env, check=True)

    figures = {
        "read+md5": timed(lambda: hashlib.md5(body, usedforsecurity=False).hexdigest()),
        "upload": timed(lambda: client.put_object(Bucket=bucket, Key=f"floor/{time.time_ns()}", Body=body)),
        "commit+push": timed(commit_push),
    }
    figures["total"] = sum(figures.values())
    return figures


def transfer_library_upload(settings: Settings, body: bytes, bucket: str, scratch: Path) -> float:
    """The same bytes through DVC's transfer library (s3fs: multipart above 100 MB), client ready."""
    import s3fs

    source = scratch / "transfer-library-upload.bin"
    source.write_bytes(body)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": settings.s3_endpoint_url}, skip_instance_cache=True)
    fs.ls(bucket)  # the session and client are made before timing starts
    seconds = timed(lambda: fs.put_file(str(source), f"{bucket}/floor/s3fs-{time.time_ns()}"))
    source.unlink()
    return seconds


def bench_one(size_mb: int, layout: Layout, versions: int, records: int, scratch: Path) -> dict[str, Any]:
    root = scratch / f"{layout.value}-{size_mb}"
    config = StackConfig(
        root=root / "stack", s3_port=free_port(), seed_rows=size_mb * ROWS_PER_MB, layout=layout, services=()
    )
    stack = LocalStack(config)
    started = time.perf_counter()
    stack.up()
    seeded = time.perf_counter() - started
    try:
        os.environ.update(stack.env())
        settings = stack.settings()
        client, bucket = s3_client(stack.s3_endpoint), config.bucket
        warm_version(settings, "bench-warmup", records, client, bucket)
        runs = [warm_version(settings, f"bench-{n}", records, client, bucket) for n in range(versions)]
        body = published_bytes(settings, f"bench-{versions - 1}")
        floors = [floor(settings, body, client, bucket, root) for _ in range(versions)]
        transfer_upload = transfer_library_upload(settings, body, bucket, root)
        memory = step_memory(settings, "bench-memory", records)
        newest = Workspace.for_run(settings.work_root, "bench-memory").repo / settings.data_relpath
        files = [newest] if newest.is_file() else part_files(newest)
        dataset_bytes = sum(p.stat().st_size for p in files)
    finally:
        stack.down()
    return {
        "size_mb": size_mb,
        "layout": layout.value,
        "dataset_bytes": dataset_bytes,
        "files": len(files),
        "seed_seconds": seeded,
        "change_bytes": len(body) if layout is Layout.PARTITIONED else None,
        "runs": runs,
        "floors": floors,
        "transfer_library_upload": transfer_upload,
        "memory_mb": memory,
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(result: dict[str, Any]) -> None:
    runs, floors, memory = result["runs"], result["floors"], result["memory_mb"]
    print(
        f"\n{result['layout']}, {result['dataset_bytes'] / 1e6:.1f} MB dataset "
        f"(seeded in {result['seed_seconds']:.0f} s), {len(runs)} warm versions, median [min-max]"
    )
    print(f"  {'step':14}{'seconds':>24}{'peak RSS MB (own process)':>30}")
    for step in STEPS:
        times = [r[step] for r in runs]
        rss = f"{memory[step]:.0f} (imports {memory[f'{step} imports']:.0f})"
        print(f"  {step:14}{fmt(times):>24}{rss:>30}")
    print(f"  {'total':14}{fmt([r['total'] for r in runs]):>24}")
    parts = {part: median([f[part] for f in floors]) for part in ("read+md5", "upload", "commit+push")}
    detail = ", ".join(f"{part} {seconds:.3f}" for part, seconds in parts.items())
    print(f"  {'floor':14}{fmt([f['total'] for f in floors]):>24}   ({detail})")
    print(
        f"  beside it: the same upload through DVC's transfer library (s3fs) {result['transfer_library_upload']:.3f} s"
    )
    uploaded = [r["uploaded"] for r in runs]
    print(
        f"  uploaded per version: median {median(uploaded):.0f} B, mean {statistics.mean(uploaded):.0f} B, "
        f"max {max(uploaded):.0f} B; the newest version has {result['files']} data file(s)"
    )
    ratio = median([r["total"] for r in runs]) / median([f["total"] for f in floors])
    print(f"  warm / floor = {ratio:.2f}x")


def fmt(values: list[float]) -> str:
    return f"{median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="10,100,1000")
    parser.add_argument("--layouts", default="single-file,partitioned")
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--records", type=int, default=1)
    parser.add_argument("--json", type=Path, help="Also write every figure to this file.")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sizes-") as tmp:
        for size in (int(s) for s in args.sizes_mb.split(",")):
            for layout in (Layout(name) for name in args.layouts.split(",")):
                result = bench_one(size, layout, args.versions, args.records, Path(tmp))
                report(result)
                results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
