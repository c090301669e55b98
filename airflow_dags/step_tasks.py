"""The tasks of a pipeline's steps in a DAG, each where the pipeline's cutover file says it runs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from airflow_dags.dagster_proxy import DagsterStepOperator
from airflow_dags.dagster_shadow import DagsterShadowOperator
from airflow_dags.pods import executor_config
from shared_tasks.project.cutover import BUILTIN, CutoverSteps, Runner, shadow_task_id


def step_tasks(steps: Any, cutover: Any, asset: Any, body_of: Any, pipeline: CutoverSteps = BUILTIN) -> dict[str, Any]:
    """Each step's task in the DAG being built, after the steps it takes: a step the cutover sets to
    dagster is this operator, any other runs `body_of(step)` as a TaskFlow task; the publishing
    step's task updates the pipeline's Asset. A shadowed step's task is followed by its shadow task
    (airflow_dags.dagster_shadow), which nothing follows."""
    made: dict[str, Any] = {}
    for step in steps:
        common: dict[str, Any] = {
            "task_id": step.name,
            "doc_md": step.description,
            "executor_config": executor_config(),
            "outlets": [asset] if step.publishes else [],
        }
        if cutover.runner(step.name) is Runner.DAGSTER:
            step_task: Any = DagsterStepOperator(step_name=step.name, pipeline=pipeline, **common)
        else:
            step_task = task(**common)(body_of(step))()
        for upstream in step.upstream:
            made[upstream] >> step_task
        made[step.name] = step_task
        if cutover.runner(step.name) is Runner.SHADOW:
            step_task >> DagsterShadowOperator(
                task_id=shadow_task_id(step.name),
                step_name=step.name,
                pipeline=pipeline,
                doc_md=f"Step {step.name} run by Dagster in the shadow of this run, its output compared",
                executor_config=executor_config(),
            )
    return made
