"""One asset group and one job per pipeline a team declares in its project file (PIPELINE_PROJECT_FILE).

The assets are derived from the project file alone, as Airflow's DAG of the same pipeline is: the
product's pull, one asset per team step, the product's publish, each keyed under the pipeline's
name. The run's parameters are the pull asset's config (its fields the declared parameters, with
their defaults), checked against their bounds by every step before it reads or writes anything.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from dagster_assets.assets import POD_TAGS, RETRY_POLICY, no_retry_on_bad_input, step_result
from shared_tasks.project.declared import DeclaredPipeline, load_project
from shared_tasks.project.pipeline import PIPELINE, StepInputs, StepSpec, declared_steps
from shared_tasks.project.settings import OrchestrationSettings, Settings, load_settings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

ORCHESTRATOR = "dagster"
PULL = PIPELINE[0]
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
    """The run's parameters from the pull asset's config, checked: Dagster's config schema has no bounds."""
    run_config: dict[str, Any] = dict(context.run.run_config)
    given = run_config.get("ops", {}).get(pipeline.names.op_name(PULL.output), {}).get("config", {})
    return pipeline.checked_params(dict(given))


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
        config_schema=params_schema(pipeline) if step.name == PULL.name else None,
    )

    def run_step(
        context: dg.AssetExecutionContext, declared_settings: DeclaredPipelineSettings
    ) -> dg.MaterializeResult:
        with no_retry_on_bad_input():
            params = run_params(context, pipeline)  # before anything is read or written
            settings = declared_settings.load(pipeline.name)
            inputs = StepInputs(orchestrator=ORCHESTRATOR, runner=ORCHESTRATOR, params=params)
            record = step.run(settings, context.run.root_run_id or context.run.run_id, inputs)
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
        selection=dg.AssetSelection.assets(*assets),
        description=pipeline.description or f"The declared pipeline {pipeline.name}: one new version per run",
    )
    return assets, job


def declared_definitions() -> tuple[list[dg.AssetsDefinition], list["UnresolvedAssetJobDefinition"]]:
    """Every declared pipeline's assets and job; none without a project file. A bad project file
    fails the code location's load, naming the file and the field."""
    project_file = OrchestrationSettings().project_file
    if project_file is None:
        return [], []
    assets: list[dg.AssetsDefinition] = []
    jobs: list[UnresolvedAssetJobDefinition] = []
    for pipeline in load_project(project_file).pipelines:
        pipeline_assets, job = pipeline_definitions(pipeline)
        assets += pipeline_assets
        jobs.append(job)
    return assets, jobs
