"""The cutover file: one line per step; anything else is an error naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_tasks.cutover import Cutover, CutoverError, Runner, read_cutover, write_cutover
from shared_tasks.pipeline import PIPELINE
from tests.conftest import REPO_ROOT


def test_the_committed_file_runs_every_step_in_airflow() -> None:
    cutover = read_cutover(REPO_ROOT / "airflow_dags" / "cutover.yaml")
    assert [cutover.runner(step.name) for step in PIPELINE] == [Runner.AIRFLOW] * len(PIPELINE)


def test_a_missing_or_empty_file_means_every_step_runs_in_airflow(tmp_path: Path) -> None:
    assert read_cutover(tmp_path / "absent.yaml").in_dagster() == []
    (tmp_path / "empty.yaml").write_text("# nothing cut over\n")
    assert read_cutover(tmp_path / "empty.yaml").in_dagster() == []


def test_a_written_file_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    wanted = Cutover({"modify_data": Runner.DAGSTER, "push_data": Runner.DAGSTER})
    write_cutover(path, wanted)
    assert read_cutover(path).in_dagster() == ["modify_data", "push_data"]
    assert path.read_text().startswith("#")  # says what it is to whoever opens it


def bad_files() -> dict[str, tuple[str, str]]:
    """name -> (file text, what the error must say)."""
    cases = {
        "unknown step": ("pull_data: airflow\nmodfy_data: dagster\n", "line 2: unknown step 'modfy_data'"),
        "named twice": ("push_data: dagster\npush_data: airflow\n", "line 2: step 'push_data' is named twice"),
        "a list": ("- pull_data\n", "line 1: expected one"),
        "a list value": ("pull_data: [airflow]\n", "line 1: step 'pull_data' set to 'a list or mapping'"),
        "not YAML": ("pull_data: 'airflow\n", "not YAML"),
        "a number": ("modify_data: 1\n", "line 1: step 'modify_data' set to '1'"),
    }
    for bad in ("Dagster", "'dagster '", "prefect", "", "yes", "~"):
        cases[f"orchestrator {bad!r}"] = (f"pull_data: airflow\nmodify_data: {bad}\n", "line 2: step 'modify_data'")
    return cases


@pytest.mark.parametrize("case", sorted(bad_files()))
def test_a_bad_file_is_an_error_naming_its_line(tmp_path: Path, case: str) -> None:
    text, expected = bad_files()[case]
    path = tmp_path / "cutover.yaml"
    path.write_text(text)
    with pytest.raises(CutoverError) as caught:
        read_cutover(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)
