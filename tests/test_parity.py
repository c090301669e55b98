"""The two orchestrators run the same graph: Airflow's tasks and Dagster's assets are the shared
pipeline's steps, in the same order, with the same edges, so a comparison compares like with like."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE
from tests.test_airflow_dag import load_dag

SHARED_EDGES = {(upstream, step.name) for step in PIPELINE for upstream in step.upstream}


def test_airflow_tasks_and_dagster_assets_are_the_same_steps_and_edges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dagster as dg

    from dagster_assets.assets import STEP_ASSETS
    from dagster_assets.definitions import defs

    dag = load_dag(monkeypatch, tmp_path)
    airflow_edges = {(upstream, task.task_id) for task in dag.tasks for upstream in task.upstream_task_ids}

    step_of_asset = {asset: step for step, asset in STEP_ASSETS.items()}
    graph = defs.resolve_asset_graph()
    dagster_edges = set()
    for asset, step in step_of_asset.items():
        for parent in graph.get(dg.AssetKey(asset)).parent_keys:
            if parent.to_user_string() in step_of_asset:
                dagster_edges.add((step_of_asset[parent.to_user_string()], step))

    assert {task.task_id for task in dag.tasks} == set(STEP_ASSETS) == {step.name for step in PIPELINE}
    assert airflow_edges == dagster_edges == SHARED_EDGES
    job = defs.resolve_job_def(NAMES.dagster_job)
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == set(STEP_ASSETS.values())
