"""The Airflow DAG: its shape, a real `dag.test()` run, Airflow's retries, and its worker pods."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from shared_tasks.project.cluster import ClusterSettings
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE
from shared_tasks.project.settings import Settings
from shared_tasks.versioning.history import history
from tests.airflow_support import airflow_env, run_dag_test
from tests.conftest import REPO_ROOT, TEST_SEED_ROWS, data_edit, foreign_commit, git, origin_head
from tests.contract import RunContract

KUBERNETES_VERSION = "1.33.0"
SECRET_VALUE = "s3cr3t-token-never-in-a-spec"


def load_dag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Any:
    """A fresh import of the DAG file under `env`; other tests keep the module they had."""
    import airflow_dags

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for name in [name for name in sys.modules if name.startswith("airflow_dags.")]:  # parse-time settings
        monkeypatch.delitem(sys.modules, name)
        if hasattr(airflow_dags, name.removeprefix("airflow_dags.")):
            monkeypatch.delattr(airflow_dags, name.removeprefix("airflow_dags."))
    module = importlib.import_module("airflow_dags.dataset_pipeline")
    return module.dag


# integrity --------------------------------------------------------------------------------


def test_the_dag_folder_imports_with_no_errors_and_no_database(tmp_path: Path) -> None:
    """DagBag parse in a fresh process whose database does not exist: parsing needs none of it."""
    home = tmp_path / "airflow-home"
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO_ROOT / 'airflow_dags')!r})\n"
        "print(sorted(bag.dag_ids), bag.import_errors)\n"
    )
    env = {**airflow_env(home), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "sqlite:////nonexistent/dir/airflow.db"
    completed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == f"{sorted([NAMES.dag_id, NAMES.verify_dag_id])} {{}}"


def test_tasks_follow_the_shared_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dag = load_dag(monkeypatch, tmp_path)
    assert dag.dag_id == NAMES.dag_id
    assert [task.task_id for task in dag.topological_sort()] == [step.name for step in PIPELINE]
    for step in PIPELINE:
        assert dag.get_task(step.name).upstream_task_ids == set(step.upstream)
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_params_retries_schedule_and_asset_outlet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dag = load_dag(
        monkeypatch,
        tmp_path,
        PIPELINE_STEP_RETRIES="4",
        PIPELINE_RETRY_DELAY_SECONDS="7",
        PIPELINE_RETRY_DELAY_MAX_SECONDS="90",
        PIPELINE_SCHEDULE="0 3 * * *",
        PIPELINE_DVC_REMOTE_URL="s3://bucket/datasets",
    )
    records = dag.params.get_param("records")
    assert records.value == 1
    assert records.schema["type"] == "integer" and records.schema["minimum"] == 1
    for task in dag.tasks:
        assert task.retries == 4
        assert task.retry_delay.total_seconds() == 7
        assert task.retry_exponential_backoff > 1
        assert task.max_retry_delay.total_seconds() == 90
    assert dag.timetable.expression == "0 3 * * *"
    assert [outlet.uri for outlet in dag.get_task("push_data").outlets] == [
        "s3://bucket/datasets/data/employee_attrition.csv"
    ]
    assert not dag.get_task("pull_data").outlets


def test_a_records_param_below_one_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(load_dag(monkeypatch, tmp_path).params)
    params["records"] = 3
    with pytest.raises(ParamValidationError, match="minimum"):
        params["records"] = 0


def test_schedule_none_means_manual_runs_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dag = load_dag(monkeypatch, tmp_path, PIPELINE_SCHEDULE="none")
    assert type(dag.timetable).__name__ == "NullTimetable"


# a real run -------------------------------------------------------------------------------


@pytest.mark.slow
class TestAirflowRun(RunContract):
    """`dag.test()` of the real DAG against the test's S3 API and Git origin."""

    orchestrator: ClassVar[str] = "airflow"

    @pytest.fixture(autouse=True)
    def _airflow(self, migrated_airflow_home: Path, settings_env: dict[str, str], tmp_path: Path) -> None:
        self.template_home = migrated_airflow_home
        self.env = settings_env
        self.work = tmp_path

    def publish(self, settings: Settings, records: int) -> dict[str, Any]:
        run = run_dag_test(self.template_home, self.work, self.env, records)
        assert run.state == "success", run.output[-4000:]
        assert run.run_id.startswith("manual__")
        found = [version for version in history(settings) if version.run_id == run.run_id]
        assert len(found) == 1
        return found[0].to_dict()


REJECT_ONCE_HOOK = """#!/bin/sh
# Refuses the first push it sees: an honest fault of the origin, not a mock.
marker="$(dirname "$0")/rejected-once"
if [ ! -e "$marker" ]; then
    touch "$marker"
    echo "origin under maintenance, try again" >&2
    exit 1
fi
exit 0
"""


@pytest.mark.slow
def test_push_fails_once_and_airflows_retry_recovers(
    migrated_airflow_home: Path, settings: Settings, settings_env: dict[str, str], origin: Path, tmp_path: Path
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(REJECT_ONCE_HOOK)
    hook.chmod(0o755)
    before = origin_head(origin)

    run = run_dag_test(migrated_airflow_home, tmp_path, settings_env, records=2, PIPELINE_PUSH_ATTEMPTS="1")

    assert (origin / "hooks" / "rejected-once").exists()  # the fault really happened
    assert run.state == "success", run.output[-4000:]
    assert run.tries == {"pull_data": 1, "modify_data": 1, "push_data": 2}
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    newest = history(settings)[0]
    assert (newest.run_id, newest.orchestrator) == (run.run_id, "airflow")
    assert (newest.rows, newest.rows_added) == (TEST_SEED_ROWS + 2, 2)


@pytest.mark.slow
def test_a_step_refused_for_bad_data_fails_at_once_without_retries(
    migrated_airflow_home: Path, settings: Settings, settings_env: dict[str, str], origin: Path, tmp_path: Path
) -> None:
    foreign_commit(settings, tmp_path, data_edit(lambda text: text.replace("Monthly Income", "Salary", 1)))
    before = origin_head(origin)
    run = run_dag_test(migrated_airflow_home, tmp_path, settings_env, records=1)
    assert run.state == "failed"
    assert run.tries["pull_data"] == 1, run.tries  # not the configured retries: bad data does not heal
    assert "missing column" in run.output
    assert origin_head(origin) == before


# worker pods ------------------------------------------------------------------------------


def executor_pod(dag: Any, task_id: str) -> Any:
    """The pod the KubernetesExecutor would create: Airflow's pod template + the task's pod_override."""
    from airflow.providers.cncf.kubernetes import kubernetes_executor_templates
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    template = Path(kubernetes_executor_templates.__file__).parent / "basic_template.yaml"
    return PodGenerator.construct_pod(
        dag_id=dag.dag_id,
        task_id=task_id,
        pod_id=f"dataset-pipeline-{task_id.replace('_', '-')}",
        try_number=1,
        kube_image="apache/airflow:3.3.2",
        date=None,
        run_id="manual__2026-01-01T00:00:00+00:00",
        args=["airflow", "tasks", "run", dag.dag_id, task_id],
        pod_override_object=PodGenerator.from_obj(dag.get_task(task_id).executor_config),
        base_worker_pod=PodGenerator.deserialize_model_file(str(template)),
        namespace="dataset-pipeline",
        scheduler_job_id="1",
    )


@pytest.mark.parametrize("task_id", [step.name for step in PIPELINE])
def test_worker_pods_are_valid_and_carry_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, task_id: str
) -> None:
    import kubernetes_validate
    from kubernetes.client import ApiClient

    monkeypatch.setenv("GIT_SYNC_PASSWORD", SECRET_VALUE)  # in the scheduler's env: must not leak into pods
    dag = load_dag(monkeypatch, tmp_path, PIPELINE_K8S_IMAGE="registry.example/worker:1.2.3")
    cluster = ClusterSettings()
    manifest = ApiClient().sanitize_for_serialization(executor_pod(dag, task_id))

    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    spec = manifest["spec"]
    (base,) = [container for container in spec["containers"] if container["name"] == "base"]
    assert base["image"] == "registry.example/worker:1.2.3"
    assert {"name": "workspaces", "mountPath": cluster.workspace_mount_path} in base["volumeMounts"]
    assert {"secretRef": {"name": cluster.credentials_secret}} in base["envFrom"]
    assert {"configMapRef": {"name": cluster.settings_configmap}} in base["envFrom"]
    assert base["resources"]["limits"] == {"cpu": cluster.cpu_limit, "memory": cluster.memory_limit}
    assert spec["serviceAccountName"] == cluster.service_account
    claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [cluster.workspace_claim]
    assert SECRET_VALUE not in str(manifest)
