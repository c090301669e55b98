"""A shadowed step's wiring: its tasks in Airflow's DAG, its check and job in Dagster, the tags it may carry.

The orchestrators build their definitions from the team's project (tests/team_project.py) and its
cutover file, in this process; what the shadow itself does is tests/test_shadow.py's, and the whole
round trip through both orchestrators is tests/test_cutover_stack.py's.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared_tasks.project.cutover import (
    AIRFLOW_TASK_TAG,
    MATCHES_AIRFLOW_CHECK,
    Cutover,
    CutoverError,
    CutoverSteps,
    Runner,
    read_cutover,
    write_cutover,
)
from tests.team_repo import TeamRepo
from tests.test_declared_pipeline import readings_tags


def test_a_shadowed_step_runs_in_airflow_and_its_shadow_task_follows_it_and_nothing_follows_that(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_dags.dagster_shadow import DagsterShadowOperator
    from tests.test_airflow_dag import load_dag

    steps = CutoverSteps.of(team.settings.declared())
    cutover_file = team.project_dir / "cutover.readings.yaml"
    write_cutover(cutover_file, Cutover({"clean": Runner.SHADOW}, steps))
    assert read_cutover(cutover_file, steps).shadowed() == ["clean"]
    load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(team.settings.project_file))
    dag = importlib.import_module("airflow_dags.declared_pipelines").readings_pipeline
    kinds = {task.task_id: type(task).__name__ for task in dag.tasks}
    assert kinds == {
        "pull_data": "_PythonDecoratedOperator",
        "collect": "_PythonDecoratedOperator",
        "clean": "_PythonDecoratedOperator",
        "clean__shadow": DagsterShadowOperator.__name__,
        "push_data": "_PythonDecoratedOperator",
    }
    shadow = dag.get_task("clean__shadow")
    assert shadow.upstream_task_ids == {"clean"} and shadow.downstream_task_ids == set(), "it delays nothing"
    assert dag.get_task("push_data").upstream_task_ids == {"clean"}
    assert (
        shadow.asset_key() == ["readings", "clean"] and shadow.pipeline.names.shadow_job == "readings_pipeline_shadow"
    )


@pytest.mark.parametrize("step", ["pull_data", "push_data"])
def test_the_products_own_steps_cannot_be_shadowed(team: TeamRepo, step: str) -> None:
    cutover_file = team.project_dir / "cutover.readings.yaml"
    cutover_file.write_text(f"collect: airflow\n{step}: shadow\n")
    with pytest.raises(CutoverError, match=f"line 2: step '{step}' cannot be shadowed: only a team's own step"):
        read_cutover(cutover_file, CutoverSteps.of(team.settings.declared()))


def test_dagster_has_a_matches_airflow_check_per_team_step_in_a_job_of_its_own_and_none_in_the_pipelines(
    team: TeamRepo,
) -> None:
    from dagster_assets.declared_pipelines import pipeline_definitions
    from dagster_assets.shadow import shadow_definitions

    pipeline = team.settings.declared()
    checks, job = shadow_definitions(pipeline)
    keys = {key for check in checks for key in check.check_keys}
    assert {(tuple(key.asset_key.path), key.name) for key in keys} == {
        (("readings", "collect"), MATCHES_AIRFLOW_CHECK),
        (("readings", "clean"), MATCHES_AIRFLOW_CHECK),
    }
    assert job.name == "readings_pipeline_shadow"
    import dagster as dg

    from dagster_assets.declared_pipelines import DeclaredPipelineSettings

    assets, pipeline_job = pipeline_definitions(pipeline)
    defs = dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[pipeline_job, job],
        resources={"declared_settings": DeclaredPipelineSettings()},
    )
    whole = defs.resolve_job_def("readings_pipeline")
    assert not any("matches_airflow" in name for name in whole.graph.node_names()), "a whole run shadows nothing"
    shadow = defs.resolve_job_def("readings_pipeline_shadow")
    assert sorted(shadow.graph.node_names()) == ["readings__clean_matches_airflow", "readings__collect_matches_airflow"]


def test_a_shadows_tags_name_the_steps_shadow_task_and_nothing_else(team: TeamRepo) -> None:
    from dagster_assets.airflow_claims import AirflowClaim, ClaimRefused, claimed_task

    project = team.settings.project_file
    tags = readings_tags("clean__shadow")
    claim = claimed_task(tags, ("readings", "clean"), project, shadow=True)
    assert claim == AirflowClaim("readings_pipeline", tags["airflow/run_id"], "clean__shadow", 1)
    refusals = [
        (readings_tags("clean"), True, "the shadow tasks are collect__shadow, clean__shadow"),
        (readings_tags("collect__shadow"), True, "that task shadows collect, not clean"),
        (readings_tags("push_data__shadow"), True, "the shadow tasks are"),
        (readings_tags("clean__shadow"), False, "the steps' tasks are pull_data, collect, clean, push_data"),
    ]
    for forged, shadow, says in refusals:
        with pytest.raises(ClaimRefused) as refused:
            claimed_task(forged, ("readings", "clean"), project, shadow=shadow)
        assert refused.value.tag == AIRFLOW_TASK_TAG and says in str(refused.value.description), forged


def test_a_shadow_with_no_airflow_tags_is_refused(team: TeamRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_assets.airflow_claims import ClaimRefused, check_shadow_tags

    monkeypatch.setenv("PIPELINE_PROJECT_FILE", str(team.settings.project_file))
    with pytest.raises(ClaimRefused, match="a shadow runs only beside an Airflow run"):
        check_shadow_tags({}, "some-dagster-run", ["readings", "clean"])
