"""A team's first hour, timed: the README's walk-through block run as written, line by line.

From a folder holding only the team's CSV (generated as tests/test_schema_infer.py generates it: a
key of two columns, three columns of each type, missing values) to a version published through
each orchestrator, on a local stack of its own. Prints each line's seconds and the time from the
empty folder to the first version directly, through Airflow and through Dagster.

    .venv/bin/python bench/bench_first_hour.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset_pipeline.testing.origin import hermetic_environment  # noqa: E402
from tests.test_schema_infer import generated_rows, write_csv  # noqa: E402
from tests.walkthrough import first_hour_commands, stack_environment, walk_through  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="first-hour-"))
    folder = root / "team"
    folder.mkdir(parents=True)
    header, rows, _ = generated_rows()
    write_csv(folder / "readings.csv", header, rows)
    env = stack_environment(hermetic_environment(root / "home"), root / "stack")
    commands = first_hour_commands()
    try:
        walked = walk_through(commands, folder, env)
    finally:
        down = [sys.executable, "-m", "dataset_pipeline.cli", "stack", "down"]
        subprocess.run(down, env=env, capture_output=True, check=False, cwd=ROOT)
    print(f"CSV: {len(rows)} rows, {len(header)} columns; machine: {os.cpu_count()} cores")
    for command, seconds in zip(commands, walked.seconds, strict=False):
        print(f"{seconds:8.1f} s  {command.split('#')[0].strip()}")
    if walked.returncode != 0:
        sys.exit(f"failed at: {walked.failed_line}\n{walked.output[-4000:]}")
    print(f"empty folder -> first version (adopt):          {walked.until('dataset-pipeline adopt'):6.1f} s")
    print(f"empty folder -> a version run directly:         {walked.until('run --pipeline', unless='--via'):6.1f} s")
    print(f"empty folder -> a version through Airflow:      {walked.until('--via airflow'):6.1f} s")
    print(f"empty folder -> a version through Dagster:      {walked.until('--via dagster'):6.1f} s")
    print(f"of which stack up:                              {walked.seconds[_index(commands, 'stack up')]:6.1f} s")


def _index(commands: list[str], fragment: str) -> int:
    return next(i for i, line in enumerate(commands) if fragment in line)


if __name__ == "__main__":
    main()
