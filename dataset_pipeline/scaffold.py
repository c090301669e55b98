"""`dataset-pipeline init`: a pipeline project written from a team's CSV, ready to test and run.

The project holds its project file, the Table Schema inferred from the CSV (every guess
commented), a package with one example step, a sample of the CSV and a test of the step through
the product's pytest plugin (dataset_pipeline.testing), which passes as written. The example
step draws rows of the current version; how they become the version follows the schema: `merge`
on the inferred primary key (the rows come back unchanged), else `append`. Nothing is written
over: the folder must be empty or new.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

SAMPLE_ROWS = 50
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "station_readings"

PROJECT = """\
# The pipeline {name}, declared for dataset-pipeline (`dataset-pipeline init --from {source}`).
#
# Start it: commit this folder beside the CSV's repository, then publish the CSV as the first
# version with `dataset-pipeline adopt {source} --pipeline {name}`. Replace the example step with
# the team's own functions (each a plain function taking `dataset` and/or earlier steps' outputs,
# and `ctx`), and test them with `pytest` (tests/ uses the dataset_pipeline.testing plugin).

[[pipeline]]
name = "{name}"
description = "{name}: versioned with dataset-pipeline"
dataset = "{dataset}"
layout = "single-file"
schema = "schemas/{name}.schema.yaml"

[pipeline.params.rows]
type = "integer"
default = 3
minimum = 1
maximum = 1000
description = "How many rows the example step draws"

[[pipeline.steps]]
name = "refresh"
function = "{package}.steps:refresh"
inputs = ["dataset"]
description = "An example: rows of the current version, drawn at random (the same for a retry)"

[pipeline.output]
strategy = "{strategy}"
"""

STEPS = '''\
"""{name}'s steps: plain functions, no orchestrator, no Git, no DVC."""

from __future__ import annotations

import polars as pl

from shared_tasks.run.team_steps import StepContext
{constant}

def refresh(dataset: pl.LazyFrame, ctx: StepContext) -> pl.DataFrame:
    """{doc}"""
    current = dataset.collect()
    drawn = current.sample(n=min(int(ctx.params["rows"]), current.height), seed=ctx.seed)
    return {returned}
'''
# A keyed dataset's example revises one column outside the key: each drawn row takes the next one's
# value (values the dataset already holds, so the schema still accepts them), and the merge updates.
REVISED_CONSTANT = """
REVISED = {column!r}  # the column outside the key the example revises
"""
REVISED_RETURN = "drawn.with_columns(pl.col(REVISED).shift(1, fill_value=pl.col(REVISED).last()))"


CONFTEST = '''\
"""The product's fixtures for this project's tests: pipeline, read_dataset, run_step, and a real
Git origin and S3 API (dataset_origin, run_pipeline, publish_foreign_version)."""

pytest_plugins = ["dataset_pipeline.testing"]
'''

PYTEST_INI = """\
[pytest]
testpaths = tests
# DVC installs Hydra, whose pytest plugin loads a parser runtime another dependency replaces.
addopts = -p no:hydra_pytest
filterwarnings = ignore::DeprecationWarning:dvc
# The data the plugin's dataset_origin fixture seeds its Git origin and S3 API with.
dataset_pipeline_sample = tests/sample.csv
"""

TEST = '''\
"""{name}'s steps, called as a run calls them, on a sample of the dataset (tests/sample.csv)."""

from pathlib import Path

import polars as pl
import pytest

SAMPLE = Path(__file__).with_name("sample.csv")


def test_refresh_draws_the_rows_asked_for_from_the_dataset(run_step, read_dataset):
    sample = read_dataset(SAMPLE)
    drawn = run_step("refresh", dataset=sample, params={{"rows": 3}})
    assert drawn.height == min(3, sample.height)
    assert drawn.columns == sample.columns


def test_a_retry_of_the_run_draws_the_same_rows(run_step, read_dataset):
    sample = read_dataset(SAMPLE)
    first = run_step("refresh", dataset=sample, run_id="manual__retry")
    assert first.equals(run_step("refresh", dataset=sample, run_id="manual__retry"))


# The whole pipeline on a real Git origin and S3 API on loopback, seeded with the sample.


def test_a_run_publishes_a_version_the_next_run_builds_on(dataset_origin, run_pipeline):
    before = dataset_origin.read()
    version = run_pipeline(params={{"rows": 3}})
    assert version.commit == dataset_origin.head()
    after = dataset_origin.read(version.commit)
    assert after.columns == before.columns
    assert after.height == before.height + version.rows_added


def test_a_run_refuses_to_build_on_a_bad_upstream_version(dataset_origin, publish_foreign_version, run_pipeline):
    bad = dataset_origin.read().cast(pl.String)
    bad[0, bad.columns[0]] = "=1+2"  # a spreadsheet formula: no schema accepts one
    foreign = publish_foreign_version(bad, message="a hand edit that breaks the schema")
    with pytest.raises(ValueError, match="is not valid"):
        run_pipeline()
    assert dataset_origin.head() == foreign, "nothing was published on top of the bad version"
'''


@dataclass(frozen=True)
class Scaffolded:
    root: Path
    pipeline: str
    project_file: Path
    schema_file: Path
    rows: int
    primary_key: list[str]
    strategy: str


def pipeline_name_of(csv: Path) -> str:
    """A pipeline name from the CSV's file name: lower case, words joined by single underscores."""
    from shared_tasks.project.names import check_pipeline_name

    words = re.findall(r"[a-z0-9]+", csv.stem.lower())
    name = "_".join(words)
    if not name or not name[0].isalpha():
        name = f"dataset_{name}" if name else "dataset"
    return check_pipeline_name(name[:64].rstrip("_"))


def init_project(root: Path, csv: Path | None, name: str | None = None) -> Scaffolded:
    """Write the project into `root` (empty or new); from `csv`, or the bundled example without one."""
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty: init writes a new project into an empty or new folder")
    if csv is None:
        return _from_example(root)
    if not csv.is_file():
        raise ValueError(f"{csv}: no such file")
    from shared_tasks.files import write_atomically
    from shared_tasks.project.names import check_pipeline_name
    from shared_tasks.validation.infer import infer_schema

    pipeline = check_pipeline_name(name) if name else pipeline_name_of(csv)
    inferred = infer_schema(csv)
    strategy = "merge" if inferred.primary_key else "append"
    package = f"{pipeline}_steps"
    revised = next((f.name for f in inferred.fields if f.name not in inferred.primary_key), None)
    key = ", ".join(inferred.primary_key)
    if not inferred.primary_key:
        how, constant, returned = "They are appended: the schema has no key.", "", "drawn"
    elif revised is None:
        how = f"They are merged on the key {key}, unchanged: a run publishes once a step changes them."
        constant, returned = "", "drawn"
    else:
        how = (
            f"Each passes its `{revised}` on to the next, as a correction would, and they are merged on "
            f"the key {key}: the version updates them."
        )
        constant, returned = REVISED_CONSTANT.format(column=revised), REVISED_RETURN
    files = {
        "dataset-pipeline.toml": PROJECT.format(
            name=pipeline, source=csv.name, dataset=f"data/{csv.name}", package=package, strategy=strategy
        ),
        f"schemas/{pipeline}.schema.yaml": inferred.to_yaml(),
        f"{package}/__init__.py": "",
        f"{package}/steps.py": STEPS.format(name=pipeline, doc=_docstring(how), constant=constant, returned=returned),
        "conftest.py": CONFTEST,
        "pytest.ini": PYTEST_INI,
        "tests/__init__.py": "",
        "tests/test_steps.py": TEST.format(name=pipeline),
        "tests/sample.csv": _head(csv, SAMPLE_ROWS),
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    return Scaffolded(
        root,
        pipeline,
        root / "dataset-pipeline.toml",
        root / "schemas" / f"{pipeline}.schema.yaml",
        inferred.rows,
        inferred.primary_key,
        strategy,
    )


def _docstring(how: str) -> str:
    import textwrap

    text = (
        "An example to replace with the team's own: `rows` rows of the current version, drawn with "
        f"the run's seed (a retry draws the same). {how}"
    )
    return textwrap.fill(text, width=96, subsequent_indent="    ")


def _head(csv: Path, rows: int) -> str:
    """The header and the first `rows` records, whole (a quoted field may span lines)."""
    import csv as csv_module
    import io

    out = io.StringIO()
    with csv.open(encoding="utf-8", newline="") as handle:
        writer = csv_module.writer(out, lineterminator="\n")
        for number, record in enumerate(csv_module.reader(handle)):
            if number > rows:
                break
            writer.writerow(record)
    return out.getvalue()


def _from_example(root: Path) -> Scaffolded:
    if not EXAMPLE.is_dir():
        raise ValueError("the bundled example is not installed here: give a CSV with --from")
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    from shared_tasks.project.declared import load_project

    declared = load_project(root / "dataset-pipeline.toml").pipeline()
    return Scaffolded(
        root, declared.name, root / "dataset-pipeline.toml", declared.schema_path, 0, [], declared.output.strategy
    )
