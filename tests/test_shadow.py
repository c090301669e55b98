"""A team's step run again in the shadow of a run (shared_tasks.run.shadow), and the outputs compared.

The team's project and origin are tests/team_project.py's, with the local backends. "Airflow's"
run is the run's own steps; the shadow is what Dagster runs beside it. Each test shows the run's
own workspace and the origin untouched by the shadow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared_tasks.run.shadow import run_shadow, shadow_workspace, step_code_digest
from shared_tasks.run.steps import pull_data, run_declared_step
from shared_tasks.run.workspace import Workspace, WorkspaceError
from tests.conftest import git
from tests.team_repo import TeamRepo

PARAMS = {"readings": 6, "note": "ok"}


def files_of(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.parts and path.name != ".lock"
    }


def airflows_run(team: TeamRepo, run_id: str) -> dict[str, str]:
    """The run's steps up to clean, as Airflow runs them; returns its workspace's files."""
    pull_data(team.settings, run_id)
    run_declared_step(team.settings, run_id, "collect", PARAMS)
    run_declared_step(team.settings, run_id, "clean", PARAMS)
    return files_of(Workspace.for_run(team.settings.work_root, run_id).root)


def rewrite_steps(team: TeamRepo, old: str, new: str) -> None:
    steps = team.project_dir / team.package / "steps.py"
    text = steps.read_text(encoding="utf-8")
    assert old in text
    steps.write_text(text.replace(old, new), encoding="utf-8")


def test_a_shadow_on_the_same_inputs_matches_and_leaves_the_run_and_the_origin_alone(team: TeamRepo) -> None:
    run_id = "manual__shadowed"
    before = airflows_run(team, run_id)
    head = git(team.origin, "rev-parse", "main")
    pipeline = team.settings.declared()
    for step in ("collect", "clean"):  # collect draws its rows with the run's seed: the same in the shadow
        outcome = run_shadow(team.settings, pipeline, step, run_id)
        assert outcome.matched and outcome.error is None, outcome.summary
        assert outcome.comparison is not None and outcome.comparison.expected_md5 == outcome.comparison.actual_md5
        assert outcome.summary.startswith("equal: 6 rows")
        assert outcome.code_digest == step_code_digest(pipeline, step)
        assert outcome.seconds is not None and outcome.metadata()["dagster_seconds"] == outcome.seconds > 0
        shadow = shadow_workspace(team.settings, run_id, step).root
        assert (shadow / "outputs" / f"{step}.parquet").is_file()
    assert files_of(Workspace.for_run(team.settings.work_root, run_id).root) == before, "the run's own untouched"
    assert git(team.origin, "rev-parse", "main") == head, "a shadow publishes nothing"
    assert team.calls() == ["collect", "clean", "collect", "clean"], "each ran again, in the shadow"
    again = run_shadow(team.settings, pipeline, "clean", run_id)
    assert again.matched, "a shadow run again forks anew"


def test_a_step_that_reads_its_environment_differs_in_the_shadow_naming_the_column_and_values(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    rewrite_steps(
        team,
        'return collect.with_columns(pl.col("celsius").round(1))',
        "import os\n    site = os.environ['READINGS_SITE']\n"
        '    return collect.with_columns(pl.col("celsius").round(1), pl.lit(site).alias("note"))',
    )
    monkeypatch.setenv("READINGS_SITE", "airflow-site")
    airflows_run(team, "manual__env")
    monkeypatch.setenv("READINGS_SITE", "dagster-site")  # Dagster's code location, set otherwise
    outcome = run_shadow(team.settings, team.settings.declared(), "clean", "manual__env")
    assert not outcome.matched and outcome.comparison is not None
    assert (outcome.comparison.only_expected, outcome.comparison.only_actual) == (6, 6), "every row, no key in it"
    assert "'note': 'airflow-site'" in outcome.summary and "'note': 'dagster-site'" in outcome.summary
    monkeypatch.delenv("READINGS_SITE")  # not set at all for Dagster: the step fails in the shadow
    failed = run_shadow(team.settings, team.settings.declared(), "clean", "manual__env")
    assert not failed.matched and failed.comparison is None
    assert failed.error == "KeyError: 'READINGS_SITE'" and "failed in the shadow" in failed.summary
    assert failed.metadata()["error"] == failed.error and failed.metadata()["matched"] is False
    assert failed.seconds is None and "dagster_seconds" not in failed.metadata(), "no work finished to time"


def test_a_non_deterministic_step_is_compared_on_schema_and_rows_only(team: TeamRepo) -> None:
    rewrite_steps(
        team, "ctx.rng.uniform(-20, 35, rows)", "__import__('numpy').random.default_rng().uniform(-20, 35, rows)"
    )
    project = team.settings.project_file
    assert project is not None
    text = project.read_text(encoding="utf-8")
    project.write_text(
        text.replace(
            'function = "' + team.package + '.steps:collect"',
            'function = "' + team.package + '.steps:collect"\ndeterministic = false',
        )
    )
    airflows_run(team, "manual__draws")
    outcome = run_shadow(team.settings, team.settings.declared(), "collect", "manual__draws")
    assert outcome.comparison is not None and outcome.comparison.expected_md5 != outcome.comparison.actual_md5
    assert outcome.matched and not outcome.deterministic
    assert outcome.summary.startswith("a non-deterministic step, compared on its columns, types and row count only")


def test_a_shadow_needs_the_runs_own_output_of_the_step(team: TeamRepo) -> None:
    pull_data(team.settings, "manual__early")
    run_declared_step(team.settings, "manual__early", "collect", PARAMS)
    with pytest.raises(WorkspaceError, match="no kept output of step 'clean'"):
        run_shadow(team.settings, team.settings.declared(), "clean", "manual__early")
