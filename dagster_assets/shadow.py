"""Dagster's side of a shadowed step: the asset check `matches_airflow` on the step's asset.

A step the cutover file sets to `shadow` runs in Airflow; after it, its shadow task in Airflow
launches this check in the pipeline's shadow job (checks only: no asset is materialized, nothing
is published), tagged with the Airflow run and that task. Once Airflow vouches for the tags
(dagster_assets.airflow_claims), the check runs the step again in the shadow of that run, in
Dagster's environment, and compares the outputs (shared_tasks.run.shadow). It passes when they
match; a difference or a failure of the step is a warning, with the summary as its metadata, and
the check's executions are the record the gate before a cut-over reads (each names the step's
code digest, so only those since the code last changed count). In any other run that selects it
(the asset group materialized from Dagster's UI with its checks) the check has nothing to compare
and yields no result.
"""

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import dagster as dg

from dagster_assets.airflow_claims import check_shadow_tags
from shared_tasks.project.cutover import AIRFLOW_TASK_TAG, MATCHES_AIRFLOW_CHECK, SHADOW_TASK_SUFFIX
from shared_tasks.project.declared import DeclaredPipeline
from shared_tasks.project.pipeline import StepSpec, declared_steps
from shared_tasks.project.settings import load_settings
from shared_tasks.run.shadow import run_shadow

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def shadow_check(pipeline: DeclaredPipeline, step: StepSpec) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(list(pipeline.names.asset_key(step.output)))
    spec = dg.AssetCheckSpec(
        MATCHES_AIRFLOW_CHECK,
        asset=key,
        description=f"Step {step.name} run by Dagster in the shadow of an Airflow run makes what Airflow's made",
        blocking=False,
    )

    @dg.multi_asset_check(
        name=f"{pipeline.names.op_name(step.output)}_{MATCHES_AIRFLOW_CHECK}", specs=[spec], can_subset=True
    )
    def matches_airflow(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        if not is_shadow_launch(context.run.tags):
            # Materialized with its checks from Dagster's UI, or a cut-over step's run: nothing to compare.
            context.log.info("not launched by a shadow task of Airflow's: the check has nothing to compare")
            return
        claim = check_shadow_tags(context.run.tags, context.run.run_id, key.path)
        outcome = run_shadow(load_settings(pipeline=pipeline.name), pipeline, step.name, claim.run_id)
        context.log.info("step %s in the shadow of Airflow run %s: %s", step.name, claim.run_id, outcome.summary)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=MATCHES_AIRFLOW_CHECK,
            passed=outcome.matched,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=outcome.metadata(),
            description=outcome.summary.splitlines()[0],
        )

    return matches_airflow


def is_shadow_launch(tags: Mapping[str, str]) -> bool:
    """Whether a run claims to be a shadow task's launch (whose claim is then checked with Airflow)."""
    return tags.get(AIRFLOW_TASK_TAG, "").endswith(SHADOW_TASK_SUFFIX)


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
