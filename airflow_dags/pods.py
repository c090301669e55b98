"""The worker pod of every task, for the KubernetesExecutor: built once from `shared_tasks.project.cluster`."""

from __future__ import annotations

from typing import Any

from shared_tasks.project.cluster import ClusterSettings, worker_pod_spec


def worker_pod_override(cluster: ClusterSettings) -> Any | None:
    """The worker pod (merged with the executor's pod template), or None without a kubernetes client."""
    try:
        from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
    except ImportError:
        return None
    # Airflow's own conversion: it keeps the in-cluster client configuration out of the pod, which
    # must be picklable onto the executor's queue.
    return PodGenerator.deserialize_model_dict({"spec": worker_pod_spec(cluster)})


def executor_config() -> dict[str, Any]:
    pod = worker_pod_override(ClusterSettings())
    return {} if pod is None else {"pod_override": pod}
