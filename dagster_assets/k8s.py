"""The cluster side of the Dagster job: `k8s_job_executor` config and per-op pod tags.

Both are built from `shared_tasks.project.cluster`, the description the Airflow DAG and the deploy
manifests share, so a step pod gets the same image, volume, env and service account whichever
orchestrator starts it.
"""

from typing import Any

from shared_tasks.project.cluster import (
    ClusterSettings,
    worker_env_from,
    worker_resources,
    worker_volume_mounts,
    worker_volumes,
)

K8S_CONFIG_TAG = "dagster-k8s/config"


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _snake_keys(value: Any) -> Any:
    """Kubernetes JSON (camelCase) to the snake_case dagster-k8s's config schema names."""
    if isinstance(value, dict):
        return {_snake(key): _snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snake_keys(item) for item in value]
    return value


def k8s_executor_config(cluster: ClusterSettings | None = None) -> dict[str, Any]:
    """Config of `k8s_job_executor`: one Kubernetes Job per step, all on the shared claim."""
    cluster = cluster or ClusterSettings()
    env_from = worker_env_from(cluster)
    return {
        "job_namespace": cluster.namespace,
        "job_image": cluster.image,
        "image_pull_policy": cluster.image_pull_policy,
        "service_account_name": cluster.service_account,
        "env_config_maps": [source["configMapRef"]["name"] for source in env_from if "configMapRef" in source],
        "env_secrets": [source["secretRef"]["name"] for source in env_from if "secretRef" in source],
        "volumes": _snake_keys(worker_volumes(cluster)),
        "volume_mounts": _snake_keys(worker_volume_mounts(cluster)),
        "resources": worker_resources(cluster),
        "load_incluster_config": True,
    }


def step_pod_tags(cluster: ClusterSettings | None = None) -> dict[str, Any]:
    """Op tags a step pod needs: on each op, since job-level tags do not reach step pods.

    A per-op `container_config.resources` replaces the executor's resources rather than merging
    into them, so it carries requests and limits both.
    """
    cluster = cluster or ClusterSettings()
    return {
        K8S_CONFIG_TAG: {
            "container_config": {"resources": worker_resources(cluster)},
            "pod_spec_config": {"service_account_name": cluster.service_account},
        }
    }
