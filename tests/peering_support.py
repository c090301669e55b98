"""Reading back what each orchestrator shows, through its public API, for the tests on the full stack."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.airflow_records import DagRun, TaskInstance
from orchestrator_clients.dagster_api import DagsterClient
from orchestrator_clients.dagster_records import SensorTick
from shared_tasks.project.names import NAMES, PipelineNames
from shared_tasks.project.pipeline import PIPELINE
from shared_tasks.project.settings import Settings
from tests.conftest import cli

T = TypeVar("T")
STEP_ASSETS = tuple(step.output for step in PIPELINE)


def stack_status(env: dict[str, str]) -> dict[str, Any]:
    completed = cli("stack", "status", "--json", env=env)
    assert completed.returncode == 0, completed.stderr
    status: dict[str, Any] = json.loads(completed.stdout)
    return status


@contextmanager
def airflow_client(env: dict[str, str]) -> Iterator[AirflowClient]:
    info = stack_status(env)["services"]["airflow"]
    password = json.loads(Path(info["password_file"]).read_text())["admin"]
    with AirflowClient(info["url"], "admin", password) as client:
        yield client


def dagster_client(env: dict[str, str]) -> DagsterClient:
    return DagsterClient(stack_status(env)["services"]["dagster"]["url"])


def stack_settings(env: dict[str, str], work_root: Path) -> Settings:
    """Settings reaching the stack's origin and S3 API, with a work root of the test's own."""
    status = stack_status(env)
    return Settings(git_url=status["git_url"], work_root=work_root, s3_endpoint_url=status["s3_endpoint"])


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 180, interval: float = 2) -> T:
    """The first answer of `probe` that is not None (a falsy answer other than None counts as an answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def materializations_of_airflow_run(
    client: DagsterClient, airflow_run_id: str, names: PipelineNames = NAMES, assets: Sequence[str] = STEP_ASSETS
) -> dict[str, list[dict[str, Any]]]:
    """Each step asset's materializations that Dagster holds for this Airflow run (by the metadata that names it)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for asset in assets:
        events = client.asset_materializations(names.asset_key(asset), limit=200)
        found[asset] = [
            {**event.metadata, "tags": event.tags, "dagster_run_id": event.run_id}
            for event in events
            if event.metadata.get("airflow_run_id") == airflow_run_id or event.metadata.get("run_id") == airflow_run_id
        ]
    return found


def sensor_tick_after(
    client: DagsterClient, moment: float, *, failed: bool = False, timeout: float = 240, names: PipelineNames = NAMES
) -> SensorTick:
    """The first evaluation of the pipeline's sensor of Airflow's runs that began after `moment` and has
    ended (with `failed`, the first that ended in failure)."""

    def ended() -> SensorTick | None:
        for tick in reversed(client.sensor_ticks(names.dagster_location, names.airflow_runs_sensor)):
            if tick.timestamp > moment and tick.status != "STARTED" and (tick.status == "FAILURE" or not failed):
                return tick
        return None

    return eventually(
        ended, f"an evaluation of sensor {names.airflow_runs_sensor} begun after {moment:.0f}", timeout=timeout
    )


def every_step_reported(
    client: DagsterClient,
    airflow_run_id: str,
    timeout: float = 120,
    names: PipelineNames = NAMES,
    assets: Sequence[str] = STEP_ASSETS,
) -> dict[str, list[dict[str, Any]]]:
    """The Airflow run's materializations in Dagster, once every step has one, and as they stand after the
    sensor has looked at Airflow once more (so a report made twice would be there to count)."""

    def all_steps() -> dict[str, list[dict[str, Any]]] | None:
        found = materializations_of_airflow_run(client, airflow_run_id, names, assets)
        return found if all(found.values()) else None

    eventually(all_steps, f"Dagster's materializations of Airflow run {airflow_run_id}", timeout=timeout)
    sensor_tick_after(client, time.time(), names=names)
    return materializations_of_airflow_run(client, airflow_run_id, names, assets)


def dataset_events(client: AirflowClient) -> list[dict[str, Any]]:
    """The `dataset` Asset's events: the announced version's record, and the DAG that made the event (if one)."""
    (asset,) = client.assets(name=NAMES.airflow_asset)
    announced = []
    for event in client.asset_events(asset.id):
        payload = event.extra.get("payload") if isinstance(event.extra.get("payload"), dict) else event.extra
        announced.append({**payload, "source_dag_id": event.source_dag_id, "event_id": event.id, "at": event.timestamp})
    return announced


VERIFY_DAG = NAMES.verify_dag_id
VERIFY_TASK = "verify_versions"


def failed_run_log(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> str:
    task = client.task_states(dag_id, run_id)[task_id]
    return "\n".join(client.log_tail(dag_id, run_id, task, lines=60))


def verified_since(client: AirflowClient, since: datetime, dag: str = VERIFY_DAG) -> tuple[dict[str, list[str]], bool]:
    """Commit -> the runs of the verifying DAG `dag` ending at or after `since` that verified it; and
    whether one is still to end. A verify run that failed in that time fails the caller at once, with its log.
    """
    verified_by: dict[str, list[str]] = {}
    busy = False
    for run in client.dag_runs(dag, order_by="run_after"):
        if run.end_date is not None and run.end_date < since:
            continue
        if run.state == "failed":
            log = failed_run_log(client, dag, run.dag_run_id, VERIFY_TASK)
            raise AssertionError(f"{dag} run {run.dag_run_id} failed:\n{log}")
        if run.state != "success":
            busy = True
            continue
        for result in client.return_value(dag, run.dag_run_id, VERIFY_TASK) or []:
            verified_by.setdefault(result["commit"], []).append(run.dag_run_id)
    return verified_by, busy


def wait_until_verified(
    client: AirflowClient, commits: Collection[str], since: datetime, timeout: float = 300, dag: str = VERIFY_DAG
) -> dict[str, list[str]]:
    """`verified_since`, once every commit is verified and no verify run is queued or running."""

    def all_verified() -> dict[str, list[str]] | None:
        verified_by, busy = verified_since(client, since, dag)
        return verified_by if not busy and set(commits) <= set(verified_by) else None

    return eventually(all_verified, f"{dag}'s runs of {len(commits)} version(s)", timeout=timeout)


@contextmanager
def verify_run_held(client: AirflowClient) -> Iterator[DagRun]:
    """A verify run triggered by hand whose task process is stopped (SIGSTOP) until the block ends.

    Yields the run as Airflow showed it while held (running, with its start).
    """
    run_id, _ = client.trigger(VERIFY_DAG, {}, None)

    def running_task() -> TaskInstance | None:
        task = client.task_states(VERIFY_DAG, run_id).get(VERIFY_TASK)
        return task if task is not None and task.state == "running" and task.pid else None

    task = eventually(running_task, f"the task of {VERIFY_DAG} run {run_id} running", interval=0.2)
    assert task.pid is not None
    os.kill(task.pid, signal.SIGSTOP)
    try:
        yield client.dag_run(VERIFY_DAG, run_id)
    finally:
        os.kill(task.pid, signal.SIGCONT)
