"""The README's first-hour walk-through, run as written: its shell block, line by line, timed.

The block is taken from the README itself (the first `sh` block under "A team's first hour"), so
what a team reads is what runs. It runs as one bash script (a `cd` holds for the lines after it),
stopping at the first line that fails, in a folder holding the team's CSV, with the product's
console scripts first on PATH and a local stack of its own (its folder and free ports).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.ports import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## A team's first hour"


def first_hour_commands(readme: Path = README) -> list[str]:
    """The lines of the first `sh` block under the heading, comments and all."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no sh block under {HEADING!r} in {readme}"
    return [line for line in block.group(1).splitlines() if line.strip()]


@dataclass(frozen=True)
class Walked:
    commands: list[str]
    seconds: list[float]  # of each line that finished, in order
    returncode: int
    output: str

    @property
    def failed_line(self) -> str | None:
        return self.commands[len(self.seconds)] if self.returncode != 0 else None

    def until(self, fragment: str, unless: str | None = None) -> float:
        """Seconds from the first line to the end of the first line holding `fragment` (and not `unless`)."""
        commands = [line.split("#")[0] for line in self.commands]
        index = next(i for i, line in enumerate(commands) if fragment in line and not (unless and unless in line))
        return sum(self.seconds[: index + 1])


def stack_environment(base: dict[str, str], stack_dir: Path) -> dict[str, str]:
    """`base` with the product's scripts first on PATH and a stack of its own."""
    return {
        **base,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', os.defpath)}",
        "DATASET_PIPELINE_STACK_DIR": str(stack_dir),
        "DATASET_PIPELINE_S3_PORT": str(free_port()),
        "DATASET_PIPELINE_AIRFLOW_PORT": str(free_port()),
        "DATASET_PIPELINE_DAGSTER_PORT": str(free_port()),
    }


def walk_through(commands: list[str], folder: Path, env: dict[str, str], timeout: float = 1800) -> Walked:
    timings = folder / ".walk-timings"
    lines = ["set -euo pipefail", f"exec 3>{_quoted(timings)}"]
    for command in commands:
        lines += ["started=$EPOCHREALTIME", command, 'echo "$started $EPOCHREALTIME" >&3']
    done = subprocess.run(
        ["bash", "-c", "\n".join(lines)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = [float(end) - float(start) for start, end in (row.split() for row in timings.read_text().splitlines())]
    timings.unlink()
    return Walked(commands, seconds, done.returncode, done.stdout)


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"
