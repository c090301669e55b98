"""One asset per shared step (pull -> modify -> push), each a single call into `shared_tasks`.

The assets are derived from the shared pipeline description, as the Airflow DAG's tasks are.
Steps exchange nothing but the run id: the run's workspace on the shared volume carries the
data, so each step can run in its own pod. The observable `dataset_head` reports the version at
the branch head, so versions published by Airflow or directly show up here too.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field

from dagster_assets.airflow_claims import check_launch_tags
from dagster_assets.k8s import step_pod_tags
from dagster_assets.resources import PipelineSettings
from shared_tasks.project.cutover import AIRFLOW_RUN_TAG
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE, StepInputs, StepSpec
from shared_tasks.project.records import MAX_RECORDS_PER_RUN, PublishedVersion, Record
from shared_tasks.project.settings import OrchestrationSettings
from shared_tasks.run.steps import pull_data
from shared_tasks.validation.schema import DataValidationError
from shared_tasks.versioning.history import history

ORCHESTRATOR = "dagster"
# The asset standing for each step of shared_tasks.project.pipeline.PIPELINE.
STEP_ASSETS = {step.name: step.output for step in PIPELINE}
STEP_KINDS = {"pull_data": {"git", "dvc"}, "modify_data": {"pandas"}, "push_data": {"s3", "git"}}
POD_TAGS = step_pod_tags()


def _retry_policy() -> dg.RetryPolicy:
    orchestration = OrchestrationSettings()
    return dg.RetryPolicy(
        max_retries=orchestration.step_retries,
        delay=orchestration.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
    )


RETRY_POLICY = _retry_policy()


def pipeline_run_id(context: dg.AssetExecutionContext, for_airflow: bool) -> str:
    """The pipeline run this step belongs to: the Airflow run whose step Dagster runs for it, or else the
    root run (a re-execution keeps its root run's id, so its steps resume that run's workspace)."""
    if for_airflow:
        return context.run.tags[AIRFLOW_RUN_TAG]
    return context.run.root_run_id or context.run.run_id


def run_orchestrator(for_airflow: bool) -> str:
    """Whose run this is: Airflow's, for a step it cut over to Dagster; else Dagster's own."""
    return "airflow" if for_airflow else ORCHESTRATOR


def acts_for_airflow(context: dg.AssetExecutionContext, step: StepSpec) -> bool:
    """Whether this run works for an Airflow run: only when its `airflow/*` tags are Airflow's own,
    as Airflow vouches (dagster_assets.airflow_claims); tags it does not vouch for fail the step."""
    return check_launch_tags(context.run.tags, context.run.run_id, step.output)


@contextmanager
def no_retry_on_bad_input() -> Iterator[None]:
    """Bad input or settings fail alike on every attempt: fail the step at once, keep retries for
    what can pass later (a lost push race, a network error)."""
    try:
        yield
    except ValueError as error:  # includes DataValidationError and pydantic's ValidationError
        raise dg.Failure(description=f"{type(error).__name__}: {error}", allow_retries=False) from error


def git_commit_url(git_url: str, commit: str) -> str | None:
    """The commit's web page, for origins served over http(s) (GitHub, GitLab, Gitea)."""
    if not git_url.startswith(("https://", "http://")):
        return None
    return f"{git_url.rstrip('/').removesuffix('.git')}/commit/{commit}"


def step_result(record: Record, git_url: str) -> dg.MaterializeResult:
    """A step's record as the metadata of its asset; a published version's md5 is its data version."""
    metadata: dict[str, Any] = {key: value for key, value in record.to_dict().items() if value is not None}
    if not isinstance(record, PublishedVersion):
        return dg.MaterializeResult(metadata=metadata)
    commit_url = git_commit_url(git_url, record.commit)
    if commit_url is not None:
        metadata["git_commit_url"] = dg.MetadataValue.url(commit_url)
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(record.md5))


@dg.multi_observable_source_asset(  # type: ignore[untyped-decorator]
    specs=[
        dg.AssetSpec(
            NAMES.head_asset_key,
            group_name=NAMES.asset_group,
            description="The dataset version at the branch head, whoever published it",
        )
    ],
    check_specs=[
        dg.AssetCheckSpec("head_is_valid", asset=NAMES.head_asset_key, description="Every record keeps the schema")
    ],
)
def dataset_head(pipeline_settings: PipelineSettings) -> dg.ObserveResult:
    """The head's md5 as its data version, and whether a run may build on it (validated once per content)."""
    settings = pipeline_settings.load()
    newest = history(settings)[0]
    try:
        pulled = pull_data(settings, NAMES.head_observer_run)  # the workspace it pulls the head into
        check = dg.AssetCheckResult(check_name="head_is_valid", passed=True, metadata={"rows": pulled.rows})
    except DataValidationError as error:
        problems: dict[str, Any] = {"problems": error.total, "error": str(error)[:2000]}
        check = dg.AssetCheckResult(check_name="head_is_valid", passed=False, metadata=problems)
    return dg.ObserveResult(
        data_version=dg.DataVersion(newest.md5 or f"unreadable-{newest.commit}"),
        metadata={"commit": newest.commit, "md5": newest.md5, "orchestrator": newest.orchestrator or "unknown"},
        check_results=[check],
    )


class ChangeConfig(dg.Config):
    records: int = Field(
        default=1, ge=1, le=MAX_RECORDS_PER_RUN, description=f"Generated records to add (1 to {MAX_RECORDS_PER_RUN})."
    )


def run_inputs(context: dg.AssetExecutionContext, for_airflow: bool = False) -> StepInputs:
    """The run's inputs, checked before any step works: Dagster's config schema has no ranges, so a
    launch with an out-of-range `records` fails in its first step at once, not after a full pull."""
    run_config: dict[str, Any] = dict(context.run.run_config)
    ops = run_config.get("ops", {})
    config = ChangeConfig.model_validate(ops.get(NAMES.op_name(STEP_ASSETS["modify_data"]), {}).get("config", {}))
    return StepInputs(records=config.records, orchestrator=run_orchestrator(for_airflow), runner=ORCHESTRATOR)


def run_step(step: StepSpec, context: dg.AssetExecutionContext, settings: PipelineSettings) -> dg.MaterializeResult:
    with no_retry_on_bad_input():
        for_airflow = acts_for_airflow(context, step)  # before anything is read or written
        inputs = run_inputs(context, for_airflow)
        loaded = settings.load()
        record = step.run(loaded, pipeline_run_id(context, for_airflow), inputs)
    return step_result(record, loaded.git_url)


def step_asset(step: StepSpec) -> dg.AssetsDefinition:
    """The asset standing for one shared step; all share group, pod tags, retries and pool."""
    decorate = dg.asset(
        key=NAMES.asset_key(step.output),
        deps=[dg.AssetKey(NAMES.asset_key(STEP_ASSETS[name])) for name in step.upstream] or [dataset_head.key],
        description=step.description,
        group_name=NAMES.asset_group,
        kinds=STEP_KINDS[step.name],
        op_tags=POD_TAGS,
        retry_policy=RETRY_POLICY,
        # Every step is in the pipeline's pool; with run granularity and a limit of 1 (dagster.yaml / chart
        # values: concurrency.pools {granularity: run, default_limit: 1}) the run queue starts one
        # publishing run at a time, however it was launched: job, schedule, or Materialize all.
        pool=NAMES.publish_pool,
    )
    if "records" in step.inputs:

        def with_records(
            context: dg.AssetExecutionContext, config: ChangeConfig, pipeline_settings: PipelineSettings
        ) -> dg.MaterializeResult:
            return run_step(step, context, pipeline_settings)

        return decorate(with_records)

    def without_inputs(context: dg.AssetExecutionContext, pipeline_settings: PipelineSettings) -> dg.MaterializeResult:
        return run_step(step, context, pipeline_settings)

    return decorate(without_inputs)


STEP_ASSET_DEFS = {step.name: step_asset(step) for step in PIPELINE}
pulled_dataset = STEP_ASSET_DEFS["pull_data"]
changed_dataset = STEP_ASSET_DEFS["modify_data"]
published_dataset = STEP_ASSET_DEFS["push_data"]
