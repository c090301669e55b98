"""DAG `verify_dataset_version`: every new version of the dataset, whoever made it, proven from the remote.

Scheduled on the `dataset` Asset, so it runs for the versions Airflow's own DAG publishes (its
push task's outlet event) and for every other one (the asset's watcher). Each version is taken
from scratch: a fresh clone at its commit, an empty DVC cache, its data pulled from the remote and
compared with its pointer, as `dataset-pipeline verify` does. A version that does not verify fails
the run, naming the commit and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_dags.dataset_asset import dataset_asset
from airflow_dags.pods import executor_config
from airflow_dags.version_watcher import announced_version

DAG_ID = "verify_dataset_version"


def verify_announced_versions() -> list[dict[str, Any]]:
    from airflow.sdk.exceptions import AirflowFailException

    from shared_tasks.history import verify
    from shared_tasks.settings import load_settings

    settings = load_settings()
    events = [event for found in get_current_context()["triggering_asset_events"].values() for event in found]
    commits = list(dict.fromkeys(str(announced_version(event.extra).get("commit", "")) for event in events))
    results = [verify(settings, commit).to_dict() for commit in commits if commit]
    failed = [result for result in results if not result["ok"]]
    if failed:
        named = "; ".join(f"{result['commit']}: {' | '.join(result['problems'])}" for result in failed)
        raise AirflowFailException(f"{len(failed)} of {len(results)} version(s) did not verify: {named}")
    return results


with DAG(
    dag_id=DAG_ID,
    description="Verify each new version of the dataset from the remote",
    schedule=[dataset_asset],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Running from the start: Airflow watches an asset only for DAGs that are active and unpaused.
    is_paused_upon_creation=False,
    tags=["dataset"],
    doc_md=__doc__,
) as dag:
    task(task_id="verify_versions", executor_config=executor_config())(verify_announced_versions)()
