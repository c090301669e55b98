"""A pytest plugin for a team's pipeline project: its steps tested as a run calls them.

Opt in by name: `pytest_plugins = ["dataset_pipeline.testing"]` in the project's top conftest.py,
or `pytest -p dataset_pipeline.testing`. The project is PIPELINE_PROJECT_FILE, else the
`dataset-pipeline.toml` in pytest's root folder or the nearest folder above it; its pipeline is the
only one, or PIPELINE_NAME's.

- `pipeline`: the declared pipeline (its steps, parameters, schema path).
- `read_dataset(path)`: a CSV read as a step gets the dataset (a polars DataFrame: the schema's
  integers and numbers typed, the rest text), e.g. a sample of the team's data kept with the tests.
- `run_step(name, params=..., run_id=..., **inputs)`: the step called as a run calls it, on frames
  given in memory: each input converted as the step's parameter is annotated (pandas, polars, or
  a LazyFrame), the parameters checked against their declared bounds, the same seeded context
  (`ctx.rng` and `ctx.seed` draw the same for the same run id and step). Returns what the step
  returned; anything but a frame is an error naming the step.

With real versioning (`dataset_pipeline.testing.origin`): `dataset_origin` (a bare Git origin and
an S3 API on loopback, seeded with the team's sample), `make_dataset_origin(data)`, `run_pipeline`
(the whole pipeline, run directly, returns the published version) and `publish_foreign_version`
(bad upstream data, published as a person would).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dataset_pipeline.testing.origin import (
    dataset_origin,
    make_dataset_origin,
    publish_foreign_version,
    pytest_addoption,
    run_pipeline,
    s3_server,
    versioning_environment,
)

__all__ = [
    "dataset_origin",
    "find_project_file",
    "make_dataset_origin",
    "pipeline",
    "publish_foreign_version",
    "pytest_addoption",
    "read_dataset",
    "run_pipeline",
    "run_step",
    "s3_server",
    "versioning_environment",
]

if TYPE_CHECKING:
    from shared_tasks.project.declared import DeclaredPipeline

PROJECT_FILE_ENV = "PIPELINE_PROJECT_FILE"


def find_project_file(start: Path) -> Path:
    """PIPELINE_PROJECT_FILE, else the project file in `start` or the nearest folder above it."""
    from shared_tasks.project.declared import PROJECT_FILE_NAME

    if os.environ.get(PROJECT_FILE_ENV):
        return Path(os.environ[PROJECT_FILE_ENV])
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / PROJECT_FILE_NAME).is_file():
            return folder / PROJECT_FILE_NAME
    raise pytest.UsageError(f"no {PROJECT_FILE_NAME} in {start} or above it, and {PROJECT_FILE_ENV} is not set")


@pytest.fixture
def pipeline(pytestconfig: pytest.Config) -> DeclaredPipeline:
    from shared_tasks.project.declared import load_project

    return load_project(find_project_file(Path(pytestconfig.rootpath))).pipeline(os.environ.get("PIPELINE_NAME"))


@pytest.fixture
def read_dataset(pipeline: DeclaredPipeline) -> Callable[[Path], Any]:
    from shared_tasks.run.team_steps import scan_dataset
    from shared_tasks.validation.schema import DatasetRules
    from shared_tasks.validation.table_schema import load_table_schema

    rules = DatasetRules(load_table_schema(pipeline.schema_path))

    def read(path: Path) -> Any:
        return scan_dataset([Path(path)], rules).collect()

    return read


@pytest.fixture
def run_step(pipeline: DeclaredPipeline) -> Callable[..., Any]:
    from shared_tasks.run.team_steps import call_step

    def run(step: str, *, params: dict[str, Any] | None = None, run_id: str = "test-run", **inputs: Any) -> Any:
        return call_step(pipeline, step, inputs, params or {}, run_id)

    return run
