"""What a merge costs in each layout: time, bytes rewritten (what DVC then uploads) and peak memory.

The station-readings example's schema (primaryKey station + day). A dataset of `--rows` readings;
a change of `--updates` corrections plus one new day per station, the corrections either of the
most recent days (a late correction, the usual case) or spread over the whole history. The single
file is rewritten whole every time; the partitioned layout reads every part's key columns and
rewrites only the parts holding a corrected key, and the new day goes into a new part.
Each case runs in a child process of its own, so its peak memory is its own.

    .venv/bin/python bench/bench_merge.py [--rows 1000000] [--part-rows 100000] [--updates 1000]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCHEMA = ROOT / "examples" / "station_readings" / "schemas" / "station_readings.schema.json"
STATIONS = 200
FIRST_DAY = datetime.date(2020, 1, 1)


def station_codes() -> list[str]:
    return [f"{chr(65 + index // 100)}TN{index % 100:02d}" for index in range(STATIONS)]


def write_dataset(target: Path, rows: int, part_rows: int | None) -> None:
    import polars as pl

    days = rows // STATIONS
    frame = pl.DataFrame(
        {
            "station": station_codes() * days,
            "day": [FIRST_DAY + datetime.timedelta(days=d) for d in range(days) for _ in range(STATIONS)],
        }
    ).with_columns(
        temperature_c=(pl.int_range(0, pl.len()) % 400 / 10 - 10).round(1),
        rainfall_mm=(pl.int_range(0, pl.len()) % 70 / 10).round(1),
        quality=pl.lit("checked"),
    )
    if part_rows is None:
        frame.write_csv(target)
        return
    target.mkdir()
    for number, start in enumerate(range(0, frame.height, part_rows)):
        frame.slice(start, part_rows).write_csv(target / f"part-{number:06d}.csv")


def change_frame(rows: int, updates: int, spread: bool) -> tuple[object, object]:
    import pandas as pd

    days = rows // STATIONS
    picked = range(0, days * STATIONS, max(days * STATIONS // updates, 1)) if spread else range(rows - updates, rows)
    stations = station_codes()
    corrected = [
        (stations[index % STATIONS], FIRST_DAY + datetime.timedelta(days=index // STATIONS), 1.5, 0.0, "corrected")
        for index in list(picked)[:updates]
    ]
    new_day = FIRST_DAY + datetime.timedelta(days=days)
    inserted = [(station, new_day, 2.5, 0.1, "checked") for station in stations]
    columns = ["station", "day", "temperature_c", "rainfall_mm", "quality"]
    return pd.DataFrame(corrected + inserted, columns=columns), pd.DataFrame(columns=["station", "day"])


def md5s(path: Path) -> dict[str, tuple[str, int]]:
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return {f.name: (hashlib.md5(f.read_bytes(), usedforsecurity=False).hexdigest(), f.stat().st_size) for f in files}


def high_water_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not carried over from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def one_case(args: tuple[str, str, int, int, int, bool], results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One merge in a fresh process (the dataset was written by the parent), so its peak memory is its own."""
    layout_name, where, rows, part_rows, updates, spread = args
    baseline = high_water_mb()
    from shared_tasks.project.settings import Layout
    from shared_tasks.storage.keyed import KeyedChange
    from shared_tasks.storage.layout import for_layout
    from shared_tasks.validation.schema import DatasetRules
    from shared_tasks.validation.table_schema import load_table_schema

    rules = DatasetRules(load_table_schema(SCHEMA))
    layout = Layout(layout_name)
    target = Path(where)
    before = md5s(target)
    upserts, deletes = change_frame(rows, updates, spread)
    table = rules.table
    key_fields = [table.field(name) for name in table.primary_key]
    imported = high_water_mb()
    started = time.perf_counter()
    change = KeyedChange.of(key_fields, list(table.names), upserts, deletes)  # type: ignore[arg-type]
    done = for_layout(layout, target, rules=rules).merge(change, part_rows)
    seconds = time.perf_counter() - started
    after = md5s(target)
    changed = [name for name, (md5, _) in after.items() if before.get(name, ("",))[0] != md5]
    results.put(
        {
            "layout": layout_name,
            "corrections": "spread" if spread else "recent",
            "seconds": round(seconds, 2),
            "dataset_mb": round(sum(size for _, size in before.values()) / 1e6, 1),
            "rewritten_mb": round(sum(after[name][1] for name in changed) / 1e6, 2),
            "files_rewritten": len(changed),
            "updated": done.counts.updated,
            "inserted": done.counts.inserted,
            "peak_rss_mb": high_water_mb(),
            "rss_after_imports_mb": imported,
            "rss_at_start_mb": baseline,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--part-rows", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=1_000)
    options = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    for layout in ("single-file", "partitioned"):
        for spread in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / ("readings" if layout == "partitioned" else "readings.csv")
                write_dataset(target, options.rows, options.part_rows if layout == "partitioned" else None)
                results = context.Queue()
                args = (layout, str(target), options.rows, options.part_rows, options.updates, spread)
                child = context.Process(target=one_case, args=(args, results))
                child.start()
                print(json.dumps(results.get()))
                child.join()


if __name__ == "__main__":
    main()
