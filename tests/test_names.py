"""The pipeline's names in Airflow and Dagster: today's pipeline keeps the ones it always had, and a
second pipeline gets its own, never one another pipeline holds."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from shared_tasks.project.names import (
    CODE_LOCATION,
    HEAD_ASSET,
    LEGACY_PIPELINE,
    MAX_PIPELINE_NAME_LENGTH,
    NAMES,
    PipelineNameError,
    PipelineNames,
)
from shared_tasks.project.pipeline import PIPELINE

# Today's names, as the DAGs, the Dagster definitions, the charts and people's bookmarks spell them.
TODAYS_NAMES = {
    "pipeline": "dataset",
    "dag_id": "dataset_pipeline",
    "verify_dag_id": "verify_dataset_version",
    "airflow_asset": "dataset",
    "dag_tag": "dataset",
    "dagster_location": "dataset-pipeline",  # the chart names it after the user deployment
    "dagster_job": "dataset_pipeline",
    "process_per_step_job": "dataset_pipeline_process_per_step",
    "shadow_job": "dataset_pipeline_shadow",
    "schedule": "dataset_pipeline_schedule",
    "checks_job": "published_dataset_checks",
    "observe_job": "observe_dataset_head",
    "observe_schedule": "observe_dataset_head_schedule",
    "asset_group": "dataset",
    "asset_key_prefix": (),
    "publish_pool": "dataset_pipeline",
    "airflow_runs_sensor": "airflow_runs",
    "head_observer_run": "dataset-head-observer",
}

# The fields whose values share one namespace in an orchestrator: no two pipelines may hold the
# same value in one of them. Asset keys and op names come from `asset_key` and `op_name`.
NAMESPACES = {
    "Airflow DAG id": ("dag_id", "verify_dag_id"),
    "Airflow Asset": ("airflow_asset",),
    "Airflow DAG tag": ("dag_tag",),
    "Dagster job": ("dagster_job", "process_per_step_job", "shadow_job", "checks_job", "observe_job"),
    "Dagster schedule or sensor": ("schedule", "observe_schedule", "airflow_runs_sensor"),
    "Dagster asset group": ("asset_group",),
    "Dagster pool": ("publish_pool",),
    "workspace run id": ("head_observer_run",),
}
SHARED_BY_EVERY_PIPELINE = {"dagster_location"}
TODAYS_ASSETS = (HEAD_ASSET, *(step.output for step in PIPELINE))
# Names chosen to meet another's derived names if the rule let them: each other's prefixes and
# suffixes, today's names, names ending where a separator begins.
PIPELINES = (
    "dataset",
    "readings",
    "a",
    "A",
    "a_b",
    "b",
    "dataset_pipeline",
    "verify_dataset",
    "dataset_version",
    "verify_dataset_version",
    "published_dataset",
    "dataset_checks",
    "observe_dataset",
    "dataset_head",
    "dataset_pipeline_process_per",
    "airflow",
    "airflow_runs",
    "dataset_airflow",
    "readings_pipeline",
    "x" * MAX_PIPELINE_NAME_LENGTH,
)


def test_todays_pipeline_keeps_the_names_it_always_had() -> None:
    assert dataclasses.asdict(NAMES) == TODAYS_NAMES
    assert PipelineNames.of("dataset") == NAMES
    assert NAMES.asset_key("published_dataset") == ("published_dataset",)
    assert NAMES.op_name("published_dataset") == "published_dataset"
    assert NAMES.head_asset_key == ("dataset_head",)


def test_a_second_pipeline_gets_names_of_its_own() -> None:
    readings = PipelineNames.of("readings")
    assert (readings.dag_id, readings.verify_dag_id, readings.airflow_asset) == (
        "readings_pipeline",
        "verify_readings_version",
        "readings",
    )
    assert (readings.dagster_job, readings.asset_group, readings.asset_key_prefix) == (
        "readings_pipeline",
        "readings",
        ("readings",),
    )
    assert readings.asset_key("published_dataset") == ("readings", "published_dataset")
    assert readings.op_name("published_dataset") == "readings__published_dataset"
    assert readings.airflow_runs_sensor == "readings_airflow_runs"
    assert readings.dagster_location == NAMES.dagster_location == CODE_LOCATION  # one location holds both


def test_every_name_is_in_a_namespace_the_collision_test_checks() -> None:
    """A name added to PipelineNames must be placed in a namespace here, or this fails."""
    fields = {field.name for field in dataclasses.fields(PipelineNames)}
    placed = {name for names in NAMESPACES.values() for name in names}
    assert fields == placed | SHARED_BY_EVERY_PIPELINE | {"pipeline", "asset_key_prefix"}


def names_by_namespace(names: PipelineNames) -> dict[str, list[object]]:
    found: dict[str, list[object]] = {
        kind: [getattr(names, field) for field in fields] for kind, fields in NAMESPACES.items()
    }
    # Today's pipeline has today's assets; another may name its assets as it likes, `__` and all.
    assets = TODAYS_ASSETS if names.pipeline == LEGACY_PIPELINE else (*TODAYS_ASSETS, "b", "a__b", "b_")
    found["Dagster asset key"] = [names.asset_key(asset) for asset in assets]
    found["Dagster op"] = [names.op_name(asset) for asset in assets]
    return found


def test_two_pipelines_never_share_a_name_of_one_kind() -> None:
    every = {pipeline: names_by_namespace(PipelineNames.of(pipeline)) for pipeline in PIPELINES}
    for names in every.values():
        for kind, values in names.items():
            assert len(set(map(str, values))) == len(values), f"one pipeline's {kind}s repeat: {values}"
    for first, second in itertools.combinations(PIPELINES, 2):
        for kind in every[first]:
            shared = set(every[first][kind]) & set(every[second][kind])
            assert not shared, f"{first!r} and {second!r} share the {kind} {shared}"


def test_the_collision_check_sees_a_shared_name() -> None:
    """What the test above looks for exists: two pipelines of one name share every name."""
    first, second = names_by_namespace(PipelineNames.of("readings")), names_by_namespace(PipelineNames.of("readings"))
    assert all(set(first[kind]) & set(second[kind]) for kind in first)


@pytest.mark.parametrize("pipeline", ["dataset", "readings", "a", "A_1", "x" * MAX_PIPELINE_NAME_LENGTH])
def test_every_derived_name_is_one_airflow_and_dagster_accept(pipeline: str) -> None:
    import dagster as dg
    from airflow.sdk import DAG, Asset
    from dagster._core.definitions.utils import check_valid_name

    names = PipelineNames.of(pipeline)
    for dag_id in (names.dag_id, names.verify_dag_id):
        assert DAG(dag_id=dag_id, schedule=None).dag_id == dag_id
    assert Asset(name=names.airflow_asset, uri="s3://bucket/datasets/data.csv").name == names.airflow_asset
    for field in (*NAMESPACES["Dagster job"], *NAMESPACES["Dagster schedule or sensor"], "asset_group", "publish_pool"):
        assert check_valid_name(getattr(names, field)) == getattr(names, field)
    for asset in TODAYS_ASSETS:
        key = dg.AssetKey(names.asset_key(asset))
        assert check_valid_name(key.to_python_identifier()) == names.op_name(asset)


@pytest.mark.parametrize(
    "pipeline",
    ["", "1st", "_readings", "readings_", "read__ings", "read-ings", "read ings", "read.ings", "dätä", "x" * 65],
)
def test_a_name_that_cannot_become_the_orchestrators_names_is_refused_naming_it(pipeline: str) -> None:
    with pytest.raises(PipelineNameError) as refused:
        PipelineNames.of(pipeline)
    assert f"pipeline name {pipeline!r} refused" in str(refused.value)
    assert isinstance(refused.value, ValueError)  # a bad input, as every other
