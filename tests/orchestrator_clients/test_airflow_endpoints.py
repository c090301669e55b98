"""Every call the Airflow client makes is an operation of the installed Airflow's own OpenAPI spec.

Each public method is driven against the scripted API; every request it sends (method, path and
query parameter names) must match an operation of the REST API v2 spec or the simple auth
manager's, so an Airflow upgrade that renames or drops one fails here, not on the stack.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
import yaml

from orchestrator_clients.airflow_api import AirflowClient, TaskInstance
from tests.scripted_api import ScriptedApi

pytestmark = pytest.mark.usefixtures("no_waiting")

SPECS = (
    ("airflow.api_fastapi.core_api.openapi", "v2-rest-api-generated.yaml"),
    ("airflow.api_fastapi.auth.managers.simple.openapi", "v2-simple-auth-manager-generated.yaml"),
)
DAG, RUN, TASK = "dataset_pipeline", "manual__1", "push_data"
RUNS = f"/api/v2/dags/{DAG}/dagRuns"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the REST spec is large


def operations() -> list[tuple[str, re.Pattern[str], set[str]]]:
    """(method, path pattern, query parameter names) of every operation in the specs."""
    found = []
    for package, name in SPECS:
        spec = yaml.load(resources.files(package).joinpath(name).read_text(encoding="utf-8"), Loader=LOADER)
        for template, methods in spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$")
            for method, operation in methods.items():
                query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
                found.append((method.upper(), pattern, query))
    return found


def script(api: ScriptedApi) -> None:
    run = {"dag_run_id": RUN, "state": "success"}
    task = {"task_id": TASK, "state": "failed", "try_number": 1}
    answers: dict[tuple[str, str], Any] = {
        ("GET", f"/api/v2/dags/{DAG}"): {"is_paused": True},
        ("PATCH", f"/api/v2/dags/{DAG}"): {"is_paused": False},
        ("GET", "/api/v2/importErrors"): {"import_errors": []},
        ("POST", RUNS): run,
        ("GET", RUNS): {"dag_runs": [run], "total_entries": 1},
        ("GET", f"{RUNS}/{RUN}"): run,
        ("POST", f"/api/v2/dags/{DAG}/clearTaskInstances"): {"task_instances": []},
        ("GET", f"{RUNS}/{RUN}/taskInstances"): {"task_instances": [task], "total_entries": 1},
        ("GET", f"{RUNS}/{RUN}/taskInstances/{TASK}/xcomEntries/return_value"): {"value": {"run_id": RUN}},
        ("GET", f"{RUNS}/{RUN}/taskInstances/{TASK}/logs/1"): {"content": [{"event": "boom"}]},
        ("GET", "/api/v2/assets"): {"assets": [{"id": 7, "name": "dataset"}], "total_entries": 1},
        ("POST", "/api/v2/assets/events"): {"id": 1, "asset_id": 7},
        ("GET", "/api/v2/assets/events"): {"asset_events": [{"id": 1, "asset_id": 7}], "total_entries": 1},
    }
    api.script.update({key: [(200, answer)] for key, answer in answers.items()})


def drive(client: AirflowClient) -> None:
    """Every public call of the client, once."""
    client.dag_exists(DAG)
    client.import_errors()
    client.unpause(DAG)
    client.trigger(DAG, {"records": 1}, RUN)
    client.retry_failed(DAG, RUN)
    client.run_state(DAG, RUN)
    list(client.dag_runs(DAG, updated_at_gte=datetime(2026, 1, 1, tzinfo=UTC)))
    client.task_states(DAG, RUN)
    client.return_value(DAG, RUN, TASK)
    client.log_tail(DAG, RUN, TaskInstance(task_id=TASK, try_number=1))
    client.assets(name="dataset", uri="s3://b/d")
    client.create_asset_event(7, {"commit": "abc"})
    list(client.asset_events(7))


def test_every_call_is_an_operation_of_airflows_spec(scripted_api: ScriptedApi) -> None:
    known = operations()
    script(scripted_api)
    with AirflowClient(scripted_api.url, "admin", "pw") as client:
        drive(client)
    unknown = []
    for request in scripted_api.received:
        matches = [
            query for method, pattern, query in known if method == request.method and pattern.match(request.path)
        ]
        if not matches or not any(set(request.query) <= query for query in matches):
            unknown.append((request.method, request.path, sorted(request.query)))
    assert unknown == []
    assert len({(r.method, r.path) for r in scripted_api.received}) >= 14
