"""Whole-dataset validation at several sizes: time, MB/s and peak memory beside the floor.

For each size a generated dataset (shared_tasks.run.generate.write_seed_dataset) is written once into a
cache folder that later runs reuse (the 1 GB one takes minutes to generate). Every measurement runs
in a fresh process, which reports its wall and CPU time and its peak RSS (VmHWM from
/proc/self/status) after its imports and after the work:

- floor: a plain read + md5 of the same bytes (what DVC must do with them anyway);
- validate: shared_tasks.validation.dataset_check.validate_dataset on the file (its Table Schema,
  schemas/employee_attrition.schema.json: the id an integer primaryKey, checked exactly);
- text key: the same, with the id a string primaryKey (each key a 64-bit hash in the ledger);
- parts, reversed: the same records as 4 part files passed last part first, so the ids do not
  rise and the duplicate check spills, partitions and checks every id;
- python (10 MB only): the row-by-row Python path on the whole file in memory, as
  validate_dataset_file did before;
- and, in this process, the 40,000-column header (header_problems).

Nothing is asserted: it prints figures. The machine may be shared: the load average is printed.

    .venv/bin/python bench/bench_validate.py [--sizes-mb 10,100,1000] [--repeat 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared_tasks.run.generate import write_seed_dataset  # noqa: E402
from shared_tasks.validation.row_rules import header_problems  # noqa: E402

ROWS_PER_MB = 7_376  # the generated dataset's density: 74,500 rows in 10.1 MB
PARTS = 4
MEASURE = """
import hashlib, json, re, resource, sys, time
from pathlib import Path

def status_mb(field):  # VmHWM restarts at exec; ru_maxrss would carry the parent's
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

kind, files = sys.argv[1], [Path(name) for name in sys.argv[2:]]
rules = None
if kind in ("validate", "text key"):
    from shared_tasks.validation.dataset_check import validate_dataset
    from shared_tasks.validation.schema import SCHEMA_FILE, DatasetRules, employee_rules
    from shared_tasks.validation.table_schema import read_table_schema
    import polars  # imported before the clock starts, as a worker that validated once has it
    rules = employee_rules()  # read before the clock starts, as a worker that validated once has it
    if kind == "text key":
        descriptor = json.loads(SCHEMA_FILE.read_text())
        descriptor["fields"][0] = {"name": "Employee ID", "type": "string", "constraints": {"required": True}}
        rules = DatasetRules(read_table_schema(descriptor))
elif kind == "python":
    from shared_tasks.validation import validate
imports = status_mb("VmHWM")
started, cpu_started = time.perf_counter(), cpu()
if kind == "floor":
    for path in files:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
        records = None
elif kind in ("validate", "text key"):
    records = validate_dataset(files, "dataset", rules=rules).records
else:
    source = f"dataset {files[0].name}"
    records = len(validate._valid_records(validate._decode(files[0].read_bytes(), source), source))
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": cpu() - cpu_started,
                  "imports_mb": imports, "peak_mb": status_mb("VmHWM"), "records": records}))
"""


def dataset(cache: Path, size_mb: int) -> Path:
    path = cache / f"employee_attrition-{size_mb}mb.csv"
    if not path.exists():
        started = time.perf_counter()
        print(f"generating {path.name} (once; kept in {cache}) ...", flush=True)
        write_seed_dataset(path, rows=ROWS_PER_MB * size_mb, seed=0)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    return path


def reversed_parts(path: Path) -> list[Path]:
    """The file's records as PARTS part files (each with the header), last part first."""
    parts = [path.with_name(f"{path.stem}-part-{number}.csv") for number in range(PARTS)]
    if not all(part.exists() for part in parts):
        size = path.stat().st_size
        with path.open("rb") as source:
            header = source.readline()
            for number, part in enumerate(parts):
                end = size * (number + 1) // PARTS
                with part.open("wb") as target:
                    target.write(header)
                    while source.tell() < end and (chunk := source.read(min(8 << 20, end - source.tell()))):
                        target.write(chunk)
                    target.write(source.readline())  # up to the end of the line
    return parts[::-1]


def measure(kind: str, files: list[Path]) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, *map(str, files)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(output.splitlines()[-1])
    return result


def report(label: str, size: int, runs: list[dict[str, float]]) -> None:
    best = min(runs, key=lambda run: run["seconds"])
    mb = size / 1e6
    records = f"{int(best['records']):>10,}" if best["records"] is not None else " " * 10
    times = ", ".join(f"{run['seconds']:.2f}" for run in runs)
    print(
        f"  {label:16s} {best['seconds']:7.2f} s {mb / best['seconds']:7.0f} MB/s   cpu {best['cpu']:6.2f} s"
        f" ({mb / best['cpu']:4.0f} MB/cpu-s)   peak {best['peak_mb']:6.0f} MB (imports {best['imports_mb']:4.0f})"
        f"  {records} records   [{times} s]"
    )


def wide_header() -> None:
    header = [f"column {number}" for number in range(40_000)]
    started = time.perf_counter()
    problems = header_problems(header)
    print(f"40,000-column header: {len(problems):,} problems in {time.perf_counter() - started:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dataset-pipeline-bench-validate")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())} ({os.cpu_count()} cores)")
    for size_mb in [int(size) for size in args.sizes_mb.split(",")]:
        path = dataset(args.cache, size_mb)
        size = path.stat().st_size
        print(f"{size_mb} MB dataset: {size / 1e6:.1f} MB")
        kinds = [("floor", [path]), ("validate", [path]), ("parts, reversed", reversed_parts(path))]
        kinds.append(("text key", [path]))
        if size_mb <= 10:
            kinds.append(("python", [path]))
        for label, files in kinds:
            kind = label if label != "parts, reversed" else "validate"
            report(label, size, [measure(kind, files) for _ in range(args.repeat)])
    wide_header()
    print(f"load average at end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
