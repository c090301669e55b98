"""Dependencies point one way: the steps never import an orchestrator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ORCHESTRATORS = {"airflow", "dagster", "dagster_k8s", "dagster_aws", "kubernetes"}


def imported_roots(package: str, root: Path = REPO_ROOT) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (root / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(root)))
    return found


@pytest.mark.parametrize("package", ["shared_tasks", "orchestrator_clients", "dataset_pipeline"])
def test_package_imports_no_orchestrator(package: str) -> None:
    imports = imported_roots(package)
    offenders = {name: files for name, files in imports.items() if name in ORCHESTRATORS}
    assert offenders == {}


def test_shared_tasks_does_not_import_the_control_side() -> None:
    assert "dataset_pipeline" not in imported_roots("shared_tasks")


def test_the_layering_check_would_catch_an_orchestrator_import(tmp_path: Path) -> None:
    package = tmp_path / "leaky"
    package.mkdir()
    (package / "steps.py").write_text(
        "import os\n\ndef f():\n    from airflow.sdk import task\n    import dagster as dg\n"
    )
    found = imported_roots("leaky", root=tmp_path)
    assert set(found) & ORCHESTRATORS == {"airflow", "dagster"}
    assert found["airflow"] == {"leaky/steps.py"}


def test_the_pipeline_description_loads_no_pandas_or_dvc_until_a_step_runs() -> None:
    """The DAG processor and the code server read `PIPELINE` often: it must stay cheap to import."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from shared_tasks.project.pipeline import PIPELINE\n"
        "assert [step.load().__name__ for step in PIPELINE] == [step.name for step in PIPELINE]\n"
        "import importlib; importlib.invalidate_caches()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'dvc', 'numpy'}))\n"
    )
    before_load = (
        "import sys\nfrom shared_tasks.project.pipeline import PIPELINE\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'dvc', 'numpy'}))\n"
    )
    described = subprocess.run([sys.executable, "-c", before_load], capture_output=True, text=True, check=True)
    assert described.stdout.strip() == "[]"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "dvc" in loaded.stdout  # loading the steps is what brings DVC in
