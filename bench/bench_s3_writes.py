"""What one write to the stack's S3 API costs as the bucket grows (it should not grow with it).

Starts the persisted S3 API as the stack does (its own process, a state folder), fills a bucket
step by step to each size, and at each size times `--writes` PUTs of a small object and as many
DELETEs, end to end through boto3: every one is on disk (fsynced) before it is answered. Prints
the median and 90th percentile per size, and how long the server took to restore the last size.

    .venv/bin/python bench/bench_s3_writes.py [--sizes 0,500,1000,2000,4000] [--writes 50] [--bytes 1024]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_pipeline.s3server import s3_client  # noqa: E402
from tests.ports import free_port  # noqa: E402

BUCKET = "bench-writes"


def start(port: int, state: Path, ready: Path) -> tuple[subprocess.Popen[bytes], float]:
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "dataset_pipeline.s3server", "--port", str(port), "--state-dir", str(state)]
    started = time.perf_counter()
    server = subprocess.Popen([*command, "--ready-file", str(ready)], cwd=ROOT)
    while not ready.exists():
        if server.poll() is not None:
            raise SystemExit("the S3 API stopped while starting")
        time.sleep(0.01)
    return server, time.perf_counter() - started


def timed(action: object, count: int) -> list[float]:
    seconds = []
    for number in range(count):
        began = time.perf_counter()
        action(number)  # type: ignore[operator]
        seconds.append(time.perf_counter() - began)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,500,1000,2000,4000")
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--bytes", type=int, default=1024)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    body = b"x" * args.bytes
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as folder:
        state, ready, port = Path(folder) / "s3", Path(folder) / "s3.ready", free_port()
        server, _ = start(port, state, ready)
        s3 = s3_client(f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket=BUCKET)
        print(f"{'objects':>8} {'put median':>11} {'put p90':>9} {'delete median':>14}")
        filled = 0
        for size in sizes:
            while filled < size:
                s3.put_object(Bucket=BUCKET, Key=f"fill/{filled:07d}", Body=body)
                filled += 1
            puts = timed(lambda n, size=size: s3.put_object(Bucket=BUCKET, Key=f"t/{size}/{n}", Body=body), args.writes)
            deletes = timed(lambda n, size=size: s3.delete_object(Bucket=BUCKET, Key=f"t/{size}/{n}"), args.writes)
            put, p90 = statistics.median(puts) * 1000, statistics.quantiles(puts, n=10)[-1] * 1000
            print(f"{size:>8} {put:>9.1f}ms {p90:>7.1f}ms {statistics.median(deletes) * 1000:>12.1f}ms")
        server.terminate()
        server.wait()
        server, restore = start(port, state, ready)
        print(f"restart with {filled} objects: serving after {restore:.2f} s")
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
