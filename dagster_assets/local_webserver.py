"""Dagster's webserver for the local stack, refusing what another web page could make a browser send.

Dagster's GraphQL endpoint runs a mutation sent by GET and answers any origin, so a page open in
the same browser could launch a run through the local stack (or a port-forward). This is the
`dagster-webserver` command unchanged, its app wrapped in a guard that refuses:

- a GraphQL mutation sent by GET (405): only POST may change state;
- a POST whose body is not JSON (415): Dagster reads a text/plain, form or multipart POST's
  GraphQL from the URL's query string, and an application/graphql body as GraphQL, all of which
  a page can send without asking (no CORS preflight), Origin or not;
- a POST whose JSON body is not one JSON object (400): a batch (an array) or anything else;
- a POST carrying GraphQL (`query`, `variables`, `operationName`) in its URL (400): a POST
  carries it in its body only (the UI's own `?op=<name>` passes);
- a request whose Origin is not the UI's own, or `null` (403), websockets included;
- a Host that is not loopback (403), so a rebound DNS name cannot reach it either.

So every POST, to GraphQL or to the REST endpoints that report asset events, is a JSON object
with Content-Type application/json: what a browser sends cross-origin only after a preflight that
Dagster never grants. Calls without an Origin (the CLI, Airflow's proxy task, curl) and the UI
itself, all JSON, pass. On the cluster the UI is reached only through an authenticating proxy
instead (docs/eks.md).

    python -m dagster_assets.local_webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
JSON = "application/json"
GRAPHQL_PARAMETERS = {"query", "variables", "operationName"}  # what Dagster's endpoint reads of a request
MAX_BODY_BYTES = 16 * 1024 * 1024
Refusal = tuple[int, str]


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}


def _header_values(scope: Scope, name: str) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key.decode("latin-1").lower() == name]


def _query_parameters(scope: Scope) -> list[tuple[str, str]]:
    """The URL's query string as Starlette (so Dagster) reads it."""
    return parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def _changes_state(query: str) -> bool:
    """Whether a GraphQL document holds a mutation (or cannot be read, which is refused alike)."""
    from graphql import OperationDefinitionNode, OperationType, parse
    from graphql.error import GraphQLError

    try:
        document = parse(query)
    except GraphQLError:
        return True
    return any(
        isinstance(node, OperationDefinitionNode) and node.operation is not OperationType.QUERY
        for node in document.definitions
    )


def refusal(scope: Scope) -> Refusal | None:
    """Why this request is refused (status, reason), or None to let it through as far as its
    head says (a POST's body is judged by `body_refusal`)."""
    headers = _headers(scope)
    host = headers.get("host", "")
    if urlsplit(f"//{host}").hostname not in LOOPBACK_NAMES:
        return 403, f"host {host!r} is not this machine's loopback address"
    origin = headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return 403, f"a request from origin {origin!r} is not the UI's own"
    if scope["type"] != "http":
        return None
    method = scope.get("method")
    if method == "GET" and scope.get("path", "").rstrip("/").endswith("/graphql"):
        query = [value for key, value in _query_parameters(scope) if key == "query"]
        if any(_changes_state(text) for text in query):
            return 405, "a GraphQL mutation must be sent by POST"
    if method == "POST":
        content_types = _header_values(scope, "content-type")
        if len(content_types) != 1 or content_types[0].split(";")[0].strip().lower() != JSON:
            shown = ", ".join(content_types) or "none"
            return 415, f"a POST must be a JSON object with Content-Type {JSON} (got {shown})"
        in_url = sorted({key for key, _ in _query_parameters(scope)} & GRAPHQL_PARAMETERS)
        if in_url:
            return 400, f"a POST carries its GraphQL in its body, not in the URL ({', '.join(in_url)})"
    return None


def body_refusal(body: bytes) -> Refusal | None:
    """Why a POST's body is refused: it must be a single JSON object (no batch, nothing else)."""
    try:
        document = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return 400, "a POST's body must be JSON"
    if isinstance(document, list):
        return 400, "a batch of GraphQL requests (a JSON array) is not accepted: send one JSON object"
    if not isinstance(document, dict):
        return 400, "a POST's body must be one JSON object"
    return None


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]] | None:
    """The whole body and the messages it came in (None past MAX_BODY_BYTES, or on a disconnect)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return b"".join(part.get("body", b"") for part in messages), messages


class RequestGuard:
    """ASGI middleware: answers a refused request itself, passes every other one to the app."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(scope) if scope["type"] in ("http", "websocket") else None
        if refused is None and scope["type"] == "http" and scope.get("method") == "POST":
            read = await _read_body(receive)
            if read is None:
                refused = 413, f"a POST's body must be complete and at most {MAX_BODY_BYTES} bytes"
            else:
                body, messages = read
                refused = body_refusal(body)
                receive = _replay(messages, receive)
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refused[1]})
        else:
            status, reason = refused
            body = json.dumps({"error": reason}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` for the app: the body messages already read, then whatever comes next (a disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def main() -> None:
    """`dagster-webserver` with its app guarded; every option of that command works here."""
    cli: Any = importlib.import_module("dagster_webserver.cli")
    build = cli.create_app_from_workspace_process_context

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return RequestGuard(build(*args, **kwargs))

    cli.create_app_from_workspace_process_context = guarded
    cli.main()


if __name__ == "__main__":
    main()
