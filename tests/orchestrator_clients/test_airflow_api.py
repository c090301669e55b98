"""The Airflow REST client against a scripted API: it neither gives up on a busy database nor starts a run twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator_clients import OrchestratorApiError
from orchestrator_clients.airflow_api import AirflowClient
from tests.conftest import fake_secret
from tests.scripted_api import ATTEMPTS, ScriptedApi

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


LOGIN = ("POST", "/auth/token")
EXPIRED = (401, {"detail": "Token Expired"})


def test_an_expired_token_is_renewed_once_and_the_call_sent_again(scripted_api: ScriptedApi) -> None:
    scripted_api.script[LOGIN] = [(201, {"access_token": "first"}), (201, {"access_token": "second"})]
    scripted_api.script[("GET", DAG)] = [EXPIRED, (200, {"is_paused": False})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    tokens = [request.headers["Authorization"] for request in scripted_api.requests("GET", DAG)]
    assert tokens == ["Bearer first", "Bearer second"]
    assert len(scripted_api.sent(*LOGIN)) == 2


def test_a_fresh_token_refused_too_is_a_clear_error(scripted_api: ScriptedApi) -> None:
    scripted_api.script[("GET", DAG)] = [EXPIRED]
    with AirflowClient(scripted_api.url, "admin", "pw") as client, pytest.raises(OrchestratorApiError) as raised:
        client.unpause("dataset_pipeline")
    assert "refused a fresh token" in str(raised.value) and "401" in str(raised.value)
    assert raised.value.status == 401
    assert len(scripted_api.sent(*LOGIN)) == 2 and len(scripted_api.sent("GET", DAG)) == 2  # once more, not forever


def test_a_refused_login_names_the_url_and_status_never_the_password(scripted_api: ScriptedApi) -> None:
    password = fake_secret("pw")
    echoed = [{"type": "missing", "loc": ["body"], "msg": "Invalid credentials", "input": {"password": password}}]
    scripted_api.script[LOGIN] = [(401, {"detail": echoed})]
    with pytest.raises(OrchestratorApiError) as raised:
        AirflowClient(scripted_api.url, "admin", password)
    message = str(raised.value)
    assert f"{scripted_api.url}/auth/token" in message and "401" in message and "Invalid credentials" in message
    assert password not in message and password not in repr(raised.value.args)
    assert len(scripted_api.sent(*LOGIN)) == 1  # a refusal is not a busy server: not sent again


def test_a_login_the_server_fails_is_waited_out(scripted_api: ScriptedApi) -> None:
    scripted_api.script[LOGIN] = [(503, "starting"), (201, {"access_token": "late"})]
    scripted_api.script[("GET", DAG)] = [(200, {"is_paused": False})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    assert scripted_api.requests("GET", DAG)[0].headers["Authorization"] == "Bearer late"


def run_answer(run_id: str, **fields: object) -> dict[str, object]:
    return {"dag_run_id": run_id, "dag_id": "dataset_pipeline", "state": "success", **fields}


def test_run_listings_page_through_and_take_a_null_logical_date(scripted_api: ScriptedApi) -> None:
    first = [run_answer("manual__1", logical_date=None, a_field_from_a_later_release={"x": 1})]
    second = [run_answer("manual__2", logical_date="2026-01-02T03:04:05Z", state="a_new_state")]
    scripted_api.script[("GET", RUNS)] = [
        (200, {"dag_runs": first, "total_entries": 2}),
        (200, {"dag_runs": second, "total_entries": 2}),
    ]
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        runs = list(client.dag_runs("dataset_pipeline", updated_at_gte=since, page_size=1))
    assert [(run.dag_run_id, run.logical_date, run.state) for run in runs] == [
        ("manual__1", None, "success"),
        ("manual__2", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "a_new_state"),
    ]
    queries = [request.query for request in scripted_api.requests("GET", RUNS)]
    assert [query["offset"] for query in queries] == [["0"], ["1"]]
    assert all(query["updated_at_gte"] == [since.isoformat()] and query["limit"] == ["1"] for query in queries)
    assert queries[0]["order_by"] == ["updated_at"]


def test_a_listing_the_server_cuts_short_is_read_to_its_total(scripted_api: ScriptedApi) -> None:
    # The server caps `limit` at its own maximum: a page shorter than asked is not the last one.
    scripted_api.script[("GET", RUNS)] = [
        (200, {"dag_runs": [run_answer("a")], "total_entries": 2}),
        DATABASE_LOCKED,
        (200, {"dag_runs": [run_answer("b")], "total_entries": 2}),
    ]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        assert [run.dag_run_id for run in client.dag_runs("dataset_pipeline", page_size=50)] == ["a", "b"]


def test_task_instances_parse_only_what_we_read(scripted_api: ScriptedApi) -> None:
    tasks = f"{RUNS}/r1/taskInstances"
    answer = [{"task_id": "pull_data", "state": "success", "try_number": 1, "duration": 2.5, "unknown": []}]
    scripted_api.script[("GET", tasks)] = [(200, {"task_instances": [*answer, {"task_id": "push_data"}]})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        found = client.task_states("dataset_pipeline", "r1")
    assert (found["pull_data"].state, found["pull_data"].duration) == ("success", 2.5)
    assert (found["push_data"].state, found["push_data"].try_number) == (None, 0)


def test_assets_by_name_and_their_events(scripted_api: ScriptedApi) -> None:
    assets = [{"id": 7, "name": "dataset", "uri": "s3://b/d"}, {"id": 8, "name": "dataset_old", "uri": "s3://b/o"}]
    scripted_api.script[("GET", "/api/v2/assets")] = [(200, {"assets": assets, "total_entries": 2})]
    event = {"id": 1, "asset_id": 7, "extra": {"commit": "abc", "from_rest_api": True}, "source_map_index": -1}
    scripted_api.script[("POST", "/api/v2/assets/events")] = [(200, event)]
    scripted_api.script[("GET", "/api/v2/assets/events")] = [(200, {"asset_events": [event], "total_entries": 1})]
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        (asset,) = client.assets(name="dataset")
        created = client.create_asset_event(asset.id, {"commit": "abc"})
        listed = list(client.asset_events(asset.id))
    assert asset.id == 7 and created.extra["commit"] == "abc" and listed == [created]
    assert scripted_api.requests("GET", "/api/v2/assets")[0].query["name_pattern"] == ["dataset"]
    assert scripted_api.sent("POST", "/api/v2/assets/events") == [{"asset_id": 7, "extra": {"commit": "abc"}}]
    assert scripted_api.requests("GET", "/api/v2/assets/events")[0].query["asset_id"] == ["7"]


def test_an_api_that_does_not_answer_is_one_clear_error(no_waiting: None) -> None:
    from tests.ports import free_port

    with pytest.raises(OrchestratorApiError, match="did not answer POST /auth/token") as raised:
        AirflowClient(f"http://127.0.0.1:{free_port()}", "admin", "pw")
    assert raised.value.transient is True
