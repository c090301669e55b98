"""Credentials against an authenticated Git HTTP server on loopback.

dulwich's smart-HTTP server behind HTTP basic auth stands in for a Git host. After a run
the token must appear in no file under the work root, no output line, no exception text,
no git trace line and no child process's argv.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, fake_secret, origin_head

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

USERNAME = "pipeline-bot"
TOKEN = fake_secret("ghs")
WRONG_TOKEN = fake_secret("ghs")


class BasicAuth:
    def __init__(self, app: Any, username: str, password: str) -> None:
        self.app = app
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_AUTHORIZATION") != self.expected:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
            return [b""]
        return self.app(environ, start_response)


@pytest.fixture
def http_origin(origin: Path) -> Iterator[str]:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from dulwich.repo import Repo
    from dulwich.server import DictBackend
    from dulwich.web import make_wsgi_chain

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    repo = Repo(str(origin))
    app = BasicAuth(make_wsgi_chain(DictBackend({"/data.git": repo})), USERNAME, TOKEN)
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/data.git"
    finally:
        server.shutdown()
        server.server_close()
        repo.close()


class ArgvWatcher:
    """Samples every process's command line while a run goes on."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        self.seen.add((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.005)

    def __enter__(self) -> ArgvWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataset_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )


def forms_of(secret: str) -> list[bytes]:
    basic = base64.b64encode(f"{USERNAME}:{secret}".encode())
    return [secret.encode(), basic, basic.decode().encode("utf-16-le")]


def files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                hits.append(path)
    return hits


@pytest.mark.slow
def test_token_never_leaks_during_a_run(
    http_origin: str, settings_env: dict[str, str], origin: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "git-trace.log"
    env = {
        **settings_env,
        "PIPELINE_GIT_URL": http_origin,
        "GIT_SYNC_USERNAME": USERNAME,
        "GIT_SYNC_PASSWORD": TOKEN,
        "GIT_TRACE": str(trace),
        "GIT_TRACE_CURL": str(trace),
        "GIT_TRACE_CURL_NO_DATA": "1",
    }
    before = origin_head(origin)
    with ArgvWatcher() as argv:
        completed = run_cli(env, "run", "--json", "--run-id", "secret-run")
        history = run_cli(env, "history", "--json")
    assert completed.returncode == 0, completed.stderr
    assert history.returncode == 0, history.stderr
    assert origin_head(origin) != before, "the run did not publish through the authenticated origin"

    needles = forms_of(TOKEN)
    work_root = Path(settings_env["PIPELINE_WORK_ROOT"])
    assert files_containing(work_root, needles) == []
    for text in (completed.stdout, completed.stderr, history.stdout, history.stderr):
        assert not any(needle.decode(errors="ignore") in text for needle in needles)
    assert trace.exists() and "git-remote-http" in trace.read_text()
    assert not any(needle in trace.read_bytes() for needle in needles)
    assert len(argv.seen) > 10
    assert not any(TOKEN in line for line in argv.seen)
    git_config = (work_root / "runs").glob("*/repo/.git/config")
    for config in git_config:
        assert USERNAME not in config.read_text() and "@" not in config.read_text().split("url =")[1].splitlines()[0]


@pytest.mark.slow
def test_a_wrong_token_gives_a_clear_auth_error_without_the_token(
    http_origin: str, settings_env: dict[str, str]
) -> None:
    env = {
        **settings_env,
        "PIPELINE_GIT_URL": http_origin,
        "GIT_SYNC_USERNAME": USERNAME,
        "GIT_SYNC_PASSWORD": WRONG_TOKEN,
    }
    completed = run_cli(env, "run", "--run-id", "wrong-token-run")
    assert completed.returncode == 1
    assert "refused the credentials" in completed.stderr
    assert "GIT_SYNC_PASSWORD" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not any(needle.decode() in completed.stderr + completed.stdout for needle in forms_of(WRONG_TOKEN)[:2])
    work_root = Path(settings_env["PIPELINE_WORK_ROOT"])
    assert files_containing(work_root, forms_of(WRONG_TOKEN)) == []

    fixed = run_cli({**env, "GIT_SYNC_PASSWORD": TOKEN}, "run", "--run-id", "wrong-token-run", "--json")
    assert fixed.returncode == 0, fixed.stderr
    rerun = run_cli({**env, "GIT_SYNC_PASSWORD": TOKEN}, "run", "--run-id", "wrong-token-run", "--json")
    assert json.loads(rerun.stdout)["already_published"] is True  # the rerun found it: one version


def test_missing_credentials_fail_fast_instead_of_prompting(http_origin: str, settings_env: dict[str, str]) -> None:
    env = {key: value for key, value in settings_env.items() if not key.startswith("GIT_SYNC")}
    env["PIPELINE_GIT_URL"] = http_origin
    started = time.monotonic()
    completed = run_cli(env, "history")
    assert completed.returncode == 1
    assert "refused the credentials" in completed.stderr
    assert time.monotonic() - started < 60
    assert os.environ.get("GIT_SYNC_PASSWORD") is None


class Recorder:
    """A Git host that asks for credentials and writes down every Authorization header it is sent."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.paths: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.paths.append(environ.get("PATH_INFO", ""))
        if "HTTP_AUTHORIZATION" in environ:
            self.authorizations.append(environ["HTTP_AUTHORIZATION"])
        start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Length", "0")])
        return [b""]


class Redirect:
    """Sends every request of the origin's repository elsewhere, keeping the rest of the path."""

    def __init__(self, target: str, app: Any) -> None:
        self.target = target
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/data.git"):
            return self.app(environ, start_response)
        query = f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
        location = self.target + path.removeprefix("/data.git") + query
        start_response("302 Found", [("Location", location), ("Content-Length", "0")])
        return [b""]


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("elsewhere", ["another host", "another repository on the same host"])
def test_a_redirect_elsewhere_gets_no_credentials(settings_env: dict[str, str], elsewhere: str) -> None:
    """The credential helper answers for the origin's scheme, host, port and path only."""
    recorder = Recorder()
    redirected_to = "/data.git/info/refs" if elsewhere == "another host" else "/other/data.git/info/refs"
    with serving(recorder) as other_port:
        if elsewhere == "another host":
            origin_app: Any = Redirect(f"http://127.0.0.1:{other_port}/data.git", recorder)
            with serving(origin_app) as origin_port:
                completed = run_cli(_credentialed(settings_env, origin_port), "history")
        else:
            origin_app = Redirect("/other/data.git", recorder)
            with serving(origin_app) as origin_port:
                origin_app.target = f"http://127.0.0.1:{origin_port}/other/data.git"
                completed = run_cli(_credentialed(settings_env, origin_port), "history")
    assert completed.returncode == 1
    assert "refused the credentials" in completed.stderr
    assert redirected_to in recorder.paths, f"git never followed the redirect: {recorder.paths}"
    assert recorder.authorizations == [], "the token was sent to where the origin redirected"


def _credentialed(settings_env: dict[str, str], origin_port: int) -> dict[str, str]:
    return {
        **settings_env,
        "PIPELINE_GIT_URL": f"http://127.0.0.1:{origin_port}/data.git",
        "GIT_SYNC_USERNAME": USERNAME,
        "GIT_SYNC_PASSWORD": TOKEN,
    }
