"""One set of names across deploy/: manifests, both charts' values, the shared cluster description,
the DAG's pod_override and the Dagster executor config; and the pipeline's names in the orchestrators
(shared_tasks.project.names) wherever a file outside Python must spell them out.

The orchestrator sides load in processes of their own with exactly the settings ConfigMap as their
environment, as Airflow's DAG processor and Dagster's code server do on the cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared_tasks.project.cluster import (
    ClusterSettings,
    worker_env_from,
    worker_volume_mounts,
    worker_volumes,
)
from shared_tasks.project.names import NAMES
from shared_tasks.project.settings import Settings
from tests.conftest import hermetic_environment
from tests.deploy_support import (
    AIRFLOW_VALUES,
    DAGSTER_VALUES,
    EKS_GUIDE,
    GIT_SECRET_SCRIPT,
    PEER_SCRIPT,
    REPO_ROOT,
    all_manifests,
    kubernetes_version,
    load_yaml,
    manifest,
)

DEFAULTS = ClusterSettings()
GIT_SECRET_KEYS = {"GIT_SYNC_USERNAME", "GIT_SYNC_PASSWORD", "GITSYNC_USERNAME", "GITSYNC_PASSWORD"}
# The orchestrators' view of each other: Airflow's API server for Dagster's sensor (URL, and the
# Secret deploy/airflow/create-peer-user.sh makes), Dagster's webserver for Airflow's cut-over steps.
PEER_SECRET = "airflow-peer-credentials"
PEER_SECRET_KEYS = {"PIPELINE_AIRFLOW_USERNAME", "PIPELINE_AIRFLOW_PASSWORD"}
RELEASES = {"airflow": "airflow", "dagster": "dagster"}  # docs/eks.md's helm releases


def settings_data() -> dict[str, str]:
    data: dict[str, str] = manifest("ConfigMap", DEFAULTS.settings_configmap)["data"]
    return data


def worker_image() -> str:
    return settings_data()["PIPELINE_K8S_IMAGE"]


def dagster_deployment() -> dict[str, Any]:
    (deployment,) = load_yaml(DAGSTER_VALUES)["dagster-user-deployments"]["deployments"]
    assert isinstance(deployment, dict)
    return deployment


def _image(spec: dict[str, Any]) -> str:
    return f"{spec['repository']}:{spec['tag']}"


# manifests and the shared cluster description ------------------------------------------------


def test_manifests_use_the_shared_names() -> None:
    assert manifest("Namespace", DEFAULTS.namespace)
    namespaced = [doc for doc in all_manifests() if doc["kind"] not in ("Namespace", "StorageClass")]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {DEFAULTS.namespace}
    assert manifest("ServiceAccount", DEFAULTS.service_account)
    binding = manifest("RoleBinding", "dataset-pipeline-step-jobs")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": DEFAULTS.service_account, "namespace": DEFAULTS.namespace}
    ]
    claim = manifest("PersistentVolumeClaim", DEFAULTS.workspace_claim)
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    storage_class = manifest("StorageClass", claim["spec"]["storageClassName"])
    assert storage_class["provisioner"] == "efs.csi.aws.com"
    assert storage_class["parameters"]["uid"] == "50000", "files on EFS belong to the image's user"


def test_the_settings_configmap_describes_the_same_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    data = settings_data()
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    described = ClusterSettings()
    assert described.model_dump(exclude={"image"}) == DEFAULTS.model_dump(exclude={"image"})
    assert described.image.endswith("/dataset-pipeline-worker:0.1.0")
    unknown = {key for key in data if key.startswith("PIPELINE_K8S_")} - {
        f"PIPELINE_K8S_{field.upper()}" for field in ClusterSettings.model_fields
    }
    assert not unknown, f"ConfigMap keys ClusterSettings does not read: {unknown}"
    settings = Settings()  # what a step pod loads: the ConfigMap plus nothing else is enough
    assert str(settings.work_root) == DEFAULTS.workspace_mount_path
    assert settings.cache_dir.is_relative_to(settings.work_root), "the DVC cache lives on the shared volume"
    assert settings.s3_endpoint_url is None, "on AWS the SDKs find S3 themselves"
    assert settings.dvc_remote_url is not None and settings.dvc_remote_url.endswith("/datasets")


def test_the_git_secret_holds_every_key_its_readers_use() -> None:
    script = GIT_SECRET_SCRIPT.read_text(encoding="utf-8")
    written = set(re.findall(r"(GIT_?SYNC_(?:USERNAME|PASSWORD))=%s", script))
    assert written == GIT_SECRET_KEYS
    read_by_steps = set()
    for name in ("git_username", "git_password"):
        alias = Settings.model_fields[name].validation_alias
        read_by_steps |= {str(choice) for choice in getattr(alias, "choices", [])}
    assert read_by_steps <= written
    assert f"secret_name=${{SECRET_NAME:-{DEFAULTS.credentials_secret}}}" in script
    assert f"namespace=${{NAMESPACE:-{DEFAULTS.namespace}}}" in script


# chart values ---------------------------------------------------------------------------------


def test_airflow_values_agree_with_the_cluster_description() -> None:
    import airflow

    values = load_yaml(AIRFLOW_VALUES)
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == values["defaultAirflowTag"] == airflow.__version__
    assert _image(values["images"]["airflow"]) == _image(values["images"]["pod_template"]) == worker_image()
    for account in (values["workers"]["serviceAccount"], values["workers"]["kubernetes"]["serviceAccount"]):
        assert account == {"create": False, "name": DEFAULTS.service_account}
    assert values["dags"]["gitSync"]["credentialsSecret"] == DEFAULTS.credentials_secret
    assert values["dags"]["gitSync"]["subPath"] == "airflow_dags"
    assert (REPO_ROOT / "airflow_dags" / "dataset_pipeline.py").is_file()
    assert yaml.safe_load(values["extraEnvFrom"]) == [{"configMapRef": {"name": DEFAULTS.settings_configmap}}]
    assert manifest("StorageClass", values["logs"]["persistence"]["storageClassName"])
    assert manifest("StorageClass", values["postgresql"]["primary"]["persistence"]["storageClass"])
    assert values["config"]["kubernetes_executor"]["namespace"] == DEFAULTS.namespace
    assert values["apiServer"]["defaultUser"]["enabled"] is False
    assert values["webserver"]["defaultUser"]["enabled"] is False
    for key in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName"):
        assert values[key], f"{key} names a pre-created Secret"


def test_dagster_values_agree_with_the_cluster_description() -> None:
    import dagster

    values = load_yaml(DAGSTER_VALUES)
    deployment = dagster_deployment()
    assert _image(deployment["image"]) == worker_image()
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "dagster_assets.definitions"]
    assert {"name": "PIPELINE_EXECUTOR", "value": "k8s"} in deployment["env"]
    env_from = worker_env_from(DEFAULTS)
    assert deployment["envConfigMaps"] == [
        {"name": ref["configMapRef"]["name"]} for ref in env_from if "configMapRef" in ref
    ]
    worker_secrets = [{"name": ref["secretRef"]["name"]} for ref in env_from if "secretRef" in ref]
    assert deployment["envSecrets"] == [*worker_secrets, {"name": PEER_SECRET}], "the step's, then the sensor's"
    assert deployment["volumes"] == worker_volumes(DEFAULTS)
    assert deployment["volumeMounts"] == worker_volume_mounts(DEFAULTS)
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}, "run pods: the launcher's (below)"
    assert values["dagster-user-deployments"]["serviceAccount"]["name"] == DEFAULTS.service_account
    launcher = values["runLauncher"]["config"]["customRunLauncher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert launcher["config"]["job_namespace"] == DEFAULTS.namespace
    assert f"--version {dagster.__version__}" in DAGSTER_VALUES.read_text(encoding="utf-8")


def test_the_run_queue_keeps_the_pipeline_pool_to_one_run() -> None:
    from dagster_assets.assets import STEP_ASSETS
    from dagster_assets.definitions import defs

    values = load_yaml(DAGSTER_VALUES)
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True
    assert coordinator["type"] == "QueuedRunCoordinator"
    pools = values["additionalInstanceConfig"]["concurrency"]["pools"]
    limit = pools.get("limits", {}).get(NAMES.publish_pool, pools["default_limit"])
    assert (pools["granularity"], limit) == ("run", 1)
    assert {defs.resolve_assets_def(name).op.pool for name in STEP_ASSETS.values()} == {NAMES.publish_pool}


def chart_run_monitoring_config(values: dict[str, Any]) -> dict[str, Any]:
    """The run monitoring and run retry part of the dagster.yaml the chart renders from the values
    (its templates/configmap-instance.yaml), with additionalInstanceConfig merged as it is there."""
    daemon, rendered = values["dagsterDaemon"], {}
    monitoring, retries = daemon.get("runMonitoring", {}), daemon.get("runRetries", {})
    if daemon["enabled"] and monitoring.get("enabled"):
        rendered["run_monitoring"] = {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "cancel_timeout_seconds": monitoring["cancelTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        }
    if daemon["enabled"] and retries.get("enabled"):
        rendered["run_retries"] = {
            "enabled": True,
            **({"max_retries": retries["maxRetries"]} if retries.get("maxRetries") else {}),
        }
    extra = values.get("additionalInstanceConfig", {})
    assert not set(rendered) & set(extra), "the chart would write these keys of dagster.yaml twice"
    return {**rendered, **{key: extra[key] for key in ("run_monitoring", "run_retries") if key in extra}}


def test_a_run_whose_worker_died_is_failed_and_retried_on_the_cluster_as_on_the_local_stack() -> None:
    from dagster._config import Shape, process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    from dataset_pipeline.dagster_stack import instance_config

    rendered = chart_run_monitoring_config(load_yaml(DAGSTER_VALUES))
    checked = process_config(Shape(dagster_instance_config_schema()), rendered)
    assert checked.success, [error.message for error in checked.errors]
    monitoring = rendered["run_monitoring"]
    assert monitoring["enabled"] is True and monitoring["start_timeout_seconds"] > 0
    assert monitoring["free_slots_after_run_end_seconds"] >= 0
    local = instance_config(Path("/dagster-home"))
    assert local["run_monitoring"]["enabled"] is True
    # Neither resumes a run on a new worker; both retry it once, only when its worker died.
    assert monitoring["max_resume_run_attempts"] == local["run_monitoring"]["max_resume_run_attempts"] == 0
    assert rendered["run_retries"] == local["run_retries"]
    assert (
        rendered["run_retries"]["max_retries"] >= 1 and rendered["run_retries"]["retry_on_asset_or_op_failure"] is False
    )
    # The default launcher cannot say whether a worker lives: the local stack's can, the cluster's K8s one does.
    assert local["run_launcher"]["module"] == "dagster_assets.run_launcher"
    assert load_yaml(DAGSTER_VALUES)["runLauncher"]["config"]["customRunLauncher"]["class"] == "K8sRunLauncher"


def _env(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def _admitted_ports(policy_name: str) -> set[int]:
    """The ports deploy/k8s/networkpolicies.yaml admits to the pods of one policy."""
    policy = manifest("NetworkPolicy", policy_name)
    return {port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]}


def test_dagster_reaches_airflows_api_server_as_the_peer_user() -> None:
    env = _env(dagster_deployment()["env"])
    ports = load_yaml(AIRFLOW_VALUES).get("ports", {})
    service = f"{RELEASES['airflow']}-api-server.{DEFAULTS.namespace}.svc.cluster.local"
    assert env["PIPELINE_AIRFLOW_URL"]["value"] == f"http://{service}:{ports.get('apiServer', 8080)}"
    assert _admitted_ports("airflow-api-server") == {ports.get("apiServer", 8080)}, "the port the policy admits"
    script = PEER_SCRIPT.read_text(encoding="utf-8")
    assert f"secret_name=${{SECRET_NAME:-{PEER_SECRET}}}" in script
    assert f"namespace=${{NAMESPACE:-{DEFAULTS.namespace}}}" in script
    assert set(re.findall(r"(PIPELINE_AIRFLOW_\w+)=%s", script)) == PEER_SECRET_KEYS


def test_airflows_workers_and_triggerer_reach_dagsters_webserver() -> None:
    webserver = load_yaml(DAGSTER_VALUES)["dagsterWebserver"]
    service = f"{RELEASES['dagster']}-{webserver['nameOverride']}.{DEFAULTS.namespace}.svc.cluster.local"
    url = f"http://{service}:{webserver['service']['port']}"
    values = load_yaml(AIRFLOW_VALUES)
    for component in ("workers", "triggerer"):
        assert _env(values[component]["env"])["PIPELINE_DAGSTER_URL"] == {"name": "PIPELINE_DAGSTER_URL", "value": url}
    # The chart runs the webserver on its Service's port, so the policy admits that same port.
    assert _admitted_ports("dagster-webserver") == {webserver["service"]["port"]}


def test_the_triggerer_has_what_its_git_watcher_reads() -> None:
    """The settings from the ConfigMap (every Airflow container's envFrom), the credentials key by key,
    and the work root its mirror of the origin lives under."""
    values = load_yaml(AIRFLOW_VALUES)
    assert {"configMapRef": {"name": DEFAULTS.settings_configmap}} in yaml.safe_load(values["extraEnvFrom"])
    triggerer = values["triggerer"]
    assert triggerer["extraVolumes"] == worker_volumes(DEFAULTS)
    assert triggerer["extraVolumeMounts"] == worker_volume_mounts(DEFAULTS)
    assert settings_data()["PIPELINE_WORK_ROOT"] == DEFAULTS.workspace_mount_path
    env = _env(triggerer["env"])
    for name in ("git_username", "git_password"):
        alias = Settings.model_fields[name].validation_alias
        key = next(str(choice) for choice in getattr(alias, "choices", []))
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": DEFAULTS.credentials_secret, "key": key}}
        assert key in GIT_SECRET_KEYS


def test_the_cutover_file_reaches_airflow_with_the_dag() -> None:
    """git-sync serves the subPath, the DAG's folder, and with it the cutover file beside the DAG."""
    from shared_tasks.project.cutover import FILE_NAME

    values = load_yaml(AIRFLOW_VALUES)
    cutover = Path(values["dags"]["gitSync"]["subPath"]) / FILE_NAME
    assert (REPO_ROOT / cutover).with_name("dataset_pipeline.py").is_file(), "beside the DAG"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(cutover)], cwd=REPO_ROOT, capture_output=True)
    assert tracked.returncode == 0, f"{cutover} is in Git, or git-sync never serves it"


# the pipeline's names, where a file must spell them out ---------------------------------------


def test_dagster_in_the_project_root_loads_the_pipelines_code_location() -> None:
    """`dagster dev` there names the location from [tool.dagster]: the one the control side and
    Airflow's cut-over steps address."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["dagster"]["code_location_name"] == NAMES.dagster_location


def test_the_cluster_names_its_code_location_as_airflow_and_the_control_side_address_it() -> None:
    """The chart names a user deployment's location after the deployment: a cut-over step on the
    cluster launches its Dagster run in that location."""
    assert dagster_deployment()["name"] == NAMES.dagster_location


def test_the_peer_user_may_read_the_pipelines_dag() -> None:
    script = PEER_SCRIPT.read_text(encoding="utf-8")
    assert re.findall(r"^dag_id=\$\{DAG_ID:-([^}]*)\}$", script, re.MULTILINE) == [NAMES.dag_id]
    assert f"DAG_ID [{NAMES.dag_id}]" in script, "the usage names the default"


def test_the_eks_guide_commands_name_the_pipelines_dag_job_and_pool() -> None:
    guide = EKS_GUIDE.read_text(encoding="utf-8")
    named = {
        "DAG": re.findall(r"airflow dags (?:unpause|trigger|list-runs) (\S+)", guide)
        + re.findall(r"grep -qw (\S+);", guide),
        "job": re.findall(r"dagster job launch -j (\S+)", guide),
        "pool": re.findall(r"dagster instance concurrency set (\S+) \d+", guide),
    }
    assert named == {
        "DAG": [NAMES.dag_id] * 4,
        "job": [NAMES.dagster_job],
        "pool": [NAMES.publish_pool],
    }


# the orchestrators' own renderings ----------------------------------------------------------

AIRFLOW_RENDER = """
import json, sys
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from kubernetes.client import ApiClient
from airflow_dags.dataset_pipeline import dag

templates = json.loads(sys.stdin.read())
override = dag.get_task("pull_data").executor_config["pod_override"]
client = ApiClient()
pods = [
    client.sanitize_for_serialization(PodGenerator.construct_pod(
        dag_id=dag.dag_id, task_id="pull_data", pod_id="dataset-pipeline-pull-data", try_number=1,
        kube_image="unused:0", date=None, run_id="manual__2026-01-01T00:00:00+00:00",
        args=["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"],
        pod_override_object=override, base_worker_pod=PodGenerator.deserialize_model_dict(template),
        namespace="dataset-pipeline", scheduler_job_id="1"))
    for template in templates
]
print("RENDERED " + json.dumps({"override": client.sanitize_for_serialization(override), "pods": pods}))
"""

DAGSTER_RENDER = """
import json
from dagster_k8s.container_context import K8sContainerContext
from dagster_assets.definitions import defs
from dagster_assets.k8s import k8s_executor_config
from shared_tasks.project.names import NAMES

deployment = json.loads(input())
executor = defs.resolve_job_def(NAMES.dagster_job).executor_def
config = k8s_executor_config()
# What a step pod gets: the run's context (the run launcher's config) merged with the executor's
# config, as k8s_job_executor merges them.
launcher = deployment
run_context = K8sContainerContext(
    env_config_maps=launcher["env_config_maps"], env_secrets=launcher["env_secrets"],
    volumes=launcher["volumes"], volume_mounts=launcher["volume_mounts"],
    service_account_name=launcher["service_account_name"],
)
step_context = run_context.merge(K8sContainerContext(
    env_config_maps=config["env_config_maps"], env_secrets=config["env_secrets"],
    volumes=config["volumes"], volume_mounts=config["volume_mounts"],
    service_account_name=config["service_account_name"],
))
print("RENDERED " + json.dumps({
    "executor": executor.name,
    "config": config,
    "step": step_context.run_k8s_config.to_dict(),
}, default=str))
"""


def _render(script: str, stdin: str, tmp_path: Path, **extra_env: str) -> dict[str, Any]:
    env = {
        **hermetic_environment(tmp_path),
        **settings_data(),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        **extra_env,
    }
    (tmp_path / "dagster").mkdir(exist_ok=True)
    completed = subprocess.run(
        [sys.executable, "-c", script], input=stdin, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RENDERED ")]
    rendered: dict[str, Any] = json.loads(line.removeprefix("RENDERED "))
    return rendered


def chart_pod_template(values: dict[str, Any]) -> dict[str, Any]:
    """The Airflow chart's pod-template-file for these values, in the parts that decide validity.

    Mirrors chart/files/pod-template-file.kubernetes-helm-yaml (release `airflow`): logs, config
    and DAG volumes, git-sync as an init container reading the credentials Secret, the values'
    envFrom, extra volumes and mounts, and the worker service account.
    """
    workers = values["workers"]
    git_sync = values["dags"]["gitSync"]
    secret = git_sync["credentialsSecret"]
    logs_volume: dict[str, Any] = (
        {"name": "logs", "persistentVolumeClaim": {"claimName": "airflow-logs"}}
        if values["logs"]["persistence"]["enabled"]
        else {"name": "logs", "emptyDir": {}}
    )
    credentials = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for key in sorted(GIT_SECRET_KEYS)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "placeholder-name",
            "labels": {"tier": "airflow", "component": "worker", "release": "airflow"},
        },
        "spec": {
            "initContainers": [
                {
                    "name": "git-sync-init",
                    "image": "registry.k8s.io/git-sync/git-sync:v4.4.2",
                    "env": credentials,
                    "volumeMounts": [{"name": "dags", "mountPath": "/git"}],
                }
            ],
            "containers": [
                {
                    "name": "base",
                    "image": _image(values["images"]["pod_template"]),
                    "envFrom": yaml.safe_load(values.get("extraEnvFrom") or "[]"),
                    "env": [{"name": "AIRFLOW__CORE__EXECUTOR", "value": "LocalExecutor"}],
                    "volumeMounts": [
                        {"name": "logs", "mountPath": "/opt/airflow/logs"},
                        {
                            "name": "config",
                            "mountPath": "/opt/airflow/airflow.cfg",
                            "subPath": "airflow.cfg",
                            "readOnly": True,
                        },
                        {"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True},
                        *values.get("volumeMounts", []),
                        *workers.get("extraVolumeMounts", []),
                    ],
                }
            ],
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 50000, "fsGroup": 0},
            "serviceAccountName": workers["serviceAccount"]["name"],
            "volumes": [
                {"name": "dags", "emptyDir": {}},
                logs_volume,
                {"name": "config", "configMap": {"name": "airflow-config"}},
                *values.get("volumes", []),
                *workers.get("extraVolumes", []),
            ],
        },
    }


def _names(items: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [item[key] for item in items]


def test_the_airflow_worker_pod_is_valid_and_uses_the_shared_names(tmp_path: Path) -> None:
    values = load_yaml(AIRFLOW_VALUES)
    template = chart_pod_template(values)
    # What the brief first suggested: the workspace volume in the chart's template as well.
    doubled = chart_pod_template(
        {
            **values,
            "workers": {
                **values["workers"],
                "extraVolumes": worker_volumes(DEFAULTS),
                "extraVolumeMounts": worker_volume_mounts(DEFAULTS),
            },
        }
    )
    rendered = _render(AIRFLOW_RENDER, json.dumps([template, doubled]), tmp_path)

    override = rendered["override"]["spec"]
    assert override["serviceAccountName"] == values["workers"]["serviceAccount"]["name"] == DEFAULTS.service_account
    (override_container,) = override["containers"]
    assert override_container["image"] == worker_image(), "the DAG processor reads the image from the ConfigMap"
    assert override["volumes"] == worker_volumes(DEFAULTS)

    pod, doubled_pod = rendered["pods"]
    kubernetes_validate.validate(pod, kubernetes_version(), strict=True)
    worker_labels = {"tier": "airflow", "component": "worker", "release": "airflow"}
    assert worker_labels.items() <= pod["metadata"]["labels"].items(), "the NetworkPolicies select on these"
    spec = pod["spec"]
    (base,) = [container for container in spec["containers"] if container["name"] == "base"]
    assert len(set(_names(spec["volumes"]))) == len(spec["volumes"]), _names(spec["volumes"])
    mount_paths = _names(base["volumeMounts"], "mountPath")
    assert len(set(mount_paths)) == len(mount_paths), mount_paths
    assert {"name": "workspaces", "mountPath": DEFAULTS.workspace_mount_path} in base["volumeMounts"]
    assert {"secretRef": {"name": DEFAULTS.credentials_secret}} in base["envFrom"]
    assert {"configMapRef": {"name": DEFAULTS.settings_configmap}} in base["envFrom"]
    assert base["image"] == worker_image()
    assert spec["serviceAccountName"] == DEFAULTS.service_account
    assert spec["containers"][0]["name"] == "base", "Airflow merges containers by position"

    doubled_names = _names(doubled_pod["spec"]["volumes"])
    assert doubled_names.count("workspaces") == 2, "Airflow appends lists: the volume belongs in one place only"


def test_the_dagster_step_pods_use_the_shared_names(tmp_path: Path) -> None:
    launcher = load_yaml(DAGSTER_VALUES)["runLauncher"]["config"]["customRunLauncher"]["config"]
    env = dict(item.split("=", 1) for item in launcher["env_vars"])  # a run pod's, as the code server's
    rendered = _render(DAGSTER_RENDER, json.dumps(launcher), tmp_path, **env)

    assert rendered["executor"] == "k8s", "PIPELINE_EXECUTOR=k8s selects k8s_job_executor"
    config = rendered["config"]
    assert config["job_image"] == worker_image()
    assert config["job_namespace"] == DEFAULTS.namespace
    assert config["service_account_name"] == DEFAULTS.service_account
    step = rendered["step"]
    assert step["pod_spec_config"]["service_account_name"] == DEFAULTS.service_account
    # Merged with the run's context, every entry appears once: the two sides are identical.
    assert step["container_config"]["env_from"] == [
        {"config_map_ref": {"name": DEFAULTS.settings_configmap}},
        {"secret_ref": {"name": DEFAULTS.credentials_secret}},
        {"secret_ref": {"name": PEER_SECRET}},
    ]
    assert step["pod_spec_config"]["volumes"] == [
        {"name": "workspaces", "persistent_volume_claim": {"claim_name": DEFAULTS.workspace_claim}}
    ]
    assert step["container_config"]["volume_mounts"] == [
        {"name": "workspaces", "mount_path": DEFAULTS.workspace_mount_path}
    ]
