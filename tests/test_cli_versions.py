"""The CLI's commands about versions: validate REV, restore REV, cutover, and inputs checked before a launch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared_tasks.project.cutover import read_cutover
from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from tests.conftest import cli, data_edit, foreign_commit

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow


@pytest.mark.slow
def test_validate_a_revision_from_the_remote_and_restore_the_last_good_one(
    settings: Settings, settings_env: dict[str, str], tmp_path: Path
) -> None:
    good = run_pipeline(settings, "good")
    bad = foreign_commit(settings, tmp_path, data_edit(lambda text: text.replace(",Male,", ",Mal,", 1)))

    checked = cli("validate", good.commit, "--json", env=settings_env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["actual_rows"] == good.rows

    refused = cli("validate", "main", env=settings_env)
    assert refused.returncode == 1
    assert f"the version at {bad[:12]} (not made by a pipeline run, by A. Person" in refused.stderr
    assert "column 'Gender', value 'Mal': not one of" in refused.stderr and "Traceback" not in refused.stderr

    restored = cli("restore", good.commit[:12], "--json", env=settings_env)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["md5"] == good.md5
    assert cli("validate", "main", env=settings_env).returncode == 0


def test_cutover_prints_and_sets_the_runner_of_a_step(tmp_path: Path, settings_env: dict[str, str]) -> None:
    env = {**settings_env, "PIPELINE_CUTOVER_FILE": str(tmp_path / "cutover.yaml")}
    shown = cli("cutover", env=env)
    assert shown.returncode == 0 and "modify_data" in shown.stdout and "dagster" not in shown.stdout
    moved = cli("cutover", "modify_data", "dagster", env=env)
    assert moved.returncode == 0, moved.stderr
    assert read_cutover(tmp_path / "cutover.yaml").in_dagster() == ["modify_data"]
    back = cli("cutover", "modify_data", "airflow", env=env)
    assert back.returncode == 0 and read_cutover(tmp_path / "cutover.yaml").in_dagster() == []
    for bad in (["modfy_data", "dagster"], ["modify_data", "prefect"], ["modify_data"]):
        refused = cli("cutover", *bad, env=env)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, bad


@pytest.mark.parametrize("via", ["airflow", "dagster"])
@pytest.mark.parametrize("run_id", ["x" * 300, "x" * 250, "x" * 249, " lead", "two\nlines", "a b", "../../x"])
def test_a_bad_run_id_is_refused_before_any_orchestrator_is_asked(
    settings_env: dict[str, str], via: str, run_id: str
) -> None:
    refused = cli("run", "--via", via, "--run-id", run_id, env=settings_env, timeout=60)
    assert refused.returncode == 1
    assert "run_id" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 3
    if len(run_id) > 248:  # Airflow's log folder name: the limit, and why, named
        assert f"run_id is {len(run_id)} characters long; at most 248" in " ".join(refused.stderr.split())


def test_records_out_of_range_are_refused_before_any_launch(settings_env: dict[str, str]) -> None:
    refused = cli("run", "--via", "dagster", "--records", "100001", env=settings_env, timeout=60)
    assert refused.returncode == 2 and "less than or equal to 100000" in refused.stderr
