"""`schema infer` at several sizes: time, MB/s and peak memory (memory should stay flat in the size).

Each size's generated employee dataset is the one bench_validate.py writes (and caches); each
measurement runs in a fresh process, which reports its wall time and its peak RSS (VmHWM) after
its imports and after the inference.

    .venv/bin/python bench/bench_infer.py [--sizes-mb 10,100,1000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_validate import dataset  # noqa: E402

MEASURE = """
import json, re, sys, time
from pathlib import Path

def status_mb(field):
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024

from shared_tasks.validation.infer import infer_schema
import polars  # imported before the clock starts
imports = status_mb("VmHWM")
started = time.perf_counter()
inferred = infer_schema(Path(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - started, "imports_mb": imports, "peak_mb": status_mb("VmHWM"),
                  "rows": inferred.rows, "key": inferred.primary_key}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="10,100,1000")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dataset-pipeline-bench-validate")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for size_mb in (int(size) for size in args.sizes_mb.split(",")):
        path = dataset(args.cache, size_mb)
        done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            raise SystemExit(done.stderr)
        figures = json.loads(done.stdout)
        megabytes = path.stat().st_size / 1e6
        print(
            f"{size_mb:>5} MB ({megabytes:.1f} MB, {figures['rows']:,} rows): {figures['seconds']:.2f} s, "
            f"{megabytes / figures['seconds']:.0f} MB/s, peak {figures['peak_mb']:.0f} MB "
            f"(imports {figures['imports_mb']:.0f} MB), key {figures['key']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
