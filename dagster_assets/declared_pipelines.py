"""One asset group and one job per pipeline a team declares in its project file (PIPELINE_PROJECT_FILE).

The assets are derived from the project file alone, as Airflow's DAG of the same pipeline is: the
product's pull, one asset per team step, the product's publish, each keyed under the pipeline's
name. The run's parameters are config of the run's assets (each asset's fields are the declared
parameters, with their defaults; a whole run sets them on the pull asset), checked against their
bounds by every step before it reads or writes anything. A step Airflow cut over to Dagster is
launched by its Airflow task with that run's tags and parameters, and works in that run's workspace
once Airflow vouches for the tags (dagster_assets.airflow_claims).
"""

from typing import TYPE_CHECKING, Any, NamedTuple

import dagster as dg

from dagster_assets.airflow_claims import check_launch_tags
from dagster_assets.assets import (
    POD_TAGS,
    RETRY_POLICY,
    no_retry_on_bad_input,
    pipeline_run_id,
    run_orchestrator,
    step_result,
)
from dagster_assets.peering import airflow_runs_sensor
from dagster_assets.shadow import shadow_definitions
from shared_tasks.project.cutover import CutoverSteps
from shared_tasks.project.declared import DeclaredPipeline, load_project
from shared_tasks.project.pipeline import StepInputs, StepSpec, declared_steps
from shared_tasks.project.settings import OrchestrationSettings, Settings, load_settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ORCHESTRATOR = "dagster"
_CONFIG_TYPES: dict[str, type] = {"integer": int, "number": float, "string": str, "boolean": bool}


class DeclaredPipelineSettings(dg.ConfigurableResource):
    """A declared pipeline's settings, read from the environment when a step runs (as PipelineSettings)."""

    def load(self, pipeline: str) -> Settings:
        return load_settings(pipeline=pipeline)


def params_schema(pipeline: DeclaredPipeline) -> dict[str, dg.Field]:
    return {
        name: dg.Field(
            _CONFIG_TYPES[spec.type],
            default_value=spec.default,
            is_required=False,
            description=spec.description or None,
        )
        for name, spec in pipeline.params.items()
    }


def run_params(context: dg.AssetExecutionContext, pipeline: DeclaredPipeline) -> dict[str, Any]:
    """The run's parameters, checked: Dagster's config schema has no bounds. They may be given on any
    of the run's assets (the pull asset in a whole run; the one step Airflow launches when it cut that
    step over), so every step of a run reads the same values; one given twice must agree."""
    run_config: dict[str, Any] = dict(context.run.run_config)
    ops: dict[str, Any] = run_config.get("ops", {})
    given: dict[str, Any] = {}
    where: dict[str, str] = {}
    for step in declared_steps(pipeline):
        op = pipeline.names.op_name(step.output)
        for name, value in (ops.get(op, {}).get("config") or {}).items():
            if name in given and given[name] != value:
                raise ValueError(
                    f"parameter {name!r} is {given[name]!r} in the config of {where[name]}"
                    f" but {value!r} in that of {op}: give it once"
                )
            given[name], where[name] = value, op
    return pipeline.checked_params(given)


def step_asset(pipeline: DeclaredPipeline, step: StepSpec, outputs: dict[str, str]) -> dg.AssetsDefinition:
    names = pipeline.names
    decorate = dg.asset(
        key=names.asset_key(step.output),
        deps=[dg.AssetKey(names.asset_key(outputs[name])) for name in step.upstream],
        description=step.description,
        group_name=names.asset_group,
        kinds={"python"} if step.declared else {"git", "dvc"},
        op_tags=POD_TAGS,
        retry_policy=RETRY_POLICY,
        pool=names.publish_pool,
        config_schema=params_schema(pipeline),
    )

    def run_step(
        context: dg.AssetExecutionContext, declared_settings: DeclaredPipelineSettings
    ) -> dg.MaterializeResult:
        with no_retry_on_bad_input():
            # before anything is read or written: tags claiming an Airflow run must be Airflow's own
            for_airflow = check_launch_tags(context.run.tags, context.run.run_id, names.asset_key(step.output))
            params = run_params(context, pipeline)
            settings = declared_settings.load(pipeline.name)
            inputs = StepInputs(orchestrator=run_orchestrator(for_airflow), runner=ORCHESTRATOR, params=params)
            record = step.run(settings, pipeline_run_id(context, for_airflow), inputs)
        return step_result(record, settings.git_url)

    return decorate(run_step)


def pipeline_definitions(
    pipeline: DeclaredPipeline,
) -> "tuple[list[dg.AssetsDefinition], UnresolvedAssetJobDefinition]":
    steps = declared_steps(pipeline)
    outputs = {step.name: step.output for step in steps}
    assets = [step_asset(pipeline, step, outputs) for step in steps]
    job = dg.define_asset_job(
        pipeline.names.dagster_job,
        selection=dg.AssetSelection.assets(*assets).without_checks(),  # the shadow checks run for Airflow only
        description=pipeline.description or f"The declared pipeline {pipeline.name}: one new version per run",
    )
    return assets, job


class DeclaredDefinitions(NamedTuple):
    assets: list[dg.AssetsDefinition]
    jobs: list["UnresolvedAssetJobDefinition"]
    sensors: list[dg.SensorDefinition]
    checks: list[dg.AssetChecksDefinition]
    schedules: list[dg.ScheduleDefinition]


def declared_definitions(peer_interval_seconds: int = 30, process_per_step: bool = False) -> DeclaredDefinitions:
    """Every declared pipeline's assets, job, schedule (stopped, as Airflow's DAG has the schedule) and
    sensor of Airflow's runs of its DAG (and, with
    `process_per_step`, its job with a process per step, as the built-in pipeline has locally); none
    without a project file. A bad project file fails the code location's load, naming the file and the field."""
    project_file = OrchestrationSettings().project_file
    found = DeclaredDefinitions([], [], [], [], [])
    if project_file is None:
        return found
    for pipeline in load_project(project_file).pipelines:
        pipeline_assets, job = pipeline_definitions(pipeline)
        found.assets.extend(pipeline_assets)
        found.jobs.append(job)
        shadow_checks, shadow_job = shadow_definitions(pipeline)
        found.checks.extend(shadow_checks)
        found.jobs.append(shadow_job)
        if process_per_step:
            found.jobs.append(
                dg.define_asset_job(
                    pipeline.names.process_per_step_job,
                    selection=dg.AssetSelection.assets(*pipeline_assets).without_checks(),
                    executor_def=dg.multiprocess_executor,
                    description="The pipeline with a process per step (as a pod per step on the cluster)",
                )
            )
        found.sensors.append(airflow_runs_sensor(None, peer_interval_seconds, CutoverSteps.of(pipeline)))
        found.schedules.extend(pipeline_schedules(pipeline.names.schedule, job, pipeline.names.dag_id))
    return found


def pipeline_schedules(name: str, job: Any, dag_id: str) -> list[dg.ScheduleDefinition]:
    """A pipeline's schedule in Dagster: the settings' cron, as its Airflow DAG has it, stopped until
    someone turns it on (Airflow's DAG runs it meanwhile); none with PIPELINE_SCHEDULE=none."""
    cron = OrchestrationSettings().schedule
    if cron is None:
        return []
    return [
        dg.ScheduleDefinition(
            name=name,
            job=job,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"{dag_id}'s schedule, in Dagster: on when the schedule moves here",
        )
    ]
