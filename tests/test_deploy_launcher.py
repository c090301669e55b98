"""What a launch can set of the pods Dagster makes on the cluster, checked against dagster-k8s itself.

The values' CustomRunLauncher is dagster-k8s's K8sRunLauncher with the config the chart renders for
its own, the run pods' env, volume and service account (the code server's), and an empty allowlist
of user-defined pod config. These build that launcher from the values (offline: a kubeconfig that
names no reachable cluster) and ask it for the container context of runs as the code server's
deployment launches them: a run without tags gets the worker's service account, env, volume and
namespace; a run tagged `dagster-k8s/config` with any field of any part of the pod it may name is
refused before a pod exists, field by field over the Kubernetes models' own attribute lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from shared_tasks.project.cluster import ClusterSettings
from tests.deploy_support import DAGSTER_VALUES, load_yaml

DEFAULTS = ClusterSettings()
RELEASE = "dagster"  # docs/eks.md installs the chart as this release
CHART_DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome default


def launcher_config(values: dict[str, Any]) -> dict[str, Any]:
    custom = values["runLauncher"]["config"]["customRunLauncher"]
    assert values["runLauncher"]["type"] == "CustomRunLauncher"
    assert (custom["module"], custom["class"]) == ("dagster_k8s", "K8sRunLauncher")
    config: dict[str, Any] = custom["config"]
    return config


def chart_instance_settings(values: dict[str, Any]) -> dict[str, Any]:
    """What the chart renders for its K8sRunLauncher's instance settings
    (templates/helpers/instance/_run-launcher.tpl), release `dagster`."""
    return {
        "load_incluster_config": True,
        "dagster_home": values.get("global", {}).get("dagsterHome", CHART_DAGSTER_HOME),
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }


def deployment_of(values: dict[str, Any]) -> dict[str, Any]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert isinstance(deployment, dict)
    return deployment


@pytest.fixture
def launcher(tmp_path: Path) -> Any:
    """The values' run launcher, as the daemon would build it (a kubeconfig instead of the pod's account)."""
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "unused"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    config = launcher_config(load_yaml(DAGSTER_VALUES))
    checked = process_config(K8sRunLauncher.config_type(), config)
    assert checked.success, [error.message for error in checked.errors]
    value = {**checked.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    return K8sRunLauncher.from_config_value(None, value)


def run_of_the_deployment(tags: dict[str, str]) -> Any:
    """A run launched from the code server's deployment, as every launch (UI, API, sensor, Airflow) is:
    its origin carries no container context (includeConfigInLaunchedRuns is off)."""
    import dagster as dg
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin

    assert deployment_of(load_yaml(DAGSTER_VALUES))["includeConfigInLaunchedRuns"] == {"enabled": False}
    repository = RepositoryPythonOrigin(
        executable_path="/usr/local/bin/python",
        code_pointer=ModuleCodePointer("dagster_assets.definitions", "defs", working_directory=None),
        container_image="worker:0.1.0",
    )
    return dg.DagsterRun(
        job_name="dataset_pipeline",
        run_id="0b5f7e00-0000-4000-8000-000000000000",
        tags=tags,
        job_code_origin=JobPythonOrigin("dataset_pipeline", repository),
    )


def test_the_launcher_is_the_charts_k8s_run_launcher_with_the_code_servers_pod_settings() -> None:
    values = load_yaml(DAGSTER_VALUES)
    config = launcher_config(values)
    assert {key: config[key] for key in chart_instance_settings(values)} == chart_instance_settings(values)
    assert config["only_allow_user_defined_k8s_config_fields"] == {}, "no field of the run pod is a launch's"
    deployment = deployment_of(values)
    assert config["job_namespace"] == DEFAULTS.namespace
    assert config["service_account_name"] == values["dagster-user-deployments"]["serviceAccount"]["name"]
    assert config["env_vars"] == [f"{item['name']}={item['value']}" for item in deployment["env"]]
    assert config["env_config_maps"] == [item["name"] for item in deployment["envConfigMaps"]]
    assert config["env_secrets"] == [item["name"] for item in deployment["envSecrets"]]
    assert (config["volumes"], config["volume_mounts"]) == (deployment["volumes"], deployment["volumeMounts"])
    assert (config["image_pull_policy"], config["resources"]) == (
        deployment["image"]["pullPolicy"],
        deployment["resources"],
    )


def test_a_run_without_pod_config_gets_the_workers_account_env_volume_and_namespace(launcher: Any) -> None:
    context = launcher.get_container_context_for_run(run_of_the_deployment({}))
    deployment = deployment_of(load_yaml(DAGSTER_VALUES))
    pod = context.run_k8s_config.to_dict()
    assert context.namespace == DEFAULTS.namespace
    assert pod["pod_spec_config"]["service_account_name"] == DEFAULTS.service_account
    assert pod["pod_spec_config"]["volumes"] == [
        {"name": "workspaces", "persistent_volume_claim": {"claim_name": DEFAULTS.workspace_claim}}
    ]
    container = pod["container_config"]
    assert container["env"] == [{"name": item["name"], "value": item["value"]} for item in deployment["env"]]
    assert container["env_from"] == [
        {"config_map_ref": {"name": DEFAULTS.settings_configmap}},
        *[{"secret_ref": {"name": item["name"]}} for item in deployment["envSecrets"]],
    ]
    assert container["volume_mounts"] == [{"name": "workspaces", "mount_path": DEFAULTS.workspace_mount_path}]


POD_PARTS = {
    "container_config": kubernetes.client.V1Container,
    "pod_spec_config": kubernetes.client.V1PodSpec,
    "pod_template_spec_metadata": kubernetes.client.V1ObjectMeta,
    "job_spec_config": kubernetes.client.V1JobSpec,
    "job_metadata": kubernetes.client.V1ObjectMeta,
}


def every_pod_field() -> list[tuple[str, str]]:
    """Each field of each part of a pod a `dagster-k8s/config` tag may name, from the Kubernetes models."""
    return [(part, field) for part, model in POD_PARTS.items() for field in model.attribute_map]


def a_value_of(type_name: str) -> Any:
    """A value of a Kubernetes model attribute's declared type, as a tag would carry it."""
    scalars: dict[str, Any] = {"str": "x", "bool": True, "int": 1, "float": 1.0, "datetime": "2026-01-01T00:00:00Z"}
    if type_name.startswith("list["):
        return []
    return scalars.get(type_name, {})  # a model, a dict or an object


@pytest.mark.parametrize(("part", "field"), every_pod_field(), ids=lambda value: str(value))
def test_a_launch_may_set_no_field_of_the_run_pod_through_its_tags(launcher: Any, part: str, field: str) -> None:
    value = a_value_of(POD_PARTS[part].openapi_types[field])
    run = run_of_the_deployment({"dagster-k8s/config": json.dumps({part: {field: value}})})
    with pytest.raises(Exception, match=f"violated the allowed list: {part}.{field}$"):
        launcher.get_container_context_for_run(run)


def test_without_the_allowlist_the_same_tag_would_set_the_run_pods_image(launcher: Any) -> None:
    """The fault the allowlist closes is real: the chart's plain K8sRunLauncher takes the tag."""
    launcher._only_allow_user_defined_k8s_config_fields = None
    tags = {"dagster-k8s/config": json.dumps({"container_config": {"image": "attacker/image:1"}})}
    context = launcher.get_container_context_for_run(run_of_the_deployment(tags))
    assert context.run_k8s_config.container_config["image"] == "attacker/image:1"


def test_a_launchs_run_config_cannot_set_the_step_pods() -> None:
    """Step pods: k8s_job_executor's config is fixed in code, so whatever a launch's run config says of
    the executor (another image, account, per-step pod spec) resolves to the code's config, unchanged."""
    from dagster_k8s import k8s_job_executor

    from dagster_assets.k8s import k8s_executor_config

    fixed = k8s_executor_config()
    executor = k8s_job_executor.configured(fixed)
    launched = {
        "job_image": "attacker/image:1",
        "service_account_name": "cluster-admin",
        "step_k8s_config": {"container_config": {"image": "attacker/image:1"}},
        "per_step_k8s_config": {"pull_data": {"pod_spec_config": {"host_network": True}}},
    }
    resolved = executor.config_schema.resolve_config(launched)
    assert resolved.success, resolved.errors
    config = resolved.value["config"]
    assert {key: config[key] for key in fixed} == fixed, "the code's config, whatever the launch said"
    assert (config.get("step_k8s_config", {}), config.get("per_step_k8s_config", {})) == ({}, {})
