"""An HTTP API on loopback that answers from a script: how a client behaves when a server is busy.

The local stack's orchestrators keep their state in SQLite, which lets one writer in at a time;
under concurrent runs an answer can be a 500 or come late. A script reproduces that on demand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from tenacity import stop_after_attempt, wait_none

from orchestrator_clients import retrying

Answer = tuple[int, Any]
ATTEMPTS = 4  # the attempts a client makes against a script, with no wait between them


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: Any
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class ScriptedApi:
    """Answers each (method, path) from a queue of scripted answers; the last one repeats.

    A payload that is a string is sent as plain text (a server's error page), anything else as JSON.
    """

    script: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self, request: Received) -> Answer:
        self.received.append(request)
        key = (request.method, request.path)
        if key == ("POST", "/auth/token") and key not in self.script:  # Airflow's login, granted unless scripted
            return 201, {"access_token": "token"}
        queue = self.script.get(key)
        if not queue:
            return 404, {"detail": f"nothing scripted for {request.method} {request.path}"}
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def requests(self, method: str, path: str) -> list[Received]:
        return [request for request in self.received if (request.method, request.path) == (method, path)]

    def sent(self, method: str, path: str) -> list[Any]:
        return [request.body for request in self.requests(method, path)]


@pytest.fixture
def scripted_api() -> Iterator[ScriptedApi]:
    api = ScriptedApi()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path, _, query = self.path.partition("?")
            request = Received(self.command, path, body, parse_qs(query), dict(self.headers.items()))
            status, payload = api.answer(request)
            text = isinstance(payload, str)
            data = payload.encode() if text else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrying, "BUSY_API_WAIT", wait_none())
    monkeypatch.setattr(retrying, "BUSY_API_STOP", stop_after_attempt(ATTEMPTS))
