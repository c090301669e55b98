"""Our own fixed cost: what a step's fresh process imports before (and while) it works.

Every pod on the cluster imports its step's function anew. Pull and push need neither pandas nor
polars (nor numpy) on a clean run: a version known valid is not read, a foreign one is validated
by polars on that path alone. Only modify reads records into a frame.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared_tasks.project.pipeline import STEPS
from shared_tasks.project.settings import Settings
from shared_tasks.run.steps import modify_data
from tests.conftest import REPO_ROOT

HEAVY = ("pandas", "polars", "numpy", "pyarrow", "dvc.repo")

_IMPORT = """
import importlib, json, sys
*targets, heavy = sys.argv[1:]
for target in targets:
    module, _, name = target.partition(":")
    imported = importlib.import_module(module)
    assert not name or callable(getattr(imported, name))
print(json.dumps([m for m in json.loads(heavy) if m in sys.modules]))
"""

_RUN_STEP = """
import json, sys
from shared_tasks.project.pipeline import STEPS, StepInputs
from shared_tasks.project.settings import load_settings
STEPS[sys.argv[1]].run(load_settings(), sys.argv[2], StepInputs())
print(json.dumps([m for m in json.loads(sys.argv[3]) if m in sys.modules]))
"""

_LOAD = """
import json, sys
from shared_tasks.project.pipeline import STEPS
STEPS[sys.argv[1]].load()
print(json.dumps([m for m in json.loads(sys.argv[2]) if m in sys.modules]))
"""


def fresh(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """The heavy modules a fresh interpreter holds after running `code`."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args, json.dumps(HEAVY)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("step", ["pull_data", "push_data"])
def test_importing_pull_or_push_imports_no_dataframe_library_nor_dvc_repo(step: str) -> None:
    assert fresh(_IMPORT, STEPS[step].function) == []


@pytest.mark.parametrize("step", list(STEPS))
def test_loading_a_step_imports_what_it_uses_on_every_run_and_no_dataframe_library_it_does_not(step: str) -> None:
    """Its timing's load is then all of our imports, and its work the work alone."""
    loaded = fresh(_LOAD, step)
    assert {name for name in STEPS[step].uses if name in HEAVY} <= set(loaded)
    if step != "modify_data":
        assert not {"pandas", "polars", "numpy"} & set(loaded), loaded


def test_the_pipeline_description_imports_no_heavy_library() -> None:
    assert fresh(_IMPORT, "shared_tasks.project.pipeline") == []


def test_modify_imports_in_a_fresh_process_with_what_it_imports_when_it_runs() -> None:
    """Only modify may import pandas: it reads the change into a frame (and may generate it)."""
    assert "pandas" in fresh(_IMPORT, STEPS["modify_data"].function, "shared_tasks.run.generate")


@pytest.mark.slow
def test_pull_and_push_run_in_fresh_processes_without_pandas(settings: Settings, settings_env: dict[str, str]) -> None:
    """A real run, each of pull and push in a process of its own, on a real origin and S3 API."""
    # The seed, a version made elsewhere, is validated: by polars (and numpy), without pandas.
    assert fresh(_RUN_STEP, "pull_data", "imports-a", env=settings_env) == ["polars", "numpy", "dvc.repo"]
    modify_data(settings, "imports-a", records=2)
    assert fresh(_RUN_STEP, "push_data", "imports-a", env=settings_env) == ["dvc.repo"]
    # The version the run made is known valid: pulling it reads no record.
    assert fresh(_RUN_STEP, "pull_data", "imports-b", env=settings_env) == ["dvc.repo"]
