"""Helpers for the Airflow tests: `dag.test()` in a process of its own, and one shared local stack.

`dag.test()` runs in a subprocess with its own AIRFLOW_HOME (migrated once per session), so the
test process never imports Airflow's ORM or keeps its database open. The stack tests and the UI
test share one stack (S3 API + Airflow on free loopback ports in a tmp folder), started through
the CLI as a user starts it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALLER_CREDENTIALS, REPO_ROOT, SESSION_CUTOVER, cli, hermetic_environment
from tests.ports import free_port
from tests.stack_scheduling import stopped_once

DAG_TEST_SCRIPT = """
import json
from airflow_dags.dataset_pipeline import dag
run = dag.test(run_conf={"records": RECORDS})
tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
print("DAG_TEST_RESULT " + json.dumps({"run_id": run.run_id, "state": str(run.state), "tries": tries}))
"""


def airflow_env(home: Path) -> dict[str, str]:
    """Airflow configuration for a throwaway AIRFLOW_HOME (SQLite, no examples)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PIPELINE_CUTOVER_FILE": str(SESSION_CUTOVER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


@pytest.fixture(scope="session")
def migrated_airflow_home(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Path:
    """An Airflow metadata database, migrated once; each test gets a copy."""
    home = tmp_path_factory.mktemp("airflow-template")
    env = {**hermetic_environment(session_home), **airflow_env(home)}
    completed = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return home


@dataclass
class DagTestRun:
    run_id: str
    state: str
    tries: dict[str, int]
    output: str


def run_dag_test(
    template_home: Path, work: Path, settings_env: dict[str, str], records: int, **extra_env: str
) -> DagTestRun:
    """One `dag.test()` run of the DAG against the given settings, in a process of its own."""
    home = work / "airflow-home"
    if not home.exists():
        shutil.copytree(template_home, home)
    env = {**settings_env, **airflow_env(home), "PIPELINE_RETRY_DELAY_SECONDS": "0", **extra_env}
    completed = subprocess.run(
        [sys.executable, "-c", DAG_TEST_SCRIPT.replace("RECORDS", str(int(records)))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    output = completed.stdout + completed.stderr
    lines = [line for line in completed.stdout.splitlines() if line.startswith("DAG_TEST_RESULT ")]
    assert completed.returncode == 0 and lines, output[-4000:]
    result = json.loads(lines[-1].removeprefix("DAG_TEST_RESULT "))
    return DagTestRun(result["run_id"], result["state"], result["tries"], output)


@dataclass
class SharedStack:
    env: dict[str, str]
    root: Path
    first_up_output: str = ""

    def status(self) -> dict[str, Any]:
        completed = cli("stack", "status", "--json", env=self.env)
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)  # type: ignore[no-any-return]

    def up(self) -> subprocess.CompletedProcess[str]:
        completed = cli("stack", "up", "--seed-rows", "200", env=self.env, timeout=600)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        return completed

    def down(self) -> None:
        cli("stack", "down", env=self.env, timeout=300)


_shared: dict[str, SharedStack] = {}


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Iterator[SharedStack]:
    """The local stack with Airflow only, shared by the stack and UI tests (started once)."""
    if "stack" not in _shared:
        root = tmp_path_factory.mktemp("airflow-stack") / "stack"
        env = hermetic_environment(session_home)
        env.update(
            DATASET_PIPELINE_STACK_DIR=str(root),
            DATASET_PIPELINE_S3_PORT=str(free_port()),
            DATASET_PIPELINE_AIRFLOW_PORT=str(free_port()),
            DATASET_PIPELINE_SERVICES="airflow",
        )
        env.update(CALLER_CREDENTIALS)
        _shared["stack"] = SharedStack(env=env, root=root)
        first = _shared["stack"].up()
        _shared["stack"].first_up_output = first.stdout + first.stderr
    stack = _shared["stack"]
    if not stack.status()["services"]["airflow"]["running"]:
        stack.up()
    down = stopped_once("airflow_stack", stack.down)
    yield stack
    down()
