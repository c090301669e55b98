"""The neutral worker-pod description both orchestrator adapters render."""

from __future__ import annotations

import pytest

from shared_tasks.project.cluster import ClusterSettings, worker_container, worker_pod_spec


def test_every_name_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_K8S_IMAGE", "registry.example.invalid/worker:1.2.3")
    monkeypatch.setenv("PIPELINE_K8S_WORKSPACE_CLAIM", "efs-claim")
    monkeypatch.setenv("PIPELINE_K8S_SERVICE_ACCOUNT", "runner")
    spec = worker_pod_spec(ClusterSettings())
    assert spec["serviceAccountName"] == "runner"
    assert spec["containers"][0]["image"] == "registry.example.invalid/worker:1.2.3"
    assert spec["volumes"] == [{"name": "workspaces", "persistentVolumeClaim": {"claimName": "efs-claim"}}]


def test_the_container_takes_settings_and_credentials_by_reference_only() -> None:
    container = worker_container(ClusterSettings())
    assert container["name"] == "base"
    assert container["envFrom"] == [
        {"configMapRef": {"name": "dataset-pipeline-settings"}},
        {"secretRef": {"name": "git-credentials"}},
    ]
    assert "env" not in container
    assert container["volumeMounts"] == [{"name": "workspaces", "mountPath": "/shared"}]
    assert set(container["resources"]) == {"requests", "limits"}
