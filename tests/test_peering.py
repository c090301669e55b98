"""Dagster's sensor of Airflow's runs, against a scripted Airflow API: each task instance reported once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest

from dagster_assets.peering import AirflowLinks, PeerCursor, observe_airflow
from orchestrator_clients import OrchestratorApiError
from orchestrator_clients.airflow_api import AirflowClient
from tests.scripted_api import ScriptedApi

pytestmark = pytest.mark.usefixtures("no_waiting")

RUNS = "/api/v2/dags/dataset_pipeline/dagRuns"
LINKS = AirflowLinks("http://airflow.example")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RECORDS = {
    "pull_data": {"run_id": "r1", "commit": "c0", "md5": "m0", "size": 10, "rows": 100},
    "modify_data": {"run_id": "r1", "base_commit": "c0", "rows_added": 1, "md5": "m1", "rows": 101},
    "push_data": {"run_id": "r1", "commit": "c1", "md5": "m1", "rows": 101, "rows_added": 1, "s3_url": "s3://b/x"},
}


def script_run(
    api: ScriptedApi, run_id: str, state: str, tasks: dict[str, tuple[str, int]], xcoms: dict[str, Any]
) -> None:
    api.script[("GET", f"{RUNS}/{run_id}")] = [(200, {"dag_run_id": run_id, "state": state})]
    listed = [{"task_id": task, "state": ti_state, "try_number": tries} for task, (ti_state, tries) in tasks.items()]
    api.script[("GET", f"{RUNS}/{run_id}/taskInstances")] = [
        (200, {"task_instances": listed, "total_entries": len(listed)})
    ]
    for task, record in xcoms.items():
        api.script[("GET", f"{RUNS}/{run_id}/taskInstances/{task}/xcomEntries/return_value")] = [
            (200, {"value": record})
        ]


def listing(api: ScriptedApi, *runs: tuple[str, str]) -> None:
    items = [{"dag_run_id": run_id, "state": state} for run_id, state in runs]
    api.script[("GET", RUNS)] = [(200, {"dag_runs": items, "total_entries": len(items)})]


def observe(api: ScriptedApi, cursor: PeerCursor) -> tuple[Any, PeerCursor]:
    with AirflowClient(api.url, "dagster-peer", "pw") as client:
        return observe_airflow(client, cursor, LINKS, NOW)


def reported(observed: Any) -> list[tuple[str, str]]:
    return [(type(event).__name__, event.asset_key.to_user_string()) for event in observed.events]


def test_a_succeeded_run_reports_each_step_once_with_its_record(scripted_api: ScriptedApi) -> None:
    succeeded = {task: ("success", 1) for task in RECORDS}
    script_run(scripted_api, "r1", "success", succeeded, RECORDS)
    listing(scripted_api, ("r1", "success"))
    observed, cursor = observe(scripted_api, PeerCursor())
    assert reported(observed) == [
        ("AssetMaterialization", "pulled_dataset"),
        ("AssetMaterialization", "changed_dataset"),
        ("AssetMaterialization", "published_dataset"),
    ]
    published = observed.events[2]
    assert published.tags == {"dagster/data_version": "m1"}
    assert published.metadata["commit"] == dg.TextMetadataValue("c1") or published.metadata["commit"] == "c1"
    assert published.metadata["airflow_run_url"] == dg.MetadataValue.url(
        "http://airflow.example/dags/dataset_pipeline/runs/r1"
    )
    assert observed.checked_commits == [("r1:push_data:1", "c1")]
    assert cursor.reported == {"r1": {"pull_data": 1, "modify_data": 1, "push_data": 1}} and cursor.active == []

    again, cursor = observe(scripted_api, cursor)  # the next evaluation: nothing new
    assert again.events == [] and again.checked_commits == []

    cleared = {**succeeded, "push_data": ("success", 2)}  # push cleared and run again
    script_run(scripted_api, "r1", "success", cleared, RECORDS)
    rerun, cursor = observe(scripted_api, cursor)
    assert reported(rerun) == [("AssetMaterialization", "published_dataset")]
    assert cursor.reported["r1"]["push_data"] == 2


def test_a_running_run_is_read_again_until_it_ends_and_a_failed_task_is_observed(scripted_api: ScriptedApi) -> None:
    script_run(
        scripted_api, "r2", "running", {"pull_data": ("success", 1), "modify_data": ("up_for_retry", 1)}, RECORDS
    )
    listing(scripted_api, ("r2", "running"))
    observed, cursor = observe(scripted_api, PeerCursor())
    assert reported(observed) == [("AssetMaterialization", "pulled_dataset")]
    assert cursor.active == ["r2"]

    listing(scripted_api)  # the run is no longer among the recently updated: it is read as an active one
    failed = {"pull_data": ("success", 1), "modify_data": ("failed", 3), "push_data": ("upstream_failed", 0)}
    script_run(scripted_api, "r2", "failed", failed, RECORDS)
    scripted_api.script[("GET", f"{RUNS}/r2/taskInstances/modify_data/logs/3")] = [
        (200, {"content": [{"event": "DataValidationError: line 2, column 'Age'"}]})
    ]
    observed, cursor = observe(scripted_api, cursor)
    (failure,) = observed.events
    assert isinstance(failure, dg.AssetObservation) and failure.asset_key == dg.AssetKey("changed_dataset")
    assert failure.metadata["airflow_task_log"] == dg.MetadataValue.url(
        "http://airflow.example/dags/dataset_pipeline/runs/r2/tasks/modify_data?try_number=3"
    )
    assert "column 'Age'" in str(failure.metadata["log_tail"])
    assert cursor.active == []


def test_a_step_dagster_ran_for_airflow_is_not_reported_twice(scripted_api: ScriptedApi) -> None:
    proxied = {**RECORDS, "modify_data": {**RECORDS["modify_data"], "dagster_run_id": "d-1"}}
    script_run(scripted_api, "r3", "success", {task: ("success", 1) for task in RECORDS}, proxied)
    listing(scripted_api, ("r3", "success"))
    observed, cursor = observe(scripted_api, PeerCursor())
    assert [key for _, key in reported(observed)] == ["pulled_dataset", "published_dataset"]
    assert cursor.reported["r3"]["modify_data"] == 1  # settled: not looked at again


def test_airflow_out_of_reach_leaves_the_cursor_where_it_was(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("GET", RUNS)] = [(503, {"detail": "down for maintenance"})]
    before = PeerCursor(since=NOW, reported={"r1": {"pull_data": 1}})
    with pytest.raises(OrchestratorApiError, match="503"):
        observe(scripted_api, before)
    assert before.reported == {"r1": {"pull_data": 1}}  # the sensor keeps its old cursor and catches up later


def test_the_runs_looked_at_are_those_updated_since_the_last_look_less_an_overlap(scripted_api: ScriptedApi) -> None:
    listing(scripted_api)
    observe(scripted_api, PeerCursor(since=NOW))
    (request,) = scripted_api.requests("GET", RUNS)
    assert request.query["updated_at_gte"] == ["2026-12-02T11:55:00+00:00"]


def test_a_declared_pipelines_sensor_reports_its_own_dags_runs_on_its_own_asset_keys(
    scripted_api: ScriptedApi, tmp_path: Any
) -> None:
    from shared_tasks.project.cutover import CutoverSteps
    from shared_tasks.project.declared import load_project
    from tests.team_project import write_project

    pipeline = CutoverSteps.of(load_project(write_project(tmp_path / "project")).pipeline("readings"))
    runs = "/api/v2/dags/readings_pipeline/dagRuns"
    records = {
        "pull_data": {"run_id": "r9", "commit": "c0", "md5": "m0", "rows": 12},
        "collect": {"run_id": "r9", "rows": 3},
        "clean": {"run_id": "r9", "rows": 3, "dagster_run_id": "d-9"},  # cut over: Dagster's own event already
        "push_data": {"run_id": "r9", "commit": "c1", "md5": "m1", "rows": 15, "rows_added": 3},
    }
    listed = [{"task_id": task, "state": "success", "try_number": 1} for task in records]
    scripted_api.script[("GET", runs)] = [
        (200, {"dag_runs": [{"dag_run_id": "r9", "state": "success"}], "total_entries": 1})
    ]
    scripted_api.script[("GET", f"{runs}/r9/taskInstances")] = [(200, {"task_instances": listed, "total_entries": 4})]
    for task, record in records.items():
        scripted_api.script[("GET", f"{runs}/r9/taskInstances/{task}/xcomEntries/return_value")] = [
            (200, {"value": record})
        ]
    links = AirflowLinks("http://airflow.example", "readings_pipeline")
    with AirflowClient(scripted_api.url, "dagster-peer", "pw") as client:
        observed, cursor = observe_airflow(client, PeerCursor(), links, NOW, pipeline)
    assert reported(observed) == [
        ("AssetMaterialization", "readings/pulled_dataset"),
        ("AssetMaterialization", "readings/collect"),
        ("AssetMaterialization", "readings/published_dataset"),
    ]
    assert observed.events[2].tags == {"dagster/data_version": "m1"}
    assert observed.events[2].metadata["airflow_run_url"] == dg.MetadataValue.url(
        "http://airflow.example/dags/readings_pipeline/runs/r9"
    )
    assert cursor.reported == {"r9": dict.fromkeys(records, 1)}
    asked = {request.path for request in scripted_api.received}
    assert asked and all("/dags/dataset_pipeline" not in path for path in asked), "the built-in DAG is another's"


def test_every_declared_pipeline_has_a_sensor_a_stopped_schedule_and_locally_a_job_with_a_process_per_step(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_assets.declared_pipelines import declared_definitions
    from tests.team_project import add_station_pipeline, write_project

    project_file = write_project(tmp_path / "project")
    add_station_pipeline(project_file)
    monkeypatch.setenv("PIPELINE_PROJECT_FILE", str(project_file))
    sensors = declared_definitions(7).sensors
    assert [sensor.name for sensor in sensors] == ["readings_airflow_runs", "station_readings_airflow_runs"]
    assert {sensor.minimum_interval_seconds for sensor in sensors} == {7} and not any(s.has_jobs for s in sensors)
    jobs = {job.name: job for job in declared_definitions(7, process_per_step=True).jobs}
    assert sorted(jobs) == [
        "readings_pipeline",
        "readings_pipeline_process_per_step",
        "readings_pipeline_shadow",
        "station_readings_pipeline",
        "station_readings_pipeline_process_per_step",
        "station_readings_pipeline_shadow",
    ]
    assert jobs["readings_pipeline_process_per_step"].executor_def is dg.multiprocess_executor
    assert [job.name for job in declared_definitions(7).jobs] == [
        "readings_pipeline",
        "readings_pipeline_shadow",
        "station_readings_pipeline",
        "station_readings_pipeline_shadow",
    ]
    monkeypatch.setenv("PIPELINE_SCHEDULE", "15 4 * * *")
    schedules = {schedule.name: schedule for schedule in declared_definitions(7).schedules}
    assert sorted(schedules) == ["readings_pipeline_schedule", "station_readings_pipeline_schedule"]
    for name, schedule in schedules.items():
        assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 4 * * *", "UTC")
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED, "Airflow's DAG has the schedule"
        assert schedule.job_name == name.removesuffix("_schedule"), "the pipeline's own job"
    monkeypatch.setenv("PIPELINE_SCHEDULE", "none")
    assert declared_definitions(7).schedules == []
