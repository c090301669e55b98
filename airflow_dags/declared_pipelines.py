"""One DAG per pipeline a team declares in its project file (PIPELINE_PROJECT_FILE).

Each DAG is the pipeline's steps as TaskFlow tasks, derived from the project file alone: parse time
imports none of the team's code, and its run parameters become the trigger form's Params,
validated by Airflow before a run starts and by the steps again. The version is announced on the
pipeline's own Asset, whose watcher announces every version made elsewhere, and each pipeline has a
verifying DAG of its own (`verify_<name>_version`), as the built-in pipeline has. A step its cutover
file (`cutover.<name>.yaml` beside the project file) sets to dagster keeps its task, which launches
the step's asset in Dagster with this run's tags and parameters and waits in the triggerer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, Param, get_current_context

from airflow_dags.dag_defaults import pipeline_dag_arguments
from airflow_dags.step_tasks import step_tasks
from airflow_dags.verifying import verify_dag
from airflow_dags.version_watcher import NewVersionTrigger, announcement
from shared_tasks.project.cutover import CutoverSteps, declared_cutover_file, read_cutover
from shared_tasks.project.declared import DeclaredPipeline, load_project
from shared_tasks.project.params import ParamSpec
from shared_tasks.project.pipeline import StepInputs, StepSpec, declared_steps
from shared_tasks.project.settings import OrchestrationSettings

ORCHESTRATOR = "airflow"

orchestration = OrchestrationSettings()


def trigger_param(name: str, spec: ParamSpec) -> Param:
    schema: dict[str, Any] = {"type": spec.type, "title": name}
    schema.update(
        {key: value for key, value in (("minimum", spec.minimum), ("maximum", spec.maximum)) if value is not None}
    )
    return Param(spec.default, description=spec.description or None, **schema)


def pipeline_asset(pipeline: DeclaredPipeline) -> Asset:
    where = (
        orchestration.dvc_remote_url.rstrip("/")
        if orchestration.dvc_remote_url
        else f"dvc://{orchestration.dvc_remote}"
    )
    watcher = AssetWatcher(
        name=f"new_versions_of_{pipeline.name}",
        trigger=NewVersionTrigger(poll_seconds=orchestration.announce_interval_seconds, pipeline=pipeline.name),
    )
    return Asset(name=pipeline.names.airflow_asset, uri=f"{where}/{pipeline.dataset}", watchers=[watcher])


def step_callable(pipeline: DeclaredPipeline, step: StepSpec, asset: Asset) -> Callable[[], dict[str, Any]]:
    """The task body of one step: the pipeline's settings, Airflow's run id and params, one shared call."""

    def run_step() -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from shared_tasks.project.settings import load_settings

        context = get_current_context()
        params = {name: context["params"][name] for name in pipeline.params}
        inputs = StepInputs(orchestrator=ORCHESTRATOR, runner=ORCHESTRATOR, params=params)
        try:
            record = step.run(load_settings(pipeline=pipeline.name), str(context["run_id"]), inputs).to_dict()
        except ValueError as error:  # bad input, settings or step definition: no retry heals it
            raise AirflowFailException(f"{type(error).__name__}: {error}") from error
        if step.publishes:
            context["outlet_events"][asset].extra = announcement(record)
        return record

    run_step.__name__ = run_step.__qualname__ = step.name
    return run_step


def pipeline_dag(pipeline: DeclaredPipeline, asset: Asset) -> DAG:
    names = pipeline.names
    steps = CutoverSteps.of(pipeline)
    cutover = read_cutover(declared_cutover_file(pipeline), steps)
    with DAG(
        dag_id=names.dag_id,
        description=pipeline.description or f"The declared pipeline {pipeline.name}",
        tags=[names.dag_tag],
        params={name: trigger_param(name, spec) for name, spec in pipeline.params.items()},
        doc_md=__doc__,
        **pipeline_dag_arguments(orchestration),
    ) as dag:
        step_tasks(declared_steps(pipeline), cutover, asset, lambda step: step_callable(pipeline, step, asset), steps)
    return dag


# A bad project file fails this import, naming the file and the field (Airflow shows it as an import error).
def settings_of(pipeline: DeclaredPipeline) -> Callable[[], Any]:
    def load() -> Any:
        from shared_tasks.project.settings import load_settings

        return load_settings(pipeline=pipeline.name)

    return load


if orchestration.project_file is not None:
    for declared in load_project(orchestration.project_file).pipelines:
        declared_asset = pipeline_asset(declared)
        globals()[declared.names.dag_id] = pipeline_dag(declared, declared_asset)
        globals()[declared.names.verify_dag_id] = verify_dag(
            declared.names.verify_dag_id,
            declared_asset,
            settings_of(declared),
            declared.names.dag_tag,
            f"Verify each new version of {declared.name}'s dataset from the remote",
            __doc__,
        )
