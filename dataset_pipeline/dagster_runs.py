"""A run of the pipeline through Dagster's GraphQL API: launch (or re-execute), follow, find its version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console

from dataset_pipeline.outcome import RunOutcome
from dataset_pipeline.process import StackError
from orchestrator_clients.dagster_api import DagsterClient, DagsterRun, JobSelector
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE, STEPS, declared_steps
from shared_tasks.project.records import PublishedVersion
from shared_tasks.storage.pointer import s3_object_url
from shared_tasks.versioning.history import history

if TYPE_CHECKING:
    from dataset_pipeline.stack import LocalStack
    from shared_tasks.project.declared import DeclaredPipeline
    from shared_tasks.versioning.versions import VersionRecord

JOB = JobSelector(NAMES.dagster_location, NAMES.dagster_job)
# The same steps with the multiprocess executor: a process per step, as the cluster's pod per step.
PROCESS_PER_STEP_JOB = JobSelector(NAMES.dagster_location, NAMES.process_per_step_job)
CHANGE_OP = NAMES.op_name(STEPS["modify_data"].output)  # the step whose config holds the records
PUBLISHED_ASSET = NAMES.asset_key(STEPS["push_data"].output)
STEP_OF_OP = {NAMES.op_name(step.output): step.name for step in PIPELINE}


def run_job(
    stack: LocalStack,
    client: DagsterClient,
    records: int,
    run_id: str | None,
    console: Console,
    job: JobSelector | None = None,
    pipeline: DeclaredPipeline | None = None,
    params: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Launch the job (or re-execute the Dagster run `run_id`), wait, return the version: the built-in
    pipeline's job adding `records`, or a declared `pipeline`'s with its `params` (`job`: another job
    of the same steps, such as the one with a process per step; by default the pipeline's own)."""
    published_asset = PUBLISHED_ASSET
    if pipeline is not None:
        names = pipeline.names
        job = job or JobSelector(names.dagster_location, names.dagster_job)
        published_asset = names.asset_key(STEPS["push_data"].output)
        config = {"ops": {names.op_name(STEPS["pull_data"].output): {"config": dict(params or {})}}}
        launched = client.reexecute(run_id) if run_id is not None else client.launch_run(job, run_config=config)
    else:
        launched = launch(client, records, run_id, job or JOB)
    console.print(f"dagster run [bold]{launched}[/bold]  {client.url}/runs/{launched}", highlight=False)
    run = wait_for_run(client, launched, console)
    launched = run.run_id  # Dagster's retry of the launched run, when its worker died and Dagster retried it
    if run.status != "SUCCESS":
        raise StackError(f"Dagster run {launched} ended {run.status}: {client.failure(launched)}")
    pipeline_run_id = run.root_run_id or run.run_id
    claims = client.materialization_metadata(launched, published_asset)
    published = version_of_run(history(stack.settings(pipeline)), pipeline_run_id, claims, stack.remote_url)
    if published is not None:
        seconds = step_seconds(run) if pipeline is None else declared_step_seconds(run, pipeline)
        return RunOutcome(published, launched, seconds, ("dagster_run_id", "orchestrator_run_id"))
    raise StackError(f"Dagster run {launched} succeeded but no version on the origin names run {pipeline_run_id}")


def version_of_run(
    versions: Sequence[VersionRecord], run_id: str, claims: Mapping[str, Any], remote_url: str
) -> PublishedVersion | None:
    """The version run `run_id` published (the history's, with what its materialization says of the
    publish), or the head's when the run's change left the data as it was (its materialization says
    `unchanged`); None when neither (a run that published nothing it could show)."""
    for version in versions:
        if version.run_id == run_id and version.md5 is not None:  # not a commit merely claiming it
            return PublishedVersion.from_mapping(
                {
                    **version.to_dict(),
                    "run_id": run_id,
                    "s3_url": claims.get("s3_url") or s3_object_url(remote_url, version.md5),
                    "attempts": claims.get("attempts"),
                    "had_turn": claims.get("had_turn"),
                    "already_published": bool(claims.get("already_published", False)),
                }
            )
    if claims.get("unchanged") is True and claims.get("md5"):
        return PublishedVersion.from_mapping({**claims, "run_id": run_id})
    return None


def launch(client: DagsterClient, records: int, run_id: str | None, job: JobSelector = JOB) -> str:
    """A new run of the job adding `records`, or (given a run id) every step of that run again.

    Each step is idempotent per run id, so a run that failed resumes its own change and one that
    published only finds its version again.
    """
    if run_id is not None:
        client.run(run_id)  # a run id Dagster does not know is an error naming it, before anything is launched
        return client.reexecute(run_id)
    return client.launch_run(job, run_config={"ops": {CHANGE_OP: {"config": {"records": records}}}})


def step_seconds(run: DagsterRun) -> dict[str, float]:
    """How long each shared step took, by its name (Dagster reports the step's asset; checks are left out)."""
    return {
        STEP_OF_OP[step.step_key]: step.end_time - step.start_time
        for step in run.step_stats
        if step.step_key in STEP_OF_OP and step.start_time and step.end_time
    }


def declared_step_seconds(run: DagsterRun, pipeline: DeclaredPipeline) -> dict[str, float]:
    """As `step_seconds`, for a declared pipeline's steps."""
    step_of_op = {pipeline.names.op_name(step.output): step.name for step in declared_steps(pipeline)}
    return {
        step_of_op[step.step_key]: step.end_time - step.start_time
        for step in run.step_stats
        if step.step_key in step_of_op and step.start_time and step.end_time
    }


def wait_for_run(client: DagsterClient, run_id: str, console: Console) -> DagsterRun:
    """The finished run, or the retry Dagster made of it; its status and each step's progress printed as they change."""
    shown: dict[str, str] = {}  # by step key, and the run's own status under "" (no step's key)

    def show(run: DagsterRun) -> None:
        if shown.get("") != run.status:
            shown[""] = run.status
            console.print(f"  run {run.status.lower()}", highlight=False)
        for step in run.step_stats:
            # A retried step starts a new attempt: say so, the way Airflow's tries show.
            state = (step.status or "started").lower()
            if step.attempts > 1:
                state += f" (try {step.attempts})"
            if shown.get(step.step_key) != state:
                shown[step.step_key] = state
                console.print(f"  {step.step_key}: {state}", highlight=False)

    def retried(failed: DagsterRun, retry_id: str) -> None:
        console.print(
            f"dagster run {failed.run_id} failed ({client.failure(failed.run_id)}); Dagster retries it as "
            f"[bold]{retry_id}[/bold]  {client.url}/runs/{retry_id}",
            highlight=False,
        )
        shown.clear()

    return client.wait_for_run_or_its_retry(run_id, on_poll=show, on_retry=retried)
