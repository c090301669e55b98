"""Dagster's side of a shadowed step: the asset check `matches_airflow` on the step's asset.

A step the cutover file sets to `shadow` runs in Airflow; after it, its shadow task in Airflow
launches this check in the pipeline's shadow job (checks only: no asset is materialized, nothing
is published), tagged with the Airflow run and that task. Once Airflow vouches for the tags
(dagster_assets.airflow_claims), the check runs the step again in the shadow of that run, in
Dagster's environment, and compares the outputs (shared_tasks.run.shadow). It passes when they
match; a difference or a failure of the step is a warning, with the summary as its metadata, and
the check's executions are the record the gate before a cut-over reads (each names the step's
code digest, so only those since the code last changed count).
"""

from typing import TYPE_CHECKING

import dagster as dg

from dagster_assets.airflow_claims import check_shadow_tags
from shared_tasks.project.cutover import MATCHES_AIRFLOW_CHECK
from shared_tasks.project.declared import DeclaredPipeline
from shared_tasks.project.pipeline import StepSpec, declared_steps
from shared_tasks.project.settings import load_settings
from shared_tasks.run.shadow import run_shadow

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def shadow_check(pipeline: DeclaredPipeline, step: StepSpec) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(list(pipeline.names.asset_key(step.output)))

    @dg.asset_check(
        asset=key,
        name=MATCHES_AIRFLOW_CHECK,
        description=f"Step {step.name} run by Dagster in the shadow of an Airflow run makes what Airflow's made",
        blocking=False,
    )
    def matches_airflow(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        claim = check_shadow_tags(context.run.tags, context.run.run_id, key.path)
        outcome = run_shadow(load_settings(pipeline=pipeline.name), pipeline, step.name, claim.run_id)
        context.log.info("step %s in the shadow of Airflow run %s: %s", step.name, claim.run_id, outcome.summary)
        return dg.AssetCheckResult(
            passed=outcome.matched,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=outcome.metadata(),
            description=outcome.summary.splitlines()[0],
        )

    return matches_airflow


def shadow_definitions(
    pipeline: DeclaredPipeline,
) -> "tuple[list[dg.AssetChecksDefinition], UnresolvedAssetJobDefinition]":
    """Each team step's shadow check, and the job that runs one of them for an Airflow run."""
    checks = [shadow_check(pipeline, step) for step in declared_steps(pipeline) if step.declared]
    job = dg.define_asset_job(
        pipeline.names.shadow_job,
        selection=dg.AssetSelection.checks(*checks),
        description="A step run in the shadow of an Airflow run, its output compared with Airflow's",
    )
    return checks, job
