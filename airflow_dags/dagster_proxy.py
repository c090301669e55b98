"""A step Airflow cut over to Dagster: its task launches the step's asset in Dagster and waits in the triggerer.

The task keeps its id and its place in the graph, so Airflow's UI, retries, history and alerts stay.
On a worker it launches a run of Dagster's job with only the step's asset selected, tagged with the
Airflow DAG, run and task (the asset takes its run id from that tag, so it works in this run's
workspace), then defers: the wait is the triggerer's, no worker slot or pod is held while Dagster
runs. When the Dagster run ends the task resumes on a worker for a moment, fails with Dagster's
error and the run's URL if it failed, or returns the step's record with the Dagster run named (so
Dagster's sensor of Airflow's runs does not report the step a second time).

A retry launches again only if every earlier launch for this task failed: a run still going, or
one that succeeded, is waited on instead; a launch whose answer was lost is found by its tag.

The trigger fires no sooner than `settle_seconds` after the task deferred. Airflow 3.3's scheduler
fails a resumed task whose own defer-exit it has not yet processed (the worker reports that exit
seconds later; apache/airflow#67287, fixed upstream by #68741 but not in 3.3.2), so a Dagster run
that ends quickly would cost a spurious retry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.triggers.base import BaseTrigger, TriggerEvent
from pydantic_settings import BaseSettings, SettingsConfigDict

from airflow_dags.version_watcher import announcement
from shared_tasks.project.cutover import (
    AIRFLOW_DAG_TAG,
    AIRFLOW_RUN_TAG,
    AIRFLOW_TASK_TAG,
    AIRFLOW_TRY_TAG,
    BUILTIN,
    DAGSTER_RUN_XCOM,
    CutoverSteps,
)

RUN_URL_XCOM = DAGSTER_RUN_XCOM  # Dagster checks it: the run acts for this task only if the task names it
FAILED = {"FAILURE", "CANCELED"}


class DagsterEndpoint(BaseSettings):
    """Where Dagster's webserver is (the GraphQL API), and its UI as people reach it (for links)."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_DAGSTER_", extra="ignore", frozen=True)

    url: str | None = None
    ui_url: str | None = None
    poll_seconds: float = 2.0
    settle_seconds: float = 10.0

    def api(self) -> str:
        if not self.url:
            raise RuntimeError("PIPELINE_DAGSTER_URL is not set: a step cut over to Dagster needs Dagster's URL")
        return self.url.rstrip("/")

    def run_url(self, run_id: str) -> str:
        return f"{(self.ui_url or self.api()).rstrip('/')}/runs/{run_id}"


class DagsterRunLink(BaseOperatorLink):
    """The Dagster run that ran the step, on the task instance's page in Airflow's UI."""

    name = "Dagster run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return str(XCom.get_value(ti_key=ti_key, key=RUN_URL_XCOM) or "")


class DagsterRunTrigger(BaseTrigger):
    """Fires once the Dagster run has finished, with its status, and not before `not_before` (epoch seconds)."""

    def __init__(self, url: str, run_id: str, poll_seconds: float = 2.0, not_before: float = 0.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.url = url
        self.run_id = run_id
        self.poll_seconds = poll_seconds
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.DagsterRunTrigger",
            {"url": self.url, "run_id": self.run_id, "poll_seconds": self.poll_seconds, "not_before": self.not_before},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from orchestrator_clients.dagster_api import DagsterClient

        client = DagsterClient(self.url)
        while True:
            run = await asyncio.to_thread(client.run, self.run_id)
            if run.finished:
                await asyncio.sleep(max(self.not_before - time.time(), 0.0))
                yield TriggerEvent({"run_id": self.run_id, "status": run.status})  # type: ignore[no-untyped-call]
                return
            await asyncio.sleep(self.poll_seconds)


def launch_config(pipeline: CutoverSteps, step_name: str, params: Any) -> dict[str, Any]:
    """The Dagster run config that gives the launched step this Airflow run's parameters: the built-in
    modify step's `records`, or a declared pipeline's parameters, as config of the step's own asset."""
    step = pipeline.steps[step_name]
    if pipeline.declared is None:
        wanted = {"records": int(params["records"])} if "records" in step.inputs else {}
    else:
        wanted = {name: params[name] for name in pipeline.params if name in params}
    return {"ops": {pipeline.names.op_name(step.output): {"config": wanted}}} if wanted else {}


def launch_and_defer(operator: BaseOperator, context: Any, launch: Any, what: str) -> None:
    """Launch a Dagster run for this task (`launch(client, tags)`), or follow the one an earlier try
    launched that has not failed; name it in the task's XCom, then defer until it ends."""
    from orchestrator_clients.dagster_api import DagsterClient

    endpoint = DagsterEndpoint()
    client = DagsterClient(endpoint.api())
    ti = context["ti"]
    task = {AIRFLOW_DAG_TAG: ti.dag_id, AIRFLOW_RUN_TAG: ti.run_id, AIRFLOW_TASK_TAG: ti.task_id}
    earlier = [run for run in client.runs_with_tags(task) if run.status not in FAILED]
    if earlier:
        run_id = earlier[0].run_id
        operator.log.info("waiting on Dagster run %s, launched by an earlier try", endpoint.run_url(run_id))
    else:
        run_id = launch(client, {**task, AIRFLOW_TRY_TAG: str(ti.try_number)})
        operator.log.info("launched Dagster run %s for %s", endpoint.run_url(run_id), what)
    ti.xcom_push(key=RUN_URL_XCOM, value=endpoint.run_url(run_id))
    trigger = DagsterRunTrigger(endpoint.api(), run_id, endpoint.poll_seconds, time.time() + endpoint.settle_seconds)
    operator.defer(trigger=trigger, method_name="execute_complete")


class DagsterStepOperator(BaseOperator):
    """The task of a step that runs in Dagster (see the module's docstring)."""

    operator_extra_links = (DagsterRunLink(),)
    ui_color = "#e0d9ff"

    def __init__(self, *, step_name: str, pipeline: CutoverSteps = BUILTIN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_name = step_name
        self.pipeline = pipeline

    def execute(self, context: Any) -> Any:
        from orchestrator_clients.dagster_records import JobSelector

        names = self.pipeline.names

        def launch(client: Any, tags: dict[str, str]) -> str:
            return str(
                client.launch_run(
                    JobSelector(names.dagster_location, names.dagster_job),
                    run_config=launch_config(self.pipeline, self.step_name, context["params"]),
                    tags=tags,
                    asset_selection=[names.asset_key(self.pipeline.steps[self.step_name].output)],
                    # a team step's only check is its shadow's, which has no business in the step's own run
                    check_selection=None if self.pipeline.declared is None else [],
                )
            )

        launch_and_defer(self, context, launch, f"step {self.step_name}")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from orchestrator_clients.dagster_api import DagsterClient

        endpoint = DagsterEndpoint()
        client = DagsterClient(endpoint.api())
        run_id, url = str(event["run_id"]), endpoint.run_url(str(event["run_id"]))
        if event["status"] != "SUCCESS":
            raise AirflowException(f"the Dagster run {url} ended {event['status']}: {client.failure(run_id)}")
        step = self.pipeline.steps[self.step_name]
        asset_key = self.pipeline.names.asset_key(step.output)
        record = {**client.materialization_metadata(run_id, asset_key), "dagster_run_id": run_id}
        record[RUN_URL_XCOM] = url
        self.log.info("Dagster run %s materialized %s: %s", url, step.output, record)
        if step.publishes:
            for outlet in self.outlets:
                context["outlet_events"][outlet].extra = announcement(record)
        return record
