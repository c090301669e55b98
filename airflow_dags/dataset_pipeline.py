"""DAG `dataset_pipeline`: the shared pipeline's steps as tasks, each one call into `shared_tasks`.

Parse time reads only `OrchestrationSettings` and the neutral pipeline description (the DAG
processor has no repository or credentials, and imports no pandas or DVC); a task reads the full
settings when it runs. On the cluster each task runs in a worker pod described by
`shared_tasks.project.cluster`, passed to the KubernetesExecutor as a pod_override; with no kubernetes
client installed the tasks simply carry no pod override.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context

from airflow_dags.dag_defaults import pipeline_dag_arguments
from airflow_dags.dataset_asset import dataset_asset
from airflow_dags.step_tasks import step_tasks
from airflow_dags.version_watcher import announcement
from shared_tasks.project.cutover import FILE_NAME as CUTOVER_FILE
from shared_tasks.project.cutover import read_cutover
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE, StepInputs, StepSpec
from shared_tasks.project.records import MAX_RECORDS_PER_RUN
from shared_tasks.project.settings import OrchestrationSettings

ORCHESTRATOR = "airflow"

orchestration = OrchestrationSettings()
# Which orchestrator runs each step: a bad file fails this import, naming its line.
cutover = read_cutover(orchestration.cutover_file or Path(__file__).with_name(CUTOVER_FILE))


def step_callable(step: StepSpec) -> Callable[[], dict[str, Any]]:
    """The task body of one step: settings from the environment, Airflow's run id, one shared call."""

    def run_step() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from shared_tasks.project.settings import load_builtin_settings

        context = get_current_context()
        records = int(context["params"]["records"])
        inputs = StepInputs(records=records, orchestrator=ORCHESTRATOR, runner=ORCHESTRATOR)
        try:
            record = step.run(load_builtin_settings(), str(context["run_id"]), inputs).to_dict()
        except ValueError as error:  # bad input or settings (DataValidationError too): no retry heals it
            raise AirflowFailException(f"{type(error).__name__}: {error}") from error
        if step.publishes:
            context["outlet_events"][dataset_asset].extra = announcement(record)
        return record

    run_step.__name__ = run_step.__qualname__ = step.name
    return run_step


with DAG(
    dag_id=NAMES.dag_id,
    description="Add records to the DVC-tracked dataset and publish a new version",
    tags=[NAMES.dag_tag],
    params={
        "records": Param(
            1,
            type="integer",
            minimum=1,
            maximum=MAX_RECORDS_PER_RUN,
            title="Records to add",
            description="How many generated records this run appends to the dataset.",
        )
    },
    doc_md=__doc__,
    **pipeline_dag_arguments(orchestration),
) as dag:
    step_tasks(PIPELINE, cutover, dataset_asset, step_callable)
