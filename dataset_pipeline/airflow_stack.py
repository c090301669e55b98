"""Airflow on the local stack: its components as processes, driven through REST API v2 only.

`airflow standalone` cannot be told to keep its log servers off other interfaces, so the
components (api-server, scheduler, dag-processor, triggerer) are started here one by one, each
in its own process group, with every port on 127.0.0.1. Logs are read from the shared local log
folder, so the log servers are skipped. The metadata database is SQLite, which Airflow 3 accepts
with the LocalExecutor for a single machine. The DAG is triggered by hand only here
(PIPELINE_SCHEDULE=none: a daily run starting at `up` would publish versions nobody asked for),
and retries wait 5 s instead of the cluster's 30 s.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from tenacity import RetryCallState, retry_if_exception_type, retry_if_result

from dataset_pipeline.s3server import LOOPBACK
from dataset_pipeline.stack import LocalStack, StackError, busy_api_retrying, group_alive, stop_process_group

DAG_ID = "dataset_pipeline"
ADMIN_USER = "admin"
PARALLELISM = 4
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", LOOPBACK, "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
READY_TIMEOUT_SECONDS = 180
RUN_TIMEOUT_SECONDS = 900
LOG_TAIL_LINES = 30
FINISHED_STATES = {"success", "failed"}
# A busy SQLite database answers 500 "Database error" (database is locked).
TRANSIENT_STATUS_CODES = {500, 502, 503, 504}


def dags_folder() -> Path:
    """The repository's airflow_dags/ as installed, found without importing it."""
    spec = importlib.util.find_spec("airflow_dags")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the airflow_dags package is not installed next to dataset_pipeline")
    return Path(next(iter(spec.submodule_search_locations)))


class Service:
    name = "airflow"

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.home = stack.root / "airflow"

    # paths and settings ----------------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        return self.home / "admin-password.json"

    @property
    def ready_file(self) -> Path:
        return self.home / "airflow.ready"

    @property
    def secret_file(self) -> Path:
        return self.home / "jwt-secret"

    @property
    def port(self) -> int:
        ready = self._ready()
        return int(ready["port"]) if ready else self.stack.config.airflow_port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def admin_password(self) -> str:
        return str(json.loads(self.password_file.read_text())[ADMIN_USER])

    def env(self) -> dict[str, str]:
        """What every component runs with: the steps' settings plus Airflow's own configuration."""
        venv_bin = str(Path(sys.executable).parent)
        port = self.stack.config.airflow_port
        airflow = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{LOOPBACK}:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://{LOOPBACK}:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secret_file.read_text().strip(),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            # Unpausing a scheduled DAG would start a run at once: versions nobody asked for.
            "PIPELINE_SCHEDULE": "none",
        }
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__")}
        path = os.pathsep.join([venv_bin, inherited.get("PATH", "")])
        return {**inherited, **self.stack.settings_env(), **airflow, "PATH": path}

    # lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        if self.status()["running"]:
            return
        self.down()  # whatever is left of an earlier start
        _check_port_free(self.stack.config.airflow_port)
        self.home.mkdir(parents=True, exist_ok=True)
        self._ensure_secrets()
        env = self.env()
        self._migrate(env)
        pids = {name: self._start(name, args, env) for name, args in COMPONENTS.items()}
        self._write_ready({"pids": pids, "port": self.stack.config.airflow_port})
        try:
            self._wait_healthy(pids)
            client = AirflowClient(self.url, ADMIN_USER, self.admin_password(), wait_seconds=READY_TIMEOUT_SECONDS)
            with client:
                client.wait_for_dag(DAG_ID, pids=list(pids.values()), timeout=READY_TIMEOUT_SECONDS)
                client.unpause(DAG_ID)
        except Exception:
            self.down()
            raise

    def down(self) -> None:
        ready = self._read_ready_file()
        if ready is None:
            return
        groups = [int(pid) for pid in ready.get("pids", {}).values()]
        for pgid in groups:  # all at once: the components stop in parallel
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        for pgid in groups:
            stop_process_group(pgid)
        self.ready_file.unlink(missing_ok=True)

    def status(self) -> dict[str, Any]:
        ready = self._ready()
        running = ready is not None and self._healthy()
        return {
            "running": running,
            "url": self.url,
            "user": ADMIN_USER,
            "password_file": str(self.password_file),
            "pids": ready["pids"] if ready else {},
            "home": str(self.home),
        }

    # internals -------------------------------------------------------------------------------
    def _ensure_secrets(self) -> None:
        if not self.secret_file.exists():
            _write_private(self.secret_file, secrets.token_urlsafe(32))
        if not self.password_file.exists():
            password = secrets.token_urlsafe(18)
            _write_private(self.password_file, json.dumps({ADMIN_USER: password}))
            Console(stderr=True).print(
                f"Airflow admin password (shown once, kept in {self.password_file}): {password}",
                highlight=False,
            )

    def _migrate(self, env: dict[str, str]) -> None:
        completed = subprocess.run(
            ["airflow", "db", "migrate"],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            tail = " | ".join(completed.stderr.strip().splitlines()[-5:])
            raise StackError(f"`airflow db migrate` failed: {tail}")

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> int:
        log_path = self.home / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                ["airflow", *args],
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return process.pid

    def _read_ready_file(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def _ready(self) -> dict[str, Any] | None:
        """The ready file, if every component it names is alive."""
        data = self._read_ready_file()
        if data is None or not data.get("pids"):
            return None
        return data if all(group_alive(int(pid)) for pid in data["pids"].values()) else None

    def _write_ready(self, data: dict[str, Any]) -> None:
        tmp = self.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.ready_file)

    def _wait_healthy(self, pids: dict[str, int]) -> None:
        """Until the API server answers; a component that exits meanwhile fails `up` with its log tail."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self._healthy():
            dead = [name for name, pid in pids.items() if not group_alive(pid)]
            if dead:
                log = self.home / f"{dead[0]}.log"
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise StackError(f"Airflow's {dead[0]} stopped while starting: {tail}; see {log}")
            if time.monotonic() > deadline:
                raise StackError(f"Airflow did not answer at {self.url} within {READY_TIMEOUT_SECONDS} s")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _check_port_free(port: int) -> None:
    """Fail before starting anything: a taken port leaves the API server up but deaf."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no conflict
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            raise StackError(f"port {port} is in use: choose another with --airflow-port") from None


def _write_private(path: Path, text: str) -> None:
    """Owner-only from the first byte: the file is created with mode 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


class AirflowClient:
    """The few REST API v2 calls the stack needs, with a token from POST /auth/token."""

    def __init__(self, url: str, user: str, password: str, wait_seconds: float = 30) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        try:
            self._login(user, password, wait_seconds)
        except BaseException:
            self.http.close()
            raise

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def _login(self, user: str, password: str, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                response = self.http.post("/auth/token", json={"username": user, "password": password})
                if response.status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"the Airflow API at {self.http.base_url} did not answer in {wait_seconds:.0f} s")
            time.sleep(0.5)
        if response.status_code not in (200, 201):
            raise StackError(f"Airflow refused the login ({response.status_code}): {response.text[:200]}")
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call, sent again for up to a minute while the answer is a transient failure.

        Every call the stack makes is safe to repeat: reads, setting a state, and triggers that
        carry their run id.
        """
        retrying = busy_api_retrying(
            retry_if_exception_type(httpx.TransportError) | retry_if_result(_transient),
            retry_error_callback=_last_answer,
        )
        response: httpx.Response = retrying(self.http.request, method, path, **kwargs)
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self._send("GET", f"/api/v2{path}", params=params or None)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, pids: list[int], timeout: float) -> None:
        """Until the DAG processor has parsed the DAG (an import error fails fast)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._send("GET", f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            errors = self.get("/importErrors").get("import_errors", [])
            if errors:
                raise StackError(f"Airflow could not import the DAG: {errors[0].get('stack_trace', '')[-500:]}")
            if not all(group_alive(pid) for pid in pids):
                raise StackError("an Airflow component stopped while starting; see the logs in the stack folder")
            time.sleep(1)
        raise StackError(f"the DAG {dag_id} did not appear in Airflow within {timeout:.0f} s")

    def unpause(self, dag_id: str) -> None:
        """Writes only when the DAG is paused: concurrent runs would otherwise all queue for the database."""
        if self.get(f"/dags/{dag_id}")["is_paused"]:
            self._send("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None) -> tuple[str, bool]:
        """A new run, or (given the id of an existing run) that run: (run id, whether it existed).

        A new run's id is chosen here, the way Airflow names manual runs, so that sending the
        call again after a lost answer finds the same run instead of starting a second one.
        """
        chosen = run_id or f"manual__{datetime.now(UTC).isoformat()}_{secrets.token_hex(5)}"
        body: dict[str, Any] = {"logical_date": None, "conf": conf, "dag_run_id": chosen}
        response = self._send("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if response.status_code == 409:
            return chosen, run_id is not None
        if response.status_code >= 400:
            raise StackError(f"Airflow refused the run ({response.status_code}): {response.text[:300]}")
        return str(response.json()["dag_run_id"]), False

    def retry_failed(self, dag_id: str, run_id: str) -> None:
        """Clear the run's failed tasks (and what follows them) so the scheduler runs them again."""
        body = {"dag_run_id": run_id, "only_failed": True, "dry_run": False, "include_downstream": True}
        self._send("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body).raise_for_status()

    def task_states(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in found}

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.get(path, deserialize="true", stringify="false")["value"]
        return json.loads(value) if isinstance(value, str) else value

    def log_tail(self, dag_id: str, run_id: str, task: dict[str, Any], lines: int = LOG_TAIL_LINES) -> list[str]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task['task_id']}/logs/{max(task['try_number'], 1)}"
        content = self.get(path, full_content="true").get("content", [])
        entries = content if isinstance(content, list) else str(content).splitlines()
        text = [line for entry in entries for line in _log_line(entry).splitlines()]
        return [line for line in text if line.strip()][-lines:]


def _transient(response: httpx.Response) -> bool:
    return response.status_code in TRANSIENT_STATUS_CODES


def _last_answer(state: RetryCallState) -> httpx.Response:
    """After the last attempt: its answer for the caller to judge, or its transport error raised."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    parts = [str(entry.get(key, "")) for key in ("timestamp", "level", "event") if entry.get(key)]
    errors = [f"{error.get('exc_type')}: {error.get('exc_value')}" for error in entry.get("error_detail") or []]
    return "\n".join([" ".join(parts), *errors])


def run_via(stack: LocalStack, records: int, run_id: str | None, console: Console) -> dict[str, Any]:
    """Trigger the DAG through the REST API, follow it, and return the version it published."""
    service = Service(stack)
    with AirflowClient(service.url, ADMIN_USER, service.admin_password()) as client:
        client.unpause(DAG_ID)
        airflow_run_id, existed = client.trigger(DAG_ID, {"records": records}, run_id)
        earlier_state = client.run_state(DAG_ID, airflow_run_id) if existed else None
        if earlier_state == "failed":
            client.retry_failed(DAG_ID, airflow_run_id)
        action = "resuming" if existed else "triggered"
        console.print(f"airflow run [bold]{airflow_run_id}[/bold] {action} ({service.url})", highlight=False)
        state = _follow(client, airflow_run_id, console)
        if state != "success":
            _report_failure(client, airflow_run_id, console)
            raise StackError(f"the Airflow run {airflow_run_id} ended {state}")
        version = _published_version(stack, client, airflow_run_id)
        tasks = client.task_states(DAG_ID, airflow_run_id)
        step_seconds = {task_id: float(ti["duration"]) for task_id, ti in tasks.items() if ti.get("duration")}
        already = bool(version.get("already_published")) or earlier_state == "success"  # nothing new was made
        return {
            **version,
            "already_published": already,
            "orchestrator_run_id": airflow_run_id,
            "step_seconds": step_seconds,
        }


def _follow(client: AirflowClient, run_id: str, console: Console) -> str:
    reported: dict[str, str] = {}
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    with console.status("waiting for Airflow…"):
        while time.monotonic() < deadline:
            for task_id, ti in client.task_states(DAG_ID, run_id).items():
                state = ti.get("state") or "none"
                if reported.get(task_id) != state and state in ("running", "success", "failed", "up_for_retry"):
                    mark = {"success": "[green]✓[/green]", "failed": "[red]✗[/red]"}.get(state, "…")
                    console.print(f"{mark} {task_id:<12} {state} (try {ti.get('try_number')})", highlight=False)
                    reported[task_id] = state
            state = client.run_state(DAG_ID, run_id)
            if state in FINISHED_STATES:
                return state
            time.sleep(1)
    return "timed out"


def _report_failure(client: AirflowClient, run_id: str, console: Console) -> None:
    for task_id, ti in client.task_states(DAG_ID, run_id).items():
        if ti.get("state") in ("failed", "upstream_failed", "up_for_retry"):
            console.print(f"[red]task {task_id} {ti['state']}[/red]; the end of its log:", highlight=False)
            with contextlib.suppress(httpx.HTTPError):
                for line in client.log_tail(DAG_ID, run_id, ti):
                    console.print(f"  {line}", highlight=False, markup=False)


def _published_version(stack: LocalStack, client: AirflowClient, run_id: str) -> dict[str, Any]:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        value = client.return_value(DAG_ID, run_id, "push_data")
        if isinstance(value, dict) and value.get("run_id") == run_id:
            return value
    from shared_tasks.history import history

    for version in history(stack.settings()):
        if version.run_id == run_id:
            return version.to_dict()
    raise StackError(f"the Airflow run {run_id} succeeded but no version names it")
