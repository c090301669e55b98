"""DAG `verify_dataset_version`: every new version of the dataset, whoever made it, proven from the remote.

Scheduled on the `dataset` Asset, so it runs for the versions Airflow's own DAG publishes (its
push task's outlet event) and for every other one (the asset's watcher). A run verifies every
version published since the last one verified, not just those its triggering events name:
Airflow may fold a burst of events into one run that names only the first
(`airflow_dags/version_consumer.py`). Each version is taken from scratch: a fresh clone at its
commit, an empty DVC cache, its data pulled from the remote and compared with its pointer, as
`dataset-pipeline verify` does. A version that does not verify fails the run, naming the commit
and why, after the others of the run are verified; it is not verified again by a later run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_dags.dataset_asset import dataset_asset, orchestration
from airflow_dags.pods import executor_config
from airflow_dags.version_consumer import every_new_version
from shared_tasks.project.names import NAMES


def verdict(verify: Any, settings: Any, commit: str) -> dict[str, Any]:
    """A version's verdict; a commit that cannot be read as one (bad input, no retry heals it) has failed."""
    try:
        result: dict[str, Any] = verify(settings, commit).to_dict()
    except ValueError as error:
        return {"commit": commit, "ok": False, "problems": [str(error)]}
    return result


def verify_new_versions() -> list[dict[str, Any]]:
    from airflow.sdk.exceptions import AirflowFailException

    from shared_tasks.project.settings import load_builtin_settings
    from shared_tasks.versioning.history import verify

    settings = load_builtin_settings()
    context = get_current_context()
    state = context["asset_state_store"][dataset_asset]
    pending = every_new_version(state, NAMES.verify_dag_id, context["triggering_asset_events"])
    results = [verdict(verify, settings, version.commit) for version in pending]
    failed = [result for result in results if not result["ok"]]
    if failed:
        named = "; ".join(f"{result['commit']}: {' | '.join(result['problems'])}" for result in failed)
        raise AirflowFailException(f"{len(failed)} of {len(results)} version(s) did not verify: {named}")
    return results


with DAG(
    dag_id=NAMES.verify_dag_id,
    description="Verify each new version of the dataset from the remote",
    schedule=[dataset_asset],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # One run at a time: the watermark is read and advanced by one run only, so a version is verified once.
    max_active_runs=1,
    # Running from the start: Airflow watches an asset only for DAGs that are active and unpaused.
    is_paused_upon_creation=False,
    tags=[NAMES.dag_tag],
    default_args={
        # A worker that died mid-run is retried (its unverified versions are still pending); a version
        # that did not verify fails the task for good (AirflowFailException), and is not verified twice.
        "retries": orchestration.step_retries,
        "retry_delay": timedelta(seconds=orchestration.retry_delay_seconds),
    },
    doc_md=__doc__,
) as dag:
    task(task_id="verify_versions", inlets=[dataset_asset], executor_config=executor_config())(verify_new_versions)()
