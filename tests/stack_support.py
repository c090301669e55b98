"""One local stack with both orchestrators for the whole test session (a plugin): the full-stack
tests, the peering and the cut-over tests share it, each reading what it made by run id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli, hermetic_environment
from tests.ports import free_port


@pytest.fixture(scope="session")
def full_stack_env(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[dict[str, str]]:
    """The environment of a CLI talking to the session's stack: S3 API, origin, Airflow and Dagster."""
    root = tmp_path_factory.mktemp("full-stack")
    env = hermetic_environment(session_home)
    env.update(
        DATASET_PIPELINE_STACK_DIR=str(root / "stack"),
        DATASET_PIPELINE_S3_PORT=str(free_port()),
        DATASET_PIPELINE_AIRFLOW_PORT=str(free_port()),
        DATASET_PIPELINE_DAGSTER_PORT=str(free_port()),
        DATASET_PIPELINE_SERVICES="airflow,dagster",
        PIPELINE_CUTOVER_FILE=str(root / "cutover.yaml"),  # the tests move steps without touching the repository's file
    )
    up = cli("stack", "up", "--seed-rows", "500", env=env, timeout=600)
    assert up.returncode == 0, up.stderr
    yield env
    cli("stack", "down", env=env)
