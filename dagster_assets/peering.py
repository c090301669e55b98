"""Airflow's runs of each pipeline's DAG in Dagster: dagster-airlift's "peer" and "observe", on Airflow 3.

dagster-airlift 0.29 cannot reach Airflow 3 (it builds every URL on the removed `/api/v1`, logs in
with basic auth, and reads Airflow 2's shapes), so this sensor reads Airflow's REST API v2 through
`orchestrator_clients.airflow_api` instead. For each Airflow task instance that succeeded, the
asset standing for its step (from the shared pipeline description) is reported as materialized,
with the step's own record from the task's XCom as metadata and, for the published dataset, its md5
as the data version; then the asset checks run on that version. A task that failed for good is
reported as an observation of its step's asset, with a link to its log in Airflow's UI.

Each task instance is reported once: the cursor keeps, per Airflow run, the highest try reported
for each task (a cleared task's rerun is a new try, reported once more), and the time it last
looked. Runs updated since then (less an overlap for clocks and late commits) are read again, and
so are runs that were still going; while Airflow cannot be reached the cursor stays where it was,
so the next evaluation catches up. Steps that Airflow cut over to Dagster are Dagster's own
materializations already: their task's record names the Dagster run, and they are skipped here.

Each pipeline has a sensor of its own (`airflow_runs` for the built-in one, `<name>_airflow_runs` for
a declared one), reporting its DAG's task instances on its own asset keys, with a cursor of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import dagster as dg
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator_clients.airflow_api import AirflowClient, TaskInstance
from shared_tasks.project.cutover import BUILTIN, CutoverSteps

OVERLAP = timedelta(minutes=5)
RUNS_KEPT = 1000  # runs the cursor remembers; older ones are no longer read again
FINAL_RUN_STATES = {"success", "failed"}
CHECKED_COMMIT_TAG = "dataset-pipeline/checked-commit"
DATA_VERSION_TAG = "dagster/data_version"  # what Dagster reads a reported materialization's data version from


class AirflowPeer(BaseSettings):
    """Where Airflow is and how Dagster logs in: from the environment (a Secret on the cluster), never stored."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_AIRFLOW_", extra="ignore", frozen=True)

    url: str | None = Field(default=None, description="Airflow's API server, e.g. http://airflow-api-server:8080.")
    username: str = "dagster-peer"
    password: SecretStr | None = None
    ui_url: str | None = Field(default=None, description="Airflow's UI as people reach it (links); default: url.")

    def client(self) -> AirflowClient:
        if not self.url or self.password is None:
            raise dg.Failure("Airflow is not configured: set PIPELINE_AIRFLOW_URL, _USERNAME and _PASSWORD")
        return AirflowClient(self.url, self.username, self.password.get_secret_value())

    def links(self, dag_id: str = BUILTIN.names.dag_id) -> AirflowLinks:
        return AirflowLinks((self.ui_url or self.url or "").rstrip("/"), dag_id)


@dataclass(frozen=True)
class AirflowLinks:
    base: str
    dag_id: str = BUILTIN.names.dag_id

    def run(self, run_id: str) -> str:
        return f"{self.base}/dags/{self.dag_id}/runs/{quote(run_id, safe='')}"

    def task(self, run_id: str, task: TaskInstance) -> str:
        return f"{self.run(run_id)}/tasks/{task.task_id}?try_number={task.try_number}"


class PeerCursor(BaseModel):
    since: datetime | None = None
    reported: dict[str, dict[str, int]] = Field(default_factory=dict)  # run id -> task id -> try
    active: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> PeerCursor:
        return cls.model_validate_json(text) if text else cls()


@dataclass
class Observed:
    events: list[dg.AssetMaterialization | dg.AssetObservation] = field(default_factory=list)
    checked_commits: list[tuple[str, str]] = field(default_factory=list)  # (run key, commit)


def observe_airflow(
    client: AirflowClient,
    cursor: PeerCursor,
    links: AirflowLinks,
    now: datetime,
    pipeline: CutoverSteps = BUILTIN,
) -> tuple[Observed, PeerCursor]:
    """What Airflow did since the cursor in the pipeline's DAG, as Dagster events, and the cursor after it."""
    dag_id = pipeline.names.dag_id
    since = cursor.since - OVERLAP if cursor.since else None
    runs = {run.dag_run_id: run for run in client.dag_runs(dag_id, updated_at_gte=since)}
    for run_id in cursor.active:
        if run_id not in runs:
            runs[run_id] = client.dag_run(dag_id, run_id)
    observed = Observed()
    reported = {run_id: dict(tasks) for run_id, tasks in cursor.reported.items()}
    for run_id in runs:
        done = reported.setdefault(run_id, {})
        for task in client.task_instances(dag_id, run_id):
            new = task.task_id in pipeline.steps and task.try_number > done.get(task.task_id, 0)
            if new and _observe_task(client, pipeline, run_id, task, links, observed):
                done[task.task_id] = task.try_number
    active = [run_id for run_id, run in runs.items() if run.state not in FINAL_RUN_STATES]
    kept = dict(list(reported.items())[-RUNS_KEPT:])
    return observed, PeerCursor(since=now, reported=kept, active=active)


def _observe_task(
    client: AirflowClient,
    pipeline: CutoverSteps,
    run_id: str,
    task: TaskInstance,
    links: AirflowLinks,
    observed: Observed,
) -> bool:
    """Add the task's event; True once the task instance is settled (reported, or nothing to report)."""
    step = pipeline.steps[task.task_id]
    asset = list(pipeline.names.asset_key(step.output))
    about: dict[str, Any] = {
        "airflow_run_id": run_id,
        "airflow_try_number": task.try_number,
        "airflow_run_url": dg.MetadataValue.url(links.run(run_id)),
    }
    if task.state == "success":
        record = client.return_value(pipeline.names.dag_id, run_id, task.task_id)
        if not isinstance(record, Mapping) or record.get("dagster_run_id"):
            return True  # no record to report, or a step Dagster ran for Airflow: its own event already
        tags = {DATA_VERSION_TAG: str(record["md5"])} if step.publishes and record.get("md5") else None
        observed.events.append(
            dg.AssetMaterialization(asset_key=asset, metadata={**_metadata(record), **about}, tags=tags)
        )
        if tags:
            observed.checked_commits.append((f"{run_id}:{task.task_id}:{task.try_number}", str(record["commit"])))
        return True
    if task.state == "failed":
        failure: dict[str, Any] = {
            "airflow_state": "failed",
            "airflow_task_log": dg.MetadataValue.url(links.task(run_id, task)),
        }
        observed.events.append(
            dg.AssetObservation(
                asset_key=asset,
                description=f"Airflow's task {task.task_id} of run {run_id} failed (try {task.try_number})",
                metadata={**about, **failure, "log_tail": "\n".join(_log_tail(client, pipeline, run_id, task))},
            )
        )
        return True
    return False  # still going, or waiting for a retry: looked at again next time


def _log_tail(client: AirflowClient, pipeline: CutoverSteps, run_id: str, task: TaskInstance) -> list[str]:
    try:
        return client.log_tail(pipeline.names.dag_id, run_id, task, lines=10)
    except Exception:  # the log is a courtesy; the link says where it is
        return []


def _metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    values: Iterator[tuple[str, Any]] = ((key, value) for key, value in record.items() if value is not None)
    return {key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value for key, value in values}


def airflow_runs_sensor(
    checks_job: dg.UnresolvedAssetJobDefinition | None, interval_seconds: int, pipeline: CutoverSteps = BUILTIN
) -> dg.SensorDefinition:
    """The pipeline's sensor, running when Airflow is configured; with a checks job, it requests the
    checks of every version it reports."""
    peer = AirflowPeer()
    names = pipeline.names

    @dg.sensor(
        name=names.airflow_runs_sensor,
        job=checks_job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING if peer.url else dg.DefaultSensorStatus.STOPPED,
        description=f"Airflow's runs of DAG {names.dag_id}, reported as materializations of the steps' assets",
    )
    def airflow_runs(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        with AirflowPeer().client() as client:
            observed, cursor = observe_airflow(
                client, PeerCursor.parse(context.cursor), AirflowPeer().links(names.dag_id), datetime.now(UTC), pipeline
            )
        checked = observed.checked_commits if checks_job is not None else []
        requests = [dg.RunRequest(run_key=key, tags={CHECKED_COMMIT_TAG: commit}) for key, commit in checked]
        return dg.SensorResult(asset_events=observed.events, run_requests=requests, cursor=cursor.model_dump_json())

    return airflow_runs
