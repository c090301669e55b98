"""The verifying DAG of a pipeline's Asset, made for the built-in pipeline and for each declared one.

Its module builds no DAG itself: each DAG file that calls `verify_dag` holds the DAG it made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, get_current_context, task

from airflow_dags.pods import executor_config
from airflow_dags.version_consumer import every_new_version
from shared_tasks.project.settings import OrchestrationSettings

orchestration = OrchestrationSettings()


def verdict(verify: Any, settings: Any, commit: str) -> dict[str, Any]:
    """A version's verdict; a commit that cannot be read as one (bad input, no retry heals it) has failed."""
    try:
        result: dict[str, Any] = verify(settings, commit).to_dict()
    except ValueError as error:
        return {"commit": commit, "ok": False, "problems": [str(error)]}
    return result


def verify_versions(settings: Any, asset: Asset, consumer: str) -> list[dict[str, Any]]:
    """Every version of the settings' pipeline not yet verified by `consumer`, each from the remote."""
    from airflow.sdk.exceptions import AirflowFailException

    from shared_tasks.versioning.history import history, verify

    context = get_current_context()
    state = context["asset_state_store"][asset]
    events = context["triggering_asset_events"]
    pending = every_new_version(state, consumer, events, versions=history(settings))
    results = [verdict(verify, settings, version.commit) for version in pending]
    failed = [result for result in results if not result["ok"]]
    if failed:
        named = "; ".join(f"{result['commit']}: {' | '.join(result['problems'])}" for result in failed)
        raise AirflowFailException(f"{len(failed)} of {len(results)} version(s) did not verify: {named}")
    return results


def verify_dag(
    dag_id: str, asset: Asset, settings_of: Callable[[], Any], tag: str, description: str, doc_md: str | None = None
) -> DAG:
    """The verifying DAG of one pipeline's Asset (the built-in one's, or a declared pipeline's)."""

    def verify_new_versions() -> list[dict[str, Any]]:
        return verify_versions(settings_of(), asset, dag_id)

    with DAG(
        dag_id=dag_id,
        description=description,
        schedule=[asset],
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        # One run at a time: the watermark is read and advanced by one run only, so a version is verified once.
        max_active_runs=1,
        # Running from the start: Airflow watches an asset only for DAGs that are active and unpaused.
        is_paused_upon_creation=False,
        tags=[tag],
        default_args={
            # A worker that died mid-run is retried (its unverified versions are still pending); a version
            # that did not verify fails the task for good (AirflowFailException), and is not verified twice.
            "retries": orchestration.step_retries,
            "retry_delay": timedelta(seconds=orchestration.retry_delay_seconds),
        },
        doc_md=doc_md,
    ) as verifying:
        task(task_id="verify_versions", inlets=[asset], executor_config=executor_config())(verify_new_versions)()
    return verifying
