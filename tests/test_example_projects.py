"""The example projects under examples/: declared as a team would, run on the product's steps.

The employee-attrition example versions the very dataset the built-in pipeline does (same path,
schema and pointer), so it runs on an origin the built-in pipeline seeded, and the two read one
history.
"""

from __future__ import annotations

import pytest

from shared_tasks.project.declared import load_project
from shared_tasks.project.pipeline import pipeline_steps, run_pipeline
from shared_tasks.validation.schema import COLUMN_NAMES, ID_COLUMN
from shared_tasks.versioning.history import history, verify
from tests.conftest import REPO_ROOT, TEST_SEED_ROWS, LocalVersioning, git

EMPLOYEE_PROJECT = REPO_ROOT / "examples" / "employee_attrition" / "dataset-pipeline.toml"


def test_the_employee_example_appends_generated_employees_to_the_builtin_pipelines_dataset(
    local_versioning: LocalVersioning,
) -> None:
    builtin = local_versioning.settings
    settings = builtin.model_copy(update={"project_file": EMPLOYEE_PROJECT}).for_pipeline(None)
    assert (settings.dataset_path, settings.pointer_path) == (builtin.dataset_path, builtin.pointer_path)
    assert [step.name for step in pipeline_steps(settings)] == ["pull_data", "generate_employees", "push_data"]
    first = run_pipeline(settings, "manual__example-1", params={"records": 4})
    again = run_pipeline(settings, "manual__example-1", params={"records": 4})
    assert again.commit == first.commit and again.already_published, "the same run id publishes once"
    assert (first.rows, first.rows_added) == (TEST_SEED_ROWS + 4, 4)
    assert verify(settings, first.commit, validate=True).ok and verify(builtin, first.commit, validate=True).ok
    assert [v.commit for v in history(builtin)] == [v.commit for v in history(settings)], "one history"
    assert git(local_versioning.origin, "rev-parse", "main") == first.commit


def test_the_employee_examples_output_is_the_schemas_fields_but_the_generated_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EMPLOYEE_PROJECT.parent))
    from employee_steps import generate_employees  # type: ignore[import-not-found]

    from shared_tasks.run.team_steps import StepContext

    one = generate_employees(StepContext("run-a", "generate_employees", {"records": 5}))
    same = generate_employees(StepContext("run-a", "generate_employees", {"records": 5}))
    other = generate_employees(StepContext("run-b", "generate_employees", {"records": 5}))
    assert list(one.columns) == [name for name in COLUMN_NAMES if name != ID_COLUMN]
    assert one.equals(same) and not one.equals(other)


def test_every_example_project_loads() -> None:
    projects = sorted((REPO_ROOT / "examples").glob("*/dataset-pipeline.toml"))
    assert projects, "no example project"
    for project in projects:
        for pipeline in load_project(project).pipelines:
            assert pipeline.schema_path.is_file(), f"{project}: schema {pipeline.schema_file} is missing"
