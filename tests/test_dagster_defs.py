"""The Dagster definitions: graph, job, cluster config, and runs of the asset graph in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import PoolGranularity

from dagster_assets.assets import STEP_ASSETS, git_commit_url
from dagster_assets.checks import CHECKS
from dagster_assets.definitions import dataset_pipeline, defs
from dagster_assets.k8s import K8S_CONFIG_TAG, k8s_executor_config
from dagster_assets.resources import PipelineSettings
from dataset_pipeline.dagster_stack import instance_config
from shared_tasks.project.cluster import ClusterSettings, worker_resources
from shared_tasks.project.names import HEAD_ASSET, NAMES
from shared_tasks.project.pipeline import PIPELINE, run_pipeline
from shared_tasks.project.records import MAX_RECORDS_PER_RUN
from shared_tasks.project.settings import OrchestrationSettings, Settings
from shared_tasks.run.workspace import Workspace
from shared_tasks.storage.pointer import s3_object_url
from shared_tasks.versioning.history import history
from tests.conftest import (
    REPO_ROOT,
    TEST_REMOTE_URL,
    TEST_SEED_ROWS,
    bucket_listing,
    data_edit,
    foreign_commit,
    origin_head,
)
from tests.contract import RunContract
from tests.dagster_support import PUBLISHED_KEY, PUBLISHED_OP, materialize_pipeline, settings_resource

KUBERNETES_VERSION = "1.33.0"
SECRET_VALUE = "never-in-a-spec-4f1b"


def dagster_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    dagster = Path(sys.executable).parent / "dagster"
    return subprocess.run(
        [str(dagster), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: entry.value for key, entry in metadata.items()}


# loading -------------------------------------------------------------------------------------


def test_definitions_validate_with_the_dagster_cli(settings_env: dict[str, str], tmp_path: Path) -> None:
    env = {**settings_env, "DAGSTER_HOME": str(tmp_path)}
    completed = dagster_cli("definitions", "validate", "-m", "dagster_assets.definitions", env=env, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert "Validation successful for code location dagster_assets.definitions" in completed.stdout + completed.stderr


@pytest.mark.slow  # a dagster process of its own
def test_dagster_finds_the_definitions_in_the_project_root_without_flags(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    """`[tool.dagster]` in pyproject.toml: `dagster dev` in the project root needs no -m."""
    env = {**settings_env, "DAGSTER_HOME": str(tmp_path)}
    completed = dagster_cli("definitions", "validate", env=env, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    assert f"Validation successful for code location {NAMES.dagster_location}" in completed.stdout + completed.stderr


@pytest.mark.slow  # a dagster process of its own
def test_schedule_none_leaves_the_job_unscheduled(settings_env: dict[str, str], tmp_path: Path) -> None:
    env = {**settings_env, "DAGSTER_HOME": str(tmp_path), "PIPELINE_SCHEDULE": "none"}
    probe = "from dagster_assets.definitions import defs; print(sorted(s.name for s in defs.schedules))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[-2] == str([NAMES.observe_schedule])


def test_the_asset_graph_mirrors_the_shared_pipeline() -> None:
    graph = defs.resolve_asset_graph()
    for step in PIPELINE:
        parents = {key.to_user_string() for key in graph.get(dg.AssetKey(STEP_ASSETS[step.name])).parent_keys}
        upstream = {STEP_ASSETS[name] for name in step.upstream} or {dg.AssetKey(NAMES.head_asset_key).to_user_string()}
        assert parents == upstream, step.name
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {"schema_valid", "rows_grew_by_records_added", "object_on_s3", "head_is_valid"}


def test_string_selections_parse_with_the_antlr_runtime_dagster_needs() -> None:
    graph = defs.resolve_asset_graph()

    def keys(text: str) -> set[str]:
        return {key.to_user_string() for key in dg.AssetSelection.from_string(text).resolve(graph)}

    assert keys("*") == set(STEP_ASSETS.values())  # observable source assets are not materialized
    assert keys("1+key:published_dataset") == {"changed_dataset", "published_dataset"}
    assert keys("key:pulled_dataset+ and kind:s3") == {"published_dataset"}
    assert keys("key:pulled_*") == {"pulled_dataset"}


def test_the_job_is_retried_scheduled_stopped_and_runs_one_at_a_time(tmp_path: Path) -> None:
    orchestration = OrchestrationSettings()
    job = defs.resolve_job_def(NAMES.dagster_job)
    assert job.executor_def.name == "in_process"
    for name in STEP_ASSETS.values():
        assert defs.resolve_assets_def(name).op.pool == NAMES.publish_pool
        policy = defs.resolve_assets_def(name).op.retry_policy
        assert policy is not None
        assert (policy.max_retries, policy.delay, policy.backoff) == (
            orchestration.step_retries,
            orchestration.retry_delay_seconds,
            dg.Backoff.EXPONENTIAL,
        )
    schedule = defs.resolve_schedule_def(NAMES.schedule)
    assert schedule.cron_schedule == orchestration.schedule
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance_config(tmp_path)))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert (pools.pool_granularity, pools.default_pool_limit) == (PoolGranularity.RUN, 1)
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]


def test_git_commit_url_only_for_web_origins() -> None:
    assert git_commit_url("https://git.example/team/data.git", "abc") == "https://git.example/team/data/commit/abc"
    assert git_commit_url("file:///srv/origin.git", "abc") is None


# cluster -------------------------------------------------------------------------------------


def test_pipeline_executor_k8s_gives_each_step_a_pod(settings_env: dict[str, str]) -> None:
    code = (
        "from dagster_assets.definitions import defs\n"
        f"print(defs.resolve_job_def({NAMES.dagster_job!r}).executor_def.name)"
    )
    env = {**settings_env, "PIPELINE_EXECUTOR": "k8s"}
    completed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split()[-1] == "k8s"


def test_the_k8s_executor_config_validates_against_the_job() -> None:
    from dagster_k8s import k8s_job_executor

    cluster = ClusterSettings(image="registry.example/worker:1.2.3", namespace="data")
    k8s_defs = dg.Definitions(
        assets=defs.assets,
        asset_checks=CHECKS,
        jobs=[dataset_pipeline],
        resources={"pipeline_settings": PipelineSettings()},
        executor=k8s_job_executor,
    )
    job = k8s_defs.resolve_job_def(NAMES.dagster_job)
    assert job.executor_def.name == "k8s"
    config = k8s_executor_config(cluster)
    validated = dg.validate_run_config(job, {"execution": {"config": config}})
    assert validated["execution"]["k8s"]["job_image"] == "registry.example/worker:1.2.3"
    assert validated["execution"]["k8s"]["job_namespace"] == "data"
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, {"execution": {"config": {**config, "volume_mounts": [{"mount_path": "/x"}]}}})


def test_a_step_job_validates_against_kubernetes_and_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes_validate
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
    from kubernetes.client import ApiClient

    monkeypatch.setenv("GIT_SYNC_PASSWORD", SECRET_VALUE)
    cluster = ClusterSettings(image="registry.example/worker:1.2.3")
    config = k8s_executor_config(cluster)
    job_config = DagsterK8sJobConfig(
        job_image=config["job_image"],
        dagster_home="/opt/dagster/dagster_home",
        image_pull_policy=config["image_pull_policy"],
        service_account_name=config["service_account_name"],
        env_config_maps=config["env_config_maps"],
        env_secrets=config["env_secrets"],
        volume_mounts=config["volume_mounts"],
        volumes=config["volumes"],
        resources=config["resources"],
    )
    op_tags = defs.resolve_assets_def(PUBLISHED_KEY).op.tags
    assert K8S_CONFIG_TAG in op_tags  # on the op itself: job-level tags do not reach step pods
    job = construct_dagster_k8s_job(
        job_config,
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-0123456789abcdef",
        user_defined_k8s_config=get_user_defined_k8s_config(op_tags),
        component="step_worker",
    )
    with ApiClient() as client:
        manifest = client.sanitize_for_serialization(job)
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)

    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/worker:1.2.3"
    assert {"name": "workspaces", "mountPath": "/shared"} in container["volumeMounts"]
    assert {"name": "workspaces", "persistentVolumeClaim": {"claimName": cluster.workspace_claim}} in pod["volumes"]
    assert {"secretRef": {"name": "git-credentials"}} in container["envFrom"]
    assert {"configMapRef": {"name": cluster.settings_configmap}} in container["envFrom"]
    assert pod["serviceAccountName"] == cluster.service_account
    assert container["resources"] == worker_resources(cluster)
    assert SECRET_VALUE not in json.dumps(manifest)


# runs ----------------------------------------------------------------------------------------


@pytest.mark.slow
class TestDagsterRun(RunContract):
    orchestrator: ClassVar[str] = "dagster"

    def publish(self, settings: Settings, records: int) -> dict[str, Any]:
        result = materialize_pipeline(settings, records)
        assert result.success
        (materialization,) = result.asset_materializations_for_node(PUBLISHED_OP)
        return values(materialization.metadata)

    @pytest.mark.slow
    def test_metadata_data_version_and_checks(self, settings: Settings, origin: Path, s3: Any) -> None:
        result = materialize_pipeline(settings, records=3)
        assert result.success
        (materialization,) = result.asset_materializations_for_node(PUBLISHED_OP)
        metadata = values(materialization.metadata)
        head = origin_head(origin)
        assert metadata["commit"] == head
        assert (metadata["rows"], metadata["rows_added"]) == (TEST_SEED_ROWS + 3, 3)
        assert metadata["s3_url"] == s3_object_url(TEST_REMOTE_URL, metadata["md5"])
        assert materialization.tags is not None
        assert materialization.tags["dagster/data_version"] == metadata["md5"]
        key = metadata["s3_url"].removeprefix("s3://pipeline-test/")
        assert key in bucket_listing(s3)
        evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert evaluations == {"schema_valid": True, "rows_grew_by_records_added": True, "object_on_s3": True}
        newest = history(settings)[0]
        assert (newest.orchestrator, newest.run_id) == ("dagster", result.run_id)


@pytest.mark.slow
def test_records_out_of_range_fail_the_run_before_any_step_works(settings: Settings, origin: Path) -> None:
    before = origin_head(origin)
    result = materialize_pipeline(settings, records=MAX_RECORDS_PER_RUN + 1)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "pulled_dataset"  # the first step, before it pulls anything
    assert "less than or equal to 100000" in str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not Workspace.for_run(settings.work_root, result.run_id).repo.exists()
    assert origin_head(origin) == before


@pytest.mark.slow
def test_the_checks_pass_on_a_partitioned_origin(partitioned: Settings) -> None:
    """The checks read the data where the steps wrote it: a directory of parts, its objects on S3."""
    result = materialize_pipeline(partitioned, records=2)
    assert result.success
    evaluations = {e.check_name: (e.passed, values(e.metadata)) for e in result.get_asset_check_evaluations()}
    assert {name: passed for name, (passed, _) in evaluations.items()} == {
        "schema_valid": True,
        "rows_grew_by_records_added": True,
        "object_on_s3": True,
    }, evaluations
    assert evaluations["schema_valid"][1]["rows"] == TEST_SEED_ROWS + 2
    assert evaluations["object_on_s3"][1]["missing_objects"] == 0


@pytest.mark.slow
def test_a_version_made_outside_dagster_is_observed(settings: Settings) -> None:
    resources = {"pipeline_settings": settings_resource(settings)}
    observe = defs.resolve_job_def(NAMES.observe_job)

    def observed_version(instance: dg.DagsterInstance) -> str:
        result = observe.execute_in_process(instance=instance, resources=resources)
        (observation,) = result.asset_observations_for_node(NAMES.op_name(HEAD_ASSET))
        assert observation.tags is not None
        return observation.tags["dagster/data_version"]

    with dg.DagsterInstance.ephemeral() as instance:
        before = observed_version(instance)
        made = run_pipeline(settings, "outside-dagster-1", orchestrator="airflow", records=1)
        after = observed_version(instance)
    assert before != after == made.md5


@pytest.mark.slow
def test_the_observed_head_carries_a_failing_check_when_it_is_invalid(settings: Settings, tmp_path: Path) -> None:
    resources = {"pipeline_settings": settings_resource(settings)}
    observe = defs.resolve_job_def(NAMES.observe_job)
    with dg.DagsterInstance.ephemeral() as instance:
        valid = observe.execute_in_process(instance=instance, resources=resources)
        bad = foreign_commit(settings, tmp_path, data_edit(lambda text: text.replace(",Male,", ",Mal,", 1)))
        invalid = observe.execute_in_process(instance=instance, resources=resources, raise_on_error=False)
    (passed,) = valid.get_asset_check_evaluations()
    (failed,) = invalid.get_asset_check_evaluations()
    assert (passed.check_name, passed.passed, failed.passed) == ("head_is_valid", True, False)
    assert f"the version at {bad[:12]}" in str(failed.metadata["error"].value)
    assert "value 'Mal': not one of" in str(failed.metadata["error"].value)


@pytest.mark.slow
def test_dagster_cli_materializes_a_string_selection(settings: Settings, tmp_path: Path) -> None:
    """`dagster asset materialize --select` parses with ANTLR 4.13 (DVC's chain alone pins 4.9.3)."""
    env = {**settings_env_of(settings), "DAGSTER_HOME": str(tmp_path)}
    config = json.dumps({"ops": {"changed_dataset": {"config": {"records": 2}}}})
    completed = dagster_cli(
        "asset", "materialize", "-m", "dagster_assets.definitions", "--select", "*",
        "--config-json", config, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    newest = history(settings)[0]
    assert (newest.orchestrator, newest.rows_added) == ("dagster", 2)


def settings_env_of(settings: Settings) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "PIPELINE_GIT_URL": settings.git_url,
        "PIPELINE_WORK_ROOT": str(settings.work_root),
        "PIPELINE_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
    }
