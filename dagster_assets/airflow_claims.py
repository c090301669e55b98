"""Whether a Dagster run may act for an Airflow run: its `airflow/*` tags are checked with Airflow.

A step Airflow cut over to Dagster is launched by its Airflow task with the tags of that task
(shared_tasks.project.cutover.AIRFLOW_TAGS); the step then works in the Airflow run's workspace and its
version is recorded as Airflow's. Anyone who may launch a Dagster run can set tags, so the tags
are honoured only when Airflow, asked through its REST API with the sensor's own login
(`AirflowPeer`), vouches for them:

- the four tags are all there, name the DAG of the pipeline the step belongs to (`dataset_pipeline`,
  or a declared pipeline's), a run id any orchestrator accepts, a step's task, and a try number;
- the task is the step this Dagster run works on, and one Airflow runs in Dagster (its operator
  launches a Dagster run; a task Airflow runs itself launches nothing);
- the Airflow run exists and is running, the task is running or deferred (launching, or waiting
  on the run), at the tagged try or a later one (a retry waits on a run an earlier try launched);
- the task names this very Dagster run: it pushes the launched run's URL as an XCom before it
  defers. Between the launch and that push the task is still running, so a step that starts in
  that moment waits a little for the XCom.

Otherwise the step fails at once, without retries, naming the tag. When Airflow cannot be reached
the error is a transient one, left to the step's retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_assets.peering import AirflowPeer
from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.errors import OrchestratorApiError
from shared_tasks.project.cutover import (
    AIRFLOW_DAG_TAG,
    AIRFLOW_RUN_TAG,
    AIRFLOW_TAGS,
    AIRFLOW_TASK_TAG,
    AIRFLOW_TRY_TAG,
    DAGSTER_RUN_XCOM,
    LAUNCHING_OPERATOR,
    SHADOW_OPERATOR,
    shadow_task_id,
    steps_of_dag,
)
from shared_tasks.project.names import NAMES, PipelineNames
from shared_tasks.project.settings import OrchestrationSettings
from shared_tasks.run.workspace import check_run_id

AIRFLOW_TAG_PREFIX = "airflow/"
LAUNCHING_STATES = {"running", "deferred"}  # the task launches (running), then waits in the triggerer
XCOM_WAIT_SECONDS = 30.0  # how long a running task may take from its launch to naming the run
XCOM_POLL_SECONDS = 1.0


class ClaimRefused(dg.Failure):
    """A run's `airflow/*` tags that Airflow does not vouch for: the step fails at once."""

    def __init__(self, tag: str, value: str | None, why: str) -> None:
        shown = f"{tag}={value!r}" if value is not None else tag
        super().__init__(
            description=f"tag {shown} refused: {why}; only Airflow's own task may launch a run acting for it",
            allow_retries=False,
        )
        self.tag = tag


@dataclass(frozen=True)
class AirflowClaim:
    """What a run's tags claim: that task `task_id` (try `try_number`) of Airflow run `run_id` launched it."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int


def claimed_task(
    tags: Mapping[str, str], asset: str | Sequence[str], project_file: Path | None = None, shadow: bool = False
) -> AirflowClaim | None:
    """The Airflow task the run's tags claim, checked as far as it can be without Airflow; None
    when the run carries no `airflow/` tag (a run of Dagster's own). `asset` is the key of the asset
    the run materializes (a built-in step's asset name alone); with `shadow`, the asset whose step
    the run runs in the shadow of Airflow's, for that step's shadow task."""
    claimed = _airflow_tags(tags)
    if claimed is None:
        return None
    key = (asset,) if isinstance(asset, str) else tuple(asset)
    dag_id, run_id, task_id, try_text = (claimed[tag] for tag in AIRFLOW_TAGS)
    pipeline = steps_of_dag(dag_id, project_file)
    if pipeline is None or pipeline.names.asset_key_prefix != key[:-1]:
        owner = NAMES.dag_id if len(key) == 1 else PipelineNames.of(key[0]).dag_id
        raise ClaimRefused(AIRFLOW_DAG_TAG, dag_id, f"the step belongs to DAG {owner!r}")
    try:
        check_run_id(run_id)
    except ValueError as error:
        raise ClaimRefused(AIRFLOW_RUN_TAG, run_id, str(error)) from None
    steps = pipeline.steps
    if shadow:
        tasks = {shadow_task_id(name): step for name, step in steps.items() if step.declared}
        if task_id not in tasks:
            raise ClaimRefused(AIRFLOW_TASK_TAG, task_id, f"the shadow tasks are {', '.join(tasks) or 'none'}")
        if tasks[task_id].output != key[-1]:
            raise ClaimRefused(AIRFLOW_TASK_TAG, task_id, f"that task shadows {tasks[task_id].output}, not {key[-1]}")
    elif task_id not in steps:
        raise ClaimRefused(AIRFLOW_TASK_TAG, task_id, f"the steps' tasks are {', '.join(steps)}")
    elif steps[task_id].output != key[-1]:
        raise ClaimRefused(AIRFLOW_TASK_TAG, task_id, f"that task launches {steps[task_id].output}, not {key[-1]}")
    if not try_text.isascii() or not try_text.isdigit() or int(try_text) < 1:
        raise ClaimRefused(AIRFLOW_TRY_TAG, try_text, "not a try number (1, 2, ...)")
    return AirflowClaim(dag_id, run_id, task_id, int(try_text))


def _airflow_tags(tags: Mapping[str, str]) -> dict[str, str] | None:
    """The run's `airflow/` tags: none, or exactly the four Airflow's task sets."""
    claimed = {key: value for key, value in tags.items() if key.startswith(AIRFLOW_TAG_PREFIX)}
    if not claimed:
        return None
    for key, value in claimed.items():
        if key not in AIRFLOW_TAGS:
            raise ClaimRefused(key, value, f"not one of the tags Airflow's task sets ({', '.join(AIRFLOW_TAGS)})")
    for key in AIRFLOW_TAGS:
        if key not in claimed:
            raise ClaimRefused(key, None, f"missing beside {', '.join(sorted(claimed))}")
    return claimed


def verify_claim(
    client: AirflowClient,
    claim: AirflowClaim,
    dagster_run_id: str,
    *,
    wait_seconds: float = XCOM_WAIT_SECONDS,
    poll_seconds: float = XCOM_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    operator: str = LAUNCHING_OPERATOR,
) -> None:
    """Returns when Airflow vouches that the claimed task (of `operator`) launched Dagster run
    `dagster_run_id`; raises ClaimRefused naming the tag it does not vouch for."""
    _check_run_and_operator(client, claim, operator)
    deadline = clock() + wait_seconds
    while True:
        state = _check_task(client, claim)
        named = _launched_run_url(client, claim)
        if named is not None and named.rstrip("/").endswith(f"/runs/{dagster_run_id}"):
            return
        if state != "running" or clock() >= deadline:  # deferred: it named its run before it waited
            raise ClaimRefused(
                AIRFLOW_RUN_TAG,
                claim.run_id,
                f"task {claim.task_id} of that Airflow run waits on {named or 'no Dagster run'}, "
                f"not on Dagster run {dagster_run_id}",
            )
        sleep(poll_seconds)


def _check_run_and_operator(client: AirflowClient, claim: AirflowClaim, launching: str) -> None:
    """The Airflow run exists and runs, and the task is one that launches its step in Dagster."""
    try:
        run = client.dag_run(claim.dag_id, claim.run_id)
    except OrchestratorApiError as error:
        if error.status == 404:
            raise ClaimRefused(AIRFLOW_RUN_TAG, claim.run_id, f"Airflow has no such run of {claim.dag_id}") from None
        raise
    if run.state != "running":
        raise ClaimRefused(AIRFLOW_RUN_TAG, claim.run_id, f"that Airflow run is {run.state}, not running")
    operator = client.task_operators(claim.dag_id).get(claim.task_id)
    if operator != launching:
        raise ClaimRefused(
            AIRFLOW_TASK_TAG, claim.task_id, f"that task is a {operator}, which runs the step in Airflow itself"
        )


def _check_task(client: AirflowClient, claim: AirflowClaim) -> str:
    """The task's state, once it is launching or waiting, at the claimed try or a later one."""
    task = client.task_states(claim.dag_id, claim.run_id).get(claim.task_id)
    if task is None:
        raise ClaimRefused(AIRFLOW_TASK_TAG, claim.task_id, f"Airflow run {claim.run_id} has no such task")
    if task.state not in LAUNCHING_STATES:
        raise ClaimRefused(AIRFLOW_TASK_TAG, claim.task_id, f"that task is {task.state}, launching nothing")
    if claim.try_number > task.try_number:
        raise ClaimRefused(AIRFLOW_TRY_TAG, str(claim.try_number), f"that task is at try {task.try_number}, not later")
    return task.state


def _launched_run_url(client: AirflowClient, claim: AirflowClaim) -> str | None:
    path = f"/dags/{claim.dag_id}/dagRuns/{claim.run_id}/taskInstances/{claim.task_id}/xcomEntries/{DAGSTER_RUN_XCOM}"
    try:
        value = client.get(path, deserialize="true", stringify="false").get("value")
    except OrchestratorApiError as error:
        if error.status == 404:
            return None
        raise
    return value if isinstance(value, str) else None


def check_launch_tags(tags: Mapping[str, str], dagster_run_id: str, asset: str | Sequence[str]) -> bool:
    """Whether the run acts for an Airflow run, after Airflow vouched for its tags (see the module)."""
    claim = claimed_task(tags, asset, OrchestrationSettings().project_file)
    if claim is None:
        return False
    _vouched(claim, dagster_run_id, LAUNCHING_OPERATOR)
    return True


def check_shadow_tags(tags: Mapping[str, str], dagster_run_id: str, asset: Sequence[str]) -> AirflowClaim:
    """The Airflow run a shadow runs beside, once Airflow vouched that the step's shadow task launched it:
    a shadow reads that run's workspace, so it is always Airflow's, never a run of Dagster's own."""
    claim = claimed_task(tags, asset, OrchestrationSettings().project_file, shadow=True)
    if claim is None:
        raise ClaimRefused(AIRFLOW_RUN_TAG, None, "a shadow runs only beside an Airflow run, whose task launches it")
    _vouched(claim, dagster_run_id, SHADOW_OPERATOR)
    return claim


def _vouched(claim: AirflowClaim, dagster_run_id: str, operator: str) -> None:
    peer = AirflowPeer()
    if not peer.url or peer.password is None:
        raise ClaimRefused(
            AIRFLOW_RUN_TAG, claim.run_id, "Airflow is not configured here (PIPELINE_AIRFLOW_URL), so none can vouch"
        )
    with peer.client() as client:
        verify_claim(client, claim, dagster_run_id, operator=operator)
