"""One asset per shared step (pull -> modify -> push), each a single call into `shared_tasks`.

Steps exchange nothing but the run id: the run's workspace on the shared volume carries the
data, so each step can run in its own pod. The observable `dataset_head` reports the version at
the branch head, so versions published by Airflow or directly show up here too.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field

from dagster_assets.k8s import step_pod_tags
from dagster_assets.resources import PipelineSettings
from shared_tasks.history import history
from shared_tasks.pipeline import PIPELINE
from shared_tasks.settings import OrchestrationSettings
from shared_tasks.steps import MAX_RECORDS_PER_RUN, PublishedVersion, modify_data, pull_data, push_data

ORCHESTRATOR = "dagster"
GROUP = "dataset"
# The asset standing for each step of shared_tasks.pipeline.PIPELINE.
STEP_ASSETS = {step.name: step.output for step in PIPELINE}
STEPS = {step.name: step for step in PIPELINE}
POD_TAGS = step_pod_tags()
# Every step is in this pool; with run granularity and a limit of 1 (dagster.yaml / chart values:
# concurrency.pools {granularity: run, default_limit: 1}) the run queue starts one publishing run
# at a time, however it was launched: job, schedule, or Materialize all on any asset page.
PUBLISH_POOL = "dataset_pipeline"


def _retry_policy() -> dg.RetryPolicy:
    orchestration = OrchestrationSettings()
    return dg.RetryPolicy(
        max_retries=orchestration.step_retries,
        delay=orchestration.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
    )


RETRY_POLICY = _retry_policy()


def pipeline_run_id(context: dg.AssetExecutionContext) -> str:
    """A re-execution keeps its root run's id, so its steps resume that run's workspace."""
    return context.run.root_run_id or context.run.run_id


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


def version_metadata(version: PublishedVersion, git_url: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "commit": version.commit,
        "md5": version.md5,
        "size": version.size,
        "rows": version.rows,
        "rows_added": version.rows_added,
        "s3_url": version.s3_url,
        "run_id": version.run_id,
        "already_published": version.already_published,
        "attempts": version.attempts,
    }
    commit_url = git_commit_url(git_url, version.commit)
    if commit_url is not None:
        metadata["git_commit_url"] = dg.MetadataValue.url(commit_url)
    return {key: value for key, value in metadata.items() if value is not None}


@dg.observable_source_asset(
    name="dataset_head",
    group_name=GROUP,
    description="The dataset version at the branch head, whoever published it",
    op_tags=POD_TAGS,
)
def dataset_head(pipeline_settings: PipelineSettings) -> dg.ObserveResult:
    newest = history(pipeline_settings.load())[0]
    return dg.ObserveResult(
        data_version=dg.DataVersion(newest.md5),
        metadata={"commit": newest.commit, "md5": newest.md5, "orchestrator": newest.orchestrator or "unknown"},
    )


def step_asset(step_name: str, upstream: Any, kinds: set[str]) -> Any:
    """The asset standing for one shared step; all three share group, pod tags, retries and pool."""
    step = STEPS[step_name]
    return dg.asset(
        name=step.output,
        deps=[upstream],
        description=step.description,
        group_name=GROUP,
        kinds=kinds,
        op_tags=POD_TAGS,
        retry_policy=RETRY_POLICY,
        pool=PUBLISH_POOL,
    )


class ChangeConfig(dg.Config):
    records: int = Field(default=1, description=f"Generated records to add (1 to {MAX_RECORDS_PER_RUN}).")


@step_asset("pull_data", dataset_head, {"git", "dvc"})
def pulled_dataset(context: dg.AssetExecutionContext, pipeline_settings: PipelineSettings) -> dg.MaterializeResult:
    with no_retry_on_bad_input():
        pulled = pull_data(pipeline_settings.load(), pipeline_run_id(context))
    return dg.MaterializeResult(metadata=pulled.to_dict())


@step_asset("modify_data", pulled_dataset, {"pandas"})
def changed_dataset(
    context: dg.AssetExecutionContext, config: ChangeConfig, pipeline_settings: PipelineSettings
) -> dg.MaterializeResult:
    with no_retry_on_bad_input():
        change = modify_data(pipeline_settings.load(), pipeline_run_id(context), records=config.records)
    return dg.MaterializeResult(metadata={k: v for k, v in change.to_dict().items() if v is not None})


@step_asset("push_data", changed_dataset, {"s3", "git"})
def published_dataset(context: dg.AssetExecutionContext, pipeline_settings: PipelineSettings) -> dg.MaterializeResult:
    with no_retry_on_bad_input():
        settings = pipeline_settings.load()
        version = push_data(settings, pipeline_run_id(context), orchestrator=ORCHESTRATOR)
    return dg.MaterializeResult(
        metadata=version_metadata(version, settings.git_url), data_version=dg.DataVersion(version.md5)
    )
