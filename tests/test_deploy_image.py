"""The worker image's install step resolves: the Dockerfile's `uv sync` into a fresh environment.

No Docker here: the test copies exactly the build context `.dockerignore` lets through, runs the
Dockerfile's own `uv sync` command line in it offline (from uv's cache, filled by `make install`),
then imports the DAG and the Dagster definitions from that environment with the settings
ConfigMap as their environment, as the pods do.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_support import DOCKERFILE, REPO_ROOT, load_documents

UV = REPO_ROOT / ".tools" / "bin" / "uv"

IMPORT_CHECK = """
import importlib.util
from airflow_dags.dataset_pipeline import dag
from dagster_assets.definitions import defs
from shared_tasks.project.names import NAMES
assert [task.task_id for task in dag.topological_sort()] == ["pull_data", "modify_data", "push_data"]
assert defs.resolve_job_def(NAMES.dagster_job).executor_def.name == "k8s"
assert "pod_override" in dag.get_task("pull_data").executor_config
for dev_only in ("pytest", "moto", "playwright", "ruff"):
    assert importlib.util.find_spec(dev_only) is None, dev_only + " is not for the image"
print("IMAGE-IMPORTS-OK")
"""

# What the charts run from this image besides our modules: Airflow's metadata DB driver and auth
# manager, Dagster's instance storage on PostgreSQL.
CLUSTER_RUNTIME_CHECK = """
import importlib.util
missing = [name for name in ("psycopg2", "airflow.providers.fab", "dagster_postgres")
           if importlib.util.find_spec(name.split(".")[0]) is None or importlib.util.find_spec(name) is None]
assert not missing, missing
"""


def dockerfile_uv_sync() -> list[str]:
    """The last `uv sync` of the Dockerfile: the one that installs the project."""
    commands = re.findall(r"^RUN (uv sync [^\n]+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert commands, "the Dockerfile installs with `uv sync`"
    args = shlex.split(commands[-1])
    assert "--frozen" in args and "--no-dev" in args
    return args[2:]


def build_context(destination: Path) -> Path:
    """Copy what `.dockerignore` lets into the build context ("*" then "!path" lines)."""
    patterns = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = [line[1:].rstrip("/") for line in patterns if line.startswith("!")]
    destination.mkdir()
    for name in allowed:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def image_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not UV.exists():
        pytest.fail(f"{UV} not found: run `make install`")
    context = build_context(tmp_path_factory.mktemp("image") / "context")
    venv = context.parent / "venv"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(context.parent)),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
    }
    completed = subprocess.run(
        [str(UV), "sync", *dockerfile_uv_sync(), "--python", sys.executable],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return venv


def _pod_environment(home: Path) -> dict[str, str]:
    settings = next(
        doc
        for doc in load_documents(REPO_ROOT / "deploy" / "k8s" / "settings-configmap.yaml")
        if doc["kind"] == "ConfigMap"
    )
    home.mkdir(exist_ok=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "DAGSTER_HOME": str(home),
        "PIPELINE_EXECUTOR": "k8s",
        **settings["data"],
    }


def run_in_image(image_environment: Path, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Python code in the image's environment, with a pod's environment."""
    return subprocess.run(
        [str(image_environment / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=_pod_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_the_image_environment_imports_the_dag_and_the_definitions(image_environment: Path, tmp_path: Path) -> None:
    completed = run_in_image(image_environment, IMPORT_CHECK, tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "IMAGE-IMPORTS-OK" in completed.stdout
    for command in ("airflow", "dagster", "dvc", "dataset-pipeline"):
        assert (image_environment / "bin" / command).exists(), f"{command} is what the pods run"


@pytest.mark.slow
def test_the_image_environment_has_the_cluster_runtime(image_environment: Path, tmp_path: Path) -> None:
    completed = run_in_image(image_environment, CLUSTER_RUNTIME_CHECK, tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
