"""The local Dagster webserver's guard: what another web page could make a browser send is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from dagster_webserver.graphql import GraphQLServer
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from dagster_assets.local_webserver import MAX_BODY_BYTES, RequestGuard, refusal

LAUNCH = "mutation { launchRun(executionParams: {}) { __typename } }"
QUERY = "query { version }"
JSON = "application/json"


def scope(method: str = "POST", path: str = "/graphql", query: str = "", **headers: str) -> dict[str, Any]:
    listed = [
        (key.replace("_", "-").encode(), value.encode()) for key, value in {"host": "127.0.0.1:3000", **headers}.items()
    ]
    return {"type": "http", "method": method, "path": path, "query_string": query.encode(), "headers": listed}


def get(query: str) -> dict[str, Any]:
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


def test_queries_by_get_and_json_posts_from_the_ui_itself_pass() -> None:
    assert refusal(get(QUERY)) is None
    assert refusal(scope("POST", content_type=JSON)) is None  # the CLI and Airflow's proxy send no Origin
    ui = scope("POST", query="op=LaunchPipelineExecution", content_type=JSON, origin="http://127.0.0.1:3000")
    assert refusal(ui) is None  # the UI's own page, naming its operation in the URL as it does


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
        return {"type": "http.request", "body": b"{}"}

    guard = RequestGuard(app)
    asyncio.run(guard(get(LAUNCH), receive, send))
    asyncio.run(guard(scope("POST", content_type=JSON), receive, send))
    assert reached == ["POST"]
    assert sent[0]["status"] == 405 and b"must be sent by POST" in sent[1]["body"]


# every content type, every place a GraphQL document can ride: through Dagster's own endpoint -----


class RecordingServer(GraphQLServer[Any]):
    """Dagster webserver's GraphQL endpoint (its own request parsing), recording what it would execute."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        super().__init__()

    def build_graphql_schema(self) -> Any:
        return None

    def build_graphql_middleware(self) -> list[Any]:
        return []

    def build_middleware(self) -> list[Any]:
        return []

    def build_routes(self) -> list[Any]:
        return []

    def _make_request_context(self, conn: Any) -> Any:
        return contextlib.nullcontext()

    async def execute_graphql_request(self, request: Any, query: str, variables: Any, operation_name: Any) -> Any:
        self.executed.append(query)
        return JSONResponse({"data": {}})


def multipart(fields: dict[str, str]) -> bytes:
    parts = [f'--b\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n' for key, value in fields.items()]
    return ("".join(parts) + "--b--\r\n").encode()


def json_body(document: str) -> bytes:
    return json.dumps({"query": document}).encode()


# name -> (Content-Type, how a body of that type carries a document)
CONTENT_TYPES: dict[str, tuple[str | None, Callable[[str], bytes]]] = {
    "none": (None, json_body),
    "text/plain": ("text/plain", json_body),
    "text/plain;charset=UTF-8": ("text/plain;charset=UTF-8", json_body),
    "text/plain naming json": ("text/plain; x=application/json", json_body),
    "form": ("application/x-www-form-urlencoded", lambda document: urlencode({"query": document}).encode()),
    "multipart": ("multipart/form-data; boundary=b", lambda document: multipart({"query": document})),
    "graphql": ("application/graphql", str.encode),
    "json": (JSON, json_body),
    "json; charset": ("application/json; charset=utf-8", json_body),
    "JSON in capitals": ("Application/JSON", json_body),
    "json-patch": ("application/json-patch+json", json_body),
    "json array": (JSON, lambda document: json.dumps([{"query": document}]).encode()),
    "json string": (JSON, lambda document: json.dumps(document).encode()),
    "not json": (JSON, str.encode),
}
ACCEPTED = {"json", "json; charset"}  # the only ones that may carry a mutation, in the body
PLACES = ["url", "body"]


def post(app: Any, content_type: str | None, body: bytes, url_document: str | None) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:3000") as client:
            headers = {"content-type": content_type} if content_type else {}
            params = {"query": url_document} if url_document else None
            return await client.post("/graphql", content=body, headers=headers, params=params)

    return asyncio.run(send())


def dagster_app(server: RecordingServer, guarded: bool) -> Any:
    app = Starlette(routes=[Route("/graphql", server.graphql_http_endpoint, methods=["GET", "POST"])])
    return RequestGuard(app) if guarded else app


def send_mutation(kind: str, place: str, guarded: bool) -> tuple[httpx.Response, list[str]]:
    """A launch carried in `place` of a POST of content type `kind` (in the URL: beside a body
    holding a plain query), and what Dagster's endpoint executed."""
    content_type, carry = CONTENT_TYPES[kind]
    server = RecordingServer()
    body = carry(LAUNCH if place == "body" else QUERY)
    response = post(dagster_app(server, guarded), content_type, body, LAUNCH if place == "url" else None)
    return response, server.executed


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("kind", sorted(CONTENT_TYPES))
def test_only_a_json_object_posted_as_json_carries_a_mutation(kind: str, place: str) -> None:
    response, executed = send_mutation(kind, place, guarded=True)
    if kind in ACCEPTED and place == "body":
        assert response.status_code == 200 and executed == [LAUNCH]
    else:
        assert 400 <= response.status_code < 500, response.text
        assert LAUNCH not in executed


@pytest.mark.parametrize(
    ("kind", "place"),
    [
        ("none", "url"),
        ("text/plain", "url"),
        ("text/plain;charset=UTF-8", "url"),
        ("form", "url"),
        ("multipart", "url"),
        ("graphql", "body"),
        ("text/plain naming json", "body"),
        ("json-patch", "body"),
    ],
)
def test_without_the_guard_dagster_runs_a_mutation_no_preflight_protects(kind: str, place: str) -> None:
    response, executed = send_mutation(kind, place, guarded=False)
    assert response.status_code == 200 and executed == [LAUNCH]


def test_without_the_guard_a_batch_is_a_server_error_and_with_it_a_refusal() -> None:
    assert send_mutation("json array", "body", guarded=False)[0].status_code == 500
    response, executed = send_mutation("json array", "body", guarded=True)
    assert response.status_code == 400 and "batch" in response.json()["error"] and executed == []


@pytest.mark.parametrize("parameter", ["query", "variables", "operationName"])
def test_a_json_post_carries_no_graphql_in_its_url(parameter: str) -> None:
    status, reason = refusal(scope("POST", query=urlencode({parameter: "x"}), content_type=JSON)) or (0, "")
    assert status == 400 and parameter in reason


def test_one_content_type_only_and_a_body_of_bounded_size() -> None:
    twice = scope("POST", content_type=JSON)
    twice["headers"].append((b"content-type", b"text/plain"))
    assert (refusal(twice) or (0,))[0] == 415
    server = RecordingServer()
    response = post(dagster_app(server, guarded=True), JSON, b" " * (MAX_BODY_BYTES + 1), None)
    assert response.status_code == 413 and server.executed == []


def test_a_post_elsewhere_must_be_json_too() -> None:
    """Dagster's REST endpoints that report asset events read their data from the URL as well."""
    assert (refusal(scope("POST", path="/report_asset_materialization/x", query="data_version=1")) or (0,))[0] == 415
    assert refusal(scope("POST", path="/report_asset_materialization/x", content_type=JSON)) is None
