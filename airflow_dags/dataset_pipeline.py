"""DAG `dataset_pipeline`: pull_data -> modify_data -> push_data, each one call into `shared_tasks`.

Parse time reads only `OrchestrationSettings` (the DAG processor has no repository or
credentials); a task reads the full settings when it runs. On the cluster each task runs in a
worker pod described by `shared_tasks.cluster`, passed to the KubernetesExecutor as a
pod_override; with no kubernetes client installed the tasks simply carry no pod override.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from shared_tasks.cluster import ClusterSettings, worker_container, worker_volumes
from shared_tasks.pipeline import MAX_RECORDS_PER_RUN, PIPELINE
from shared_tasks.settings import OrchestrationSettings

DAG_ID = "dataset_pipeline"
ORCHESTRATOR = "airflow"

orchestration = OrchestrationSettings()
dataset_asset = Asset(name="dataset", uri=orchestration.dataset_uri)


def worker_pod_override(cluster: ClusterSettings) -> Any | None:
    """The worker pod for the KubernetesExecutor (merged with its pod template), or None without a client."""
    try:
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    except ImportError:
        return None
    manifest = {
        "spec": {
            "serviceAccountName": cluster.service_account,
            "containers": [worker_container(cluster, name="base")],
            "volumes": worker_volumes(cluster),
        }
    }
    # Airflow's own conversion: it keeps the in-cluster client configuration out of the pod, which
    # must be picklable onto the executor's queue.
    return PodGenerator.deserialize_model_dict(manifest)


def executor_config() -> dict[str, Any]:
    pod = worker_pod_override(ClusterSettings())
    return {} if pod is None else {"pod_override": pod}


def _settings_and_run_id() -> tuple[Any, str]:
    from shared_tasks.settings import load_settings

    return load_settings(), str(get_current_context()["run_id"])


def run_pull_data() -> dict[str, Any]:
    from shared_tasks.steps import pull_data

    settings, run_id = _settings_and_run_id()
    return pull_data(settings, run_id).to_dict()


def run_modify_data() -> dict[str, Any]:
    from shared_tasks.steps import modify_data

    settings, run_id = _settings_and_run_id()
    records = int(get_current_context()["params"]["records"])
    return modify_data(settings, run_id, records=records).to_dict()


def run_push_data() -> dict[str, Any]:
    from shared_tasks.steps import push_data

    settings, run_id = _settings_and_run_id()
    return push_data(settings, run_id, orchestrator=ORCHESTRATOR).to_dict()


STEP_CALLABLES = {"pull_data": run_pull_data, "modify_data": run_modify_data, "push_data": run_push_data}
STEP_OUTLETS = {"push_data": [dataset_asset]}

with DAG(
    dag_id=DAG_ID,
    description="Add records to the DVC-tracked dataset and publish a new version",
    schedule=orchestration.schedule,  # None (PIPELINE_SCHEDULE=none): manual and asset-triggered runs only
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["dataset"],
    params={
        "records": Param(
            1,
            type="integer",
            minimum=1,
            maximum=MAX_RECORDS_PER_RUN,
            title="Records to add",
            description="How many generated records this run appends to the dataset.",
        )
    },
    default_args={
        "retries": orchestration.step_retries,
        "retry_delay": timedelta(seconds=orchestration.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=orchestration.retry_delay_max_seconds),
    },
    doc_md=__doc__,
) as dag:
    step_tasks: dict[str, Any] = {}
    for step in PIPELINE:
        step_task = task(
            task_id=step.name,
            doc_md=step.description,
            executor_config=executor_config(),
            outlets=STEP_OUTLETS.get(step.name, []),
        )(STEP_CALLABLES[step.name])()
        for upstream in step.upstream:
            step_tasks[upstream] >> step_task
        step_tasks[step.name] = step_task
