"""The Airflow REST client against a scripted API on loopback: what it sends when the database is busy.

The local stack's Airflow keeps its metadata in SQLite, which lets one writer in at a time; under
eight concurrent runs a write can answer 500 "Database error" or not answer in time. These tests
script those answers and check that the client neither gives up at once nor starts a run twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tenacity import stop_after_attempt, wait_none

from dataset_pipeline import airflow_stack
from dataset_pipeline.airflow_stack import AirflowClient

DAG = "/api/v2/dags/dataset_pipeline"
RUNS = f"{DAG}/dagRuns"
ATTEMPTS = 4
DATABASE_LOCKED = (500, {"detail": {"reason": "Database error", "message": "database is locked"}})


@dataclass
class ScriptedAirflow:
    """Answers each (method, path) from a queue of scripted answers; the last one repeats."""

    script: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.received.append((method, path, body))
        if (method, path) == ("POST", "/auth/token"):
            return 201, {"access_token": "token"}
        queue = self.script.get((method, path))
        if not queue:
            return 404, {"detail": f"nothing scripted for {method} {path}"}
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def sent(self, method: str, path: str) -> list[Any]:
        return [body for m, p, body in self.received if (m, p) == (method, path)]


@pytest.fixture
def scripted() -> Iterator[ScriptedAirflow]:
    api = ScriptedAirflow()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = api.answer(self.command, self.path.split("?")[0], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_stack, "API_RETRY_WAIT", wait_none())
    monkeypatch.setattr(airflow_stack, "API_RETRY_STOP", stop_after_attempt(ATTEMPTS))


def test_unpausing_a_running_dag_writes_nothing(scripted: ScriptedAirflow) -> None:
    scripted.script[("GET", DAG)] = [(200, {"is_paused": False})]
    with AirflowClient(scripted.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    assert scripted.sent("PATCH", DAG) == []


def test_a_locked_database_is_waited_out(scripted: ScriptedAirflow) -> None:
    scripted.script[("GET", DAG)] = [(200, {"is_paused": True})]
    scripted.script[("PATCH", DAG)] = [DATABASE_LOCKED, DATABASE_LOCKED, (200, {"is_paused": False})]
    with AirflowClient(scripted.url, "admin", "pw") as client:
        client.unpause("dataset_pipeline")
    assert scripted.sent("PATCH", DAG) == [{"is_paused": False}] * 3


def test_a_database_that_stays_locked_is_reported_after_the_last_attempt(scripted: ScriptedAirflow) -> None:
    scripted.script[("GET", DAG)] = [(200, {"is_paused": True})]
    scripted.script[("PATCH", DAG)] = [DATABASE_LOCKED]
    with AirflowClient(scripted.url, "admin", "pw") as client, pytest.raises(Exception, match="500") as raised:
        client.unpause("dataset_pipeline")
    assert "Internal Server Error" in str(raised.value)
    assert len(scripted.sent("PATCH", DAG)) == ATTEMPTS


def test_a_new_run_sent_again_after_a_lost_answer_is_one_run(scripted: ScriptedAirflow) -> None:
    # The first POST created the run but its answer was an error; the second finds it (409).
    scripted.script[("POST", RUNS)] = [DATABASE_LOCKED, (409, {"detail": "already exists"})]
    with AirflowClient(scripted.url, "admin", "pw") as client:
        run_id, existed = client.trigger("dataset_pipeline", {"records": 2}, None)
    bodies = scripted.sent("POST", RUNS)
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    assert bodies[0]["dag_run_id"] == run_id and run_id.startswith("manual__")
    assert existed is False  # the run is the one this call started, not an earlier one


def test_two_new_runs_get_different_ids(scripted: ScriptedAirflow) -> None:
    with AirflowClient(scripted.url, "admin", "pw") as client:
        for _ in range(2):
            scripted.script[("POST", RUNS)] = [(200, {"dag_run_id": "answered"})]
            client.trigger("dataset_pipeline", {"records": 1}, None)
    first, second = (body["dag_run_id"] for body in scripted.sent("POST", RUNS))
    assert first != second


def test_a_chosen_run_that_exists_is_resumed(scripted: ScriptedAirflow) -> None:
    scripted.script[("POST", RUNS)] = [(409, {"detail": "already exists"})]
    with AirflowClient(scripted.url, "admin", "pw") as client:
        assert client.trigger("dataset_pipeline", {"records": 1}, "chosen-7") == ("chosen-7", True)
    assert [body["dag_run_id"] for body in scripted.sent("POST", RUNS)] == ["chosen-7"]
