"""A run of the pipeline through Airflow's REST API: trigger (or resume), follow, find its version."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console

from dataset_pipeline.outcome import RunOutcome
from dataset_pipeline.process import StackError
from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.errors import OrchestratorApiError
from orchestrator_clients.retrying import poll_until
from shared_tasks.project.names import NAMES
from shared_tasks.project.records import PublishedVersion
from shared_tasks.storage.pointer import s3_object_url

if TYPE_CHECKING:
    from dataset_pipeline.stack import LocalStack
    from shared_tasks.project.declared import DeclaredPipeline

RUN_TIMEOUT_SECONDS = 900
FINISHED_STATES = {"success", "failed"}
REPORTED_STATES = ("running", "success", "failed", "up_for_retry")
FAILED_STATES = ("failed", "upstream_failed", "up_for_retry")


def run_dag(
    stack: LocalStack,
    client: AirflowClient,
    records: int,
    run_id: str | None,
    console: Console,
    pipeline: DeclaredPipeline | None = None,
    params: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Trigger the DAG (or resume run `run_id`), follow it, and return the version it published: the
    built-in pipeline's DAG adding `records`, or a declared `pipeline`'s with its `params`."""
    dag_id = pipeline.names.dag_id if pipeline is not None else NAMES.dag_id
    conf = dict(params or {}) if pipeline is not None else {"records": records}
    client.unpause(dag_id)
    airflow_run_id, existed = client.trigger(dag_id, conf, run_id)
    earlier_state = client.run_state(dag_id, airflow_run_id) if existed else None
    if earlier_state == "failed":
        client.retry_failed(dag_id, airflow_run_id)
    action = "resuming" if existed else "triggered"
    console.print(f"airflow run [bold]{airflow_run_id}[/bold] {action} ({client.url})", highlight=False)
    state = follow(client, airflow_run_id, console, dag_id)
    if state != "success":
        report_failure(client, airflow_run_id, console, dag_id)
        raise StackError(f"the Airflow run {airflow_run_id} ended {state}")
    version = published_version(stack, client, airflow_run_id, pipeline)
    tasks = client.task_states(dag_id, airflow_run_id)
    step_seconds = {task_id: float(task.duration) for task_id, task in tasks.items() if task.duration}
    already = version.already_published or earlier_state == "success"  # nothing new was made
    return RunOutcome(version.model_copy(update={"already_published": already}), airflow_run_id, step_seconds)


def follow(client: AirflowClient, run_id: str, console: Console, dag_id: str = NAMES.dag_id) -> str:
    """The run's final state ("timed out" after RUN_TIMEOUT_SECONDS), each task's progress printed."""
    reported: dict[str, str] = {}
    final: list[str] = []

    def finished() -> bool:
        for task_id, task in client.task_states(dag_id, run_id).items():
            state = task.state or "none"
            if reported.get(task_id) != state and state in REPORTED_STATES:
                mark = {"success": "[green]✓[/green]", "failed": "[red]✗[/red]"}.get(state, "…")
                console.print(f"{mark} {task_id:<12} {state} (try {task.try_number})", highlight=False)
                reported[task_id] = state
        final.append(client.run_state(dag_id, run_id))
        return final[-1] in FINISHED_STATES

    with console.status("waiting for Airflow…"), contextlib.suppress(TimeoutError):
        poll_until(finished, timeout=RUN_TIMEOUT_SECONDS, interval=1, timed_out=TimeoutError)
        return final[-1]
    return "timed out"


def report_failure(client: AirflowClient, run_id: str, console: Console, dag_id: str = NAMES.dag_id) -> None:
    for task_id, task in client.task_states(dag_id, run_id).items():
        if task.state in FAILED_STATES:
            console.print(f"[red]task {task_id} {task.state}[/red]; the end of its log:", highlight=False)
            with contextlib.suppress(OrchestratorApiError, ValueError):
                for line in client.log_tail(dag_id, run_id, task):
                    console.print(f"  {line}", highlight=False, markup=False)


def published_version(
    stack: LocalStack, client: AirflowClient, run_id: str, pipeline: DeclaredPipeline | None = None
) -> PublishedVersion:
    """What push_data returned (its XCom), or else the version on the origin that names the run."""
    dag_id = pipeline.names.dag_id if pipeline is not None else NAMES.dag_id
    with contextlib.suppress(OrchestratorApiError, ValueError, KeyError):
        value = client.return_value(dag_id, run_id, "push_data")
        if isinstance(value, dict) and value.get("run_id") == run_id:
            return PublishedVersion.from_mapping(value)
    from shared_tasks.versioning.history import history

    for version in history(stack.settings(pipeline)):
        if version.run_id == run_id and version.md5 is not None:  # not a commit merely claiming the run
            return PublishedVersion.from_mapping(
                {**version.to_dict(), "s3_url": s3_object_url(stack.remote_url, version.md5)}
            )
    raise StackError(f"the Airflow run {run_id} succeeded but no version names it")
