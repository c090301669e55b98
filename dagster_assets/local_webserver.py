"""Dagster's webserver for the local stack, refusing what another web page could make a browser send.

Dagster's GraphQL endpoint runs a mutation sent by GET and answers any origin, so a page open in
the same browser could launch a run through the local stack (or a port-forward). This is the
`dagster-webserver` command unchanged, its app wrapped in a guard that refuses:

- a GraphQL mutation sent by GET (405): only POST may change state;
- a request whose Origin is not the UI's own, or `null` (403), websockets included;
- a Host that is not loopback (403), so a rebound DNS name cannot reach it either.

Calls without an Origin (the CLI, Airflow's proxy task, curl) and the UI itself pass. On the
cluster the UI is reached only through an authenticating proxy instead (docs/eks.md).

    python -m dagster_assets.local_webserver -h 127.0.0.1 -p 3000 -w workspace.yaml
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}


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


def refusal(scope: Scope) -> tuple[int, str] | None:
    """Why this request is refused (status, reason), or None to let it through."""
    headers = _headers(scope)
    host = headers.get("host", "")
    if urlsplit(f"//{host}").hostname not in LOOPBACK_NAMES:
        return 403, f"host {host!r} is not this machine's loopback address"
    origin = headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return 403, f"a request from origin {origin!r} is not the UI's own"
    if scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path", "").endswith("/graphql"):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("query", [])
        if any(_changes_state(text) for text in query):
            return 405, "a GraphQL mutation must be sent by POST"
    return None


class RequestGuard:
    """ASGI middleware: answers a refused request itself, passes every other one to the app."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(scope) if scope["type"] in ("http", "websocket") else None
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
