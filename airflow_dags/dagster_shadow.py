"""A shadowed step's second task: Dagster runs the step again beside Airflow's run, and says if it matched.

The step's own task runs it in Airflow as usual, and the rest of the run goes on after it. This
task follows the step's task and nothing follows it, so it never delays the run's publish: on a
worker it launches the pipeline's shadow job in Dagster with only the step's `matches_airflow`
check selected, tagged with this Airflow run and task (Dagster asks Airflow to vouch for them), then
defers: the wait is the triggerer's, no worker slot or pod is held. When the Dagster run ends the
task resumes for a moment and returns the comparison (matched or not, its summary, the step's code
digest) with the Dagster run linked. A difference is a finding, not a failure: the task succeeds
and the check's warning is the record; only a shadow that could not run (Dagster refused the tags,
say) fails the task.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from airflow_dags.dagster_proxy import RUN_URL_XCOM, DagsterEndpoint, DagsterRunLink, launch_and_defer
from shared_tasks.project.cutover import (
    MATCHES_AIRFLOW_CHECK,
    CutoverSteps,
)


class DagsterShadowOperator(BaseOperator):
    """The shadow task of a step (see the module's docstring)."""

    operator_extra_links = (DagsterRunLink(),)
    ui_color = "#f1eefc"

    def __init__(self, *, step_name: str, pipeline: CutoverSteps, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_name = step_name
        self.pipeline = pipeline

    def asset_key(self) -> list[str]:
        return list(self.pipeline.names.asset_key(self.pipeline.steps[self.step_name].output))

    def execute(self, context: Any) -> Any:
        from orchestrator_clients.dagster_records import JobSelector

        names = self.pipeline.names

        def launch(client: Any, tags: dict[str, str]) -> str:
            return str(
                client.launch_run(
                    JobSelector(names.dagster_location, names.shadow_job),
                    tags=tags,
                    asset_selection=[],
                    check_selection=[(self.asset_key(), MATCHES_AIRFLOW_CHECK)],
                )
            )

        launch_and_defer(self, context, launch, f"the shadow of step {self.step_name}")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowException

        from orchestrator_clients.dagster_api import DagsterClient

        endpoint = DagsterEndpoint()
        client = DagsterClient(endpoint.api())
        run_id, url = str(event["run_id"]), endpoint.run_url(str(event["run_id"]))
        if event["status"] != "SUCCESS":
            raise AirflowException(f"the Dagster shadow run {url} ended {event['status']}: {client.failure(run_id)}")
        executions = client.check_executions(self.asset_key(), MATCHES_AIRFLOW_CHECK, limit=50)
        found = next((execution for execution in executions if execution.run_id == run_id), None)
        if found is None or found.passed is None:
            raise AirflowException(f"the Dagster shadow run {url} reported no {MATCHES_AIRFLOW_CHECK} result")
        result = {**found.metadata, "matched": found.passed, "dagster_run_id": run_id, RUN_URL_XCOM: url}
        self.log.info("step %s in the shadow (%s): %s", self.step_name, url, found.metadata.get("summary"))
        return result
