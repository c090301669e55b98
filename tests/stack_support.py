"""Local stacks with both orchestrators for the whole test session (a plugin): the full-stack and
peering tests share one, the porting tests another (so the two groups run on two workers at
once); each test reads what it made by run id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, cli, hermetic_environment
from tests.ports import free_port
from tests.stack_scheduling import stopped_once

# Where a stack's team project lives (its orchestrators load it; the built-in pipeline's CLI env has none).
TEAM_PROJECT_DIR = "team-project"


def _full_stack(
    fixture: str, root: Path, session_home: Path, team_project: bool = False, example_project: bool = False
) -> Iterator[dict[str, str]]:
    """The environment of a CLI talking to a stack of its own: S3 API, origin, Airflow and Dagster.

    With `example_project`, the orchestrators serve the station-readings example as `make demo` has them
    do. With `team_project`, a team's project (tests/team_project.py) is written beside the stack and its
    orchestrators load it (PIPELINE_PROJECT_FILE in their environment only): `team_env` is the
    environment of a CLI working on that team's pipeline."""
    env = hermetic_environment(session_home)
    env.update(
        DATASET_PIPELINE_STACK_DIR=str(root / "stack"),
        DATASET_PIPELINE_S3_PORT=str(free_port()),
        DATASET_PIPELINE_AIRFLOW_PORT=str(free_port()),
        DATASET_PIPELINE_DAGSTER_PORT=str(free_port()),
        DATASET_PIPELINE_SERVICES="airflow,dagster",
        PIPELINE_CUTOVER_FILE=str(root / "cutover.yaml"),  # the tests move steps without touching the repository's file
    )
    up_env = dict(env)
    serving: list[str] = []
    if example_project:  # as `make demo` starts it
        serving = ["--project", str(REPO_ROOT / "examples" / "station_readings")]
    if team_project:
        from tests.team_project import add_station_pipeline, write_project

        project_file = write_project(root / TEAM_PROJECT_DIR, package="stack_readings_team")
        add_station_pipeline(project_file)  # two pipelines in one deployment
        up_env["PIPELINE_PROJECT_FILE"] = str(project_file)
    down = stopped_once(fixture, lambda: cli("stack", "down", env=env))
    up = cli("stack", "up", "--seed-rows", "500", *serving, env=up_env, timeout=600)
    assert up.returncode == 0, up.stderr
    yield env
    down()


@pytest.fixture(scope="session")
def full_stack_env(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[dict[str, str]]:
    """The session's full stack, for the comparison, everyone at once and peering."""
    yield from _full_stack("full_stack_env", tmp_path_factory.mktemp("full-stack"), session_home, example_project=True)


@pytest.fixture(scope="session")
def porting_stack_env(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[dict[str, str]]:
    """A second full stack, for porting steps: its tests then run beside the other full stack's, on another worker."""
    yield from _full_stack(
        "porting_stack_env", tmp_path_factory.mktemp("porting-stack"), session_home, team_project=True
    )


def team_env(stack_env: dict[str, str], pipeline: str = "readings") -> dict[str, str]:
    """The CLI environment of the team whose project the stack's orchestrators load, on one of its pipelines."""
    project = Path(stack_env["DATASET_PIPELINE_STACK_DIR"]).parent / TEAM_PROJECT_DIR / "dataset-pipeline.toml"
    assert project.is_file(), "this stack loads no team project"
    return {**stack_env, "PIPELINE_PROJECT_FILE": str(project), "PIPELINE_NAME": pipeline}
