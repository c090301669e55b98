"""The local Dagster webserver's guard: what another web page could make a browser send is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dagster_assets.local_webserver import RequestGuard, refusal

LAUNCH = "mutation { launchRun(executionParams: {}) { __typename } }"
QUERY = "query { version }"


def scope(method: str = "POST", path: str = "/graphql", query: str = "", **headers: str) -> dict[str, Any]:
    listed = [
        (key.replace("_", "-").encode(), value.encode()) for key, value in {"host": "127.0.0.1:3000", **headers}.items()
    ]
    return {"type": "http", "method": method, "path": path, "query_string": query.encode(), "headers": listed}


def get(query: str) -> dict[str, Any]:
    from urllib.parse import urlencode

    return scope("GET", query=urlencode({"query": query}))


@pytest.mark.parametrize(
    "document",
    [
        LAUNCH,
        'mutation Named { terminateRun(runId: "x") { __typename } }',
        f"{QUERY}\n{LAUNCH}",  # a query beside a mutation in one document
        "  mutation{launchRun(executionParams:{}){__typename}}",
        'subscription { pipelineRunLogs(runId: "x") { __typename } }',
        "mutation {",  # unreadable: refused alike
    ],
)
def test_a_mutation_sent_by_get_is_refused(document: str) -> None:
    assert refusal(get(document)) == (405, "a GraphQL mutation must be sent by POST")


def test_queries_by_get_and_anything_by_post_from_the_ui_itself_pass() -> None:
    assert refusal(get(QUERY)) is None
    assert refusal(scope("POST")) is None  # the CLI and Airflow's proxy send no Origin
    assert refusal(scope("POST", origin="http://127.0.0.1:3000")) is None  # the UI's own page


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:8080", "null", "https://127.0.0.1:3000"])
def test_a_request_from_another_origin_is_refused(origin: str) -> None:
    status, reason = refusal(scope("POST", origin=origin)) or (0, "")
    assert status == 403 and "not the UI's own" in reason
    websocket = {**scope("GET", path="/graphql", origin=origin), "type": "websocket"}
    assert refusal(websocket) is not None


@pytest.mark.parametrize("host", ["evil.example:3000", "10.0.0.5:3000", "", "127.0.0.1.evil.example:3000"])
def test_a_host_other_than_loopback_is_refused(host: str) -> None:
    status, reason = refusal(scope("POST", host=host)) or (0, "")
    assert status == 403 and "loopback" in reason


def test_the_guard_answers_a_refusal_itself_and_passes_the_rest() -> None:
    reached: list[str] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["method"])

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    guard = RequestGuard(app)
    asyncio.run(guard(get(LAUNCH), receive, send))
    asyncio.run(guard(scope("POST"), receive, send))
    assert reached == ["POST"]
    assert sent[0]["status"] == 405 and b"must be sent by POST" in sent[1]["body"]
