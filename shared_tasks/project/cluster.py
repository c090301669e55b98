"""What a worker pod needs on the cluster, described once for both orchestrators.

The Airflow DAG renders it into a KubernetesExecutor pod_override and the Dagster definitions
into k8s_job_executor config; the deploy manifests and chart values use the same names. It is
plain Kubernetes API JSON (camelCase, as in a manifest): no kubernetes client is imported here.
Every name comes from the environment, so nothing cluster-specific is hard-coded in the DAG or
the assets.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

WORKSPACE_VOLUME = "workspaces"


class ClusterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIPELINE_K8S_", extra="ignore", frozen=True)

    namespace: str = "dataset-pipeline"
    image: str = Field(default="dataset-pipeline-worker:0.1.0", description="Worker image (both orchestrators).")
    image_pull_policy: str = "IfNotPresent"
    service_account: str = Field(
        default="dataset-pipeline-worker", description="Associated with the S3 role through EKS Pod Identity."
    )
    workspace_claim: str = Field(
        default="dataset-pipeline-workspaces",
        description="ReadWriteMany claim holding run workspaces and the DVC cache.",
    )
    workspace_mount_path: str = "/shared"
    credentials_secret: str = Field(default="git-credentials", description="Holds GIT_SYNC_USERNAME/PASSWORD.")
    settings_configmap: str = Field(default="dataset-pipeline-settings", description="Holds the PIPELINE_* settings.")
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "2Gi"


def worker_env_from(cluster: ClusterSettings) -> list[dict[str, Any]]:
    """Settings from the ConfigMap, credentials from the Secret: values never enter a spec."""
    return [
        {"configMapRef": {"name": cluster.settings_configmap}},
        {"secretRef": {"name": cluster.credentials_secret}},
    ]


def worker_volumes(cluster: ClusterSettings) -> list[dict[str, Any]]:
    return [{"name": WORKSPACE_VOLUME, "persistentVolumeClaim": {"claimName": cluster.workspace_claim}}]


def worker_volume_mounts(cluster: ClusterSettings) -> list[dict[str, Any]]:
    return [{"name": WORKSPACE_VOLUME, "mountPath": cluster.workspace_mount_path}]


def worker_resources(cluster: ClusterSettings) -> dict[str, Any]:
    return {
        "requests": {"cpu": cluster.cpu_request, "memory": cluster.memory_request},
        "limits": {"cpu": cluster.cpu_limit, "memory": cluster.memory_limit},
    }


def worker_container(cluster: ClusterSettings, name: str = "base") -> dict[str, Any]:
    """The step container (Airflow merges containers by position: the override is named `base`)."""
    return {
        "name": name,
        "image": cluster.image,
        "imagePullPolicy": cluster.image_pull_policy,
        "envFrom": worker_env_from(cluster),
        "volumeMounts": worker_volume_mounts(cluster),
        "resources": worker_resources(cluster),
    }


def worker_pod_spec(cluster: ClusterSettings) -> dict[str, Any]:
    return {
        "serviceAccountName": cluster.service_account,
        "containers": [worker_container(cluster)],
        "volumes": worker_volumes(cluster),
    }
