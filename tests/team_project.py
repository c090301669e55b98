"""A team's pipeline project, written by a test into a folder outside the product's source.

Its own schema (daily readings per station, with a generated key), its own package with two steps
(`collect` draws the run's readings, `clean` rounds them and drops those of stations the dataset
retired), its own parameter, and a seeded origin holding its dataset: what a team that adopts the
product has on the first day, and nothing the product's code knows about.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.versioning.gitops import Git
from shared_tasks.versioning.local_dvc import LocalDvc
from shared_tasks.versioning.versions import commit_message

STATIONS = ("north", "south", "east", "west")
SEED_ROWS = 40

SCHEMA: dict[str, Any] = {
    "fields": [
        {
            "name": "Reading ID",
            "type": "integer",
            "constraints": {"required": True, "minimum": 1, "maximum": 2**53 - 1},
        },
        {"name": "station", "type": "string", "constraints": {"required": True, "enum": list(STATIONS)}},
        {"name": "day", "type": "date", "constraints": {"required": True}},
        {"name": "celsius", "type": "number", "constraints": {"required": True, "minimum": -90, "maximum": 60}},
        {"name": "note", "type": "string", "constraints": {"maxLength": 40}},
    ],
    "primaryKey": ["Reading ID"],
    "missingValues": [""],
}

STEPS_MODULE = '''
"""The team's steps: plain functions, no orchestrator, no settings, no Git, no DVC."""

from __future__ import annotations

import datetime

import pandas as pd
import polars as pl

CALLS: list[str] = []  # which steps ran in this process, in order (the tests read it)


def collect(ctx) -> pd.DataFrame:
    CALLS.append("collect")
    rows = ctx.params["readings"]
    day = datetime.date(2026, 1, 1) + datetime.timedelta(days=int(ctx.rng.integers(0, 300)))
    return pd.DataFrame(
        {
            "station": [("north", "south", "east", "west")[int(i)] for i in ctx.rng.integers(0, 4, rows)],
            "day": [day] * rows,
            "celsius": ctx.rng.uniform(-20, 35, rows),
            "note": [ctx.params["note"]] * rows,
        }
    )


def clean(collect: pl.DataFrame, dataset: pl.LazyFrame, ctx) -> pl.DataFrame:
    CALLS.append("clean")
    known = dataset.select(pl.len()).collect().item()
    ctx.log.info("the dataset holds %d readings", known)
    return collect.with_columns(pl.col("celsius").round(1))
'''


def project_toml(layout: Layout, schema: str = "schemas/readings.schema.json", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        [[pipeline]]
        name = "readings"
        dataset = "data/readings.csv"
        layout = "{layout.value}"
        schema = "{schema}"
        description = "Daily temperature readings per station"

        [pipeline.params.readings]
        type = "integer"
        default = 3
        minimum = 1
        maximum = 500
        description = "Readings this run collects"

        [pipeline.params.note]
        type = "string"
        default = "ok"

        [[pipeline.steps]]
        name = "collect"
        function = "readings_team.steps:collect"
        description = "Collect the run's readings"

        [[pipeline.steps]]
        name = "clean"
        function = "readings_team.steps:clean"
        inputs = ["collect", "dataset"]

        [pipeline.output]
        strategy = "append"
        generated_key = "Reading ID"
        {extra}
        """
    )


def write_project(root: Path, layout: Layout = Layout.SINGLE_FILE, package: str = "readings_team") -> Path:
    """The project folder: project file, schema and the team's package. Returns the project file."""
    (root / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "schemas" / "readings.schema.json").write_text(json.dumps(SCHEMA, indent=2), encoding="utf-8")
    (root / package).mkdir(exist_ok=True)
    (root / package / "__init__.py").write_text("", encoding="utf-8")
    (root / package / "steps.py").write_text(STEPS_MODULE, encoding="utf-8")
    project_file = root / "dataset-pipeline.toml"
    project_file.write_text(project_toml(layout).replace("readings_team", package), encoding="utf-8")
    return project_file


def seed_csv(rows: int = SEED_ROWS) -> str:
    lines = ["Reading ID,station,day,celsius,note"]
    for index in range(rows):
        lines.append(f"{index + 1},{STATIONS[index % 4]},2025-12-{1 + index % 28:02d},{(index % 50) - 10}.5,")
    return "\n".join(lines) + "\n"


def seed_origin(root: Path, settings: Settings, remote_root: Path, dvc_files: dict[str, str]) -> Path:
    """A bare origin whose one commit holds the team's seed dataset, its data in `remote_root`."""
    origin, work = root / "origin.git", root / "seed"
    work.mkdir(parents=True)
    git = Git(settings, work, Redactor())
    git.run("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git.run("init", "--quiet", "--initial-branch=main")
    for name, text in dvc_files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text, encoding="utf-8")
    data = work / settings.data_relpath
    data.parent.mkdir(parents=True, exist_ok=True)
    if settings.layout is Layout.PARTITIONED:
        data.mkdir()
        (data / "part-000001.csv").write_text(seed_csv(), encoding="utf-8")
    else:
        data.write_text(seed_csv(), encoding="utf-8")
    LocalDvc(settings, work, Redactor(), remote_root).add_and_push()
    gitignore = str(Path(settings.data_relpath).parent / ".gitignore")
    git.run("add", "--", *dvc_files, settings.pointer_path, gitignore)
    git.run("commit", "--quiet", "--file", "-", input_text=commit_message("seed", "seed", SEED_ROWS, SEED_ROWS))
    git.run("push", "--quiet", origin.as_uri(), "HEAD:refs/heads/main")
    return origin


def git_out(cwd: Path, *args: str) -> str:
    env = {**os.environ}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


STATION_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "station_readings"


def add_station_pipeline(project_file: Path) -> None:
    """The station-readings example (merge on station + day) as a second pipeline of the project."""
    import shutil

    root = project_file.parent
    (root / "schemas").mkdir(exist_ok=True)
    shutil.copyfile(
        STATION_EXAMPLE / "schemas" / "station_readings.schema.json", root / "schemas" / "station_readings.schema.json"
    )
    shutil.copyfile(STATION_EXAMPLE / "station_steps.py", root / "station_steps.py")
    example = (STATION_EXAMPLE / "dataset-pipeline.toml").read_text(encoding="utf-8")
    with project_file.open("a", encoding="utf-8") as out:
        out.write("\n" + example[example.index("[[pipeline]]") :])


def use_settings_env(monkeypatch: Any, settings: Settings) -> None:
    """The environment a CLI or an orchestrator reads a declared pipeline's settings from."""
    monkeypatch.setenv("PIPELINE_GIT_URL", settings.git_url)
    monkeypatch.setenv("PIPELINE_WORK_ROOT", str(settings.work_root))
    monkeypatch.setenv("PIPELINE_PROJECT_FILE", str(settings.project_file))
