"""The Airflow REST client against a scripted API: it neither gives up on a busy database nor starts a run twice."""

from __future__ import annotations

import pytest

from dataset_pipeline.airflow_stack import AirflowClient
from tests.scripted_api import ATTEMPTS, ScriptedApi, no_waiting, scripted_api

__all__ = ["no_waiting", "scripted_api"]  # the fixtures

pytestmark = pytest.mark.usefixtures("no_waiting")

DAG = "/api/v2/dags/dataset_pipeline"
RUNS = f"{DAG}/dagRuns"
DATABASE_LOCKED = (500, {"detail": {"reason": "Database error", "message": "database is locked"}})


def test_unpausing_a_running_dag_writes_nothing(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("GET", DAG)] = [(200, {"is_paused": False})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    assert scripted_api.sent("PATCH", DAG) == []


def test_a_locked_database_is_waited_out(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("GET", DAG)] = [(200, {"is_paused": True})]
    scripted_api.script[("PATCH", DAG)] = [DATABASE_LOCKED, DATABASE_LOCKED, (200, {"is_paused": False})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    assert scripted_api.sent("PATCH", DAG) == [{"is_paused": False}] * 3


def test_a_database_that_stays_locked_is_reported_after_the_last_attempt(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("GET", DAG)] = [(200, {"is_paused": True})]
    scripted_api.script[("PATCH", DAG)] = [DATABASE_LOCKED]
    with AirflowClient(scripted_api.url, "admin", "pw") as client, pytest.raises(Exception, match="500") as raised:
        client.unpause("dataset_pipeline")
    assert "Internal Server Error" in str(raised.value)
    assert len(scripted_api.sent("PATCH", DAG)) == ATTEMPTS


def test_a_new_run_sent_again_after_a_lost_answer_is_one_run(scripted_api: ScriptedApi) -> None:
    # The first POST created the run but its answer was an error; the second finds it (409).
    scripted_api.script[("POST", RUNS)] = [DATABASE_LOCKED, (409, {"detail": "already exists"})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        run_id, existed = client.trigger("dataset_pipeline", {"records": 2}, None)
    bodies = scripted_api.sent("POST", RUNS)
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0]["dag_run_id"] == run_id and run_id.startswith("manual__")
    assert existed is False  # the run is the one this call started, not an earlier one


def test_two_new_runs_get_different_ids(scripted_api: ScriptedApi) -> None:
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        for _ in range(2):
            scripted_api.script[("POST", RUNS)] = [(200, {"dag_run_id": "answered"})]
            client.trigger("dataset_pipeline", {"records": 1}, None)
    first, second = (body["dag_run_id"] for body in scripted_api.sent("POST", RUNS))
    assert first != second


def test_a_chosen_run_that_exists_is_resumed(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("POST", RUNS)] = [(409, {"detail": "already exists"})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        assert client.trigger("dataset_pipeline", {"records": 1}, "chosen-7") == ("chosen-7", True)
    assert [body["dag_run_id"] for body in scripted_api.sent("POST", RUNS)] == ["chosen-7"]
