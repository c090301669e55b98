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

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from dataset_pipeline.process import LOOPBACK, ProcessService, StackError, process_environment
from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.retrying import poll_until
from shared_tasks.project.cutover import FILE_NAME as CUTOVER_FILE_NAME
from shared_tasks.project.cutover import SHADOW_OPERATOR, Cutover, read_cutover, shadow_task_id, write_cutover
from shared_tasks.project.names import NAMES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dataset_pipeline.outcome import RunOutcome
    from dataset_pipeline.stack import LocalStack
    from shared_tasks.project.declared import DeclaredPipeline

ADMIN_USER = "admin"
# Dagster's login for reading Airflow's runs: a viewer, which may read runs, tasks, XComs and logs only.
PEER_USER = "dagster-peer"
USERS = {ADMIN_USER: "admin", PEER_USER: "viewer"}
ANNOUNCE_INTERVAL_SECONDS = "10"
PARALLELISM = 4
REPARSE_SECONDS = 10  # Airflow's default 30
PROXY_POLL_SECONDS = 1  # the proxied step's trigger; 2 by default
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", LOOPBACK, "--workers", "1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
READY_TIMEOUT_SECONDS = 180
PROXY_OPERATOR = "DagsterStepOperator"  # the task of a step cut over to Dagster


def dags_folder() -> Path:
    """The repository's airflow_dags/ as installed, found without importing it."""
    spec = importlib.util.find_spec("airflow_dags")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the airflow_dags package is not installed next to dataset_pipeline")
    return Path(next(iter(spec.submodule_search_locations)))


def cutover_file() -> Path:
    """The cutover file Airflow reads: PIPELINE_CUTOVER_FILE, or the one beside the DAG in this repository."""
    configured = os.environ.get("PIPELINE_CUTOVER_FILE")
    return Path(configured) if configured else dags_folder() / CUTOVER_FILE_NAME


class Service(ProcessService):
    name = "airflow"
    title = "Airflow"
    port_option = "--airflow-port"

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.home = stack.root / "airflow"
        super().__init__(self.home / "airflow.ready", self.home, stack.config.airflow_port)

    # paths and settings ----------------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        return self.home / "admin-password.json"

    @property
    def secret_file(self) -> Path:
        return self.home / "jwt-secret"

    def admin_password(self) -> str:
        return self.password_of(ADMIN_USER)

    def password_of(self, user: str) -> str:
        return str(json.loads(self.password_file.read_text())[user])

    def client(self) -> AirflowClient:
        return AirflowClient(self.url, ADMIN_USER, self.admin_password())

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
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://{LOOPBACK}:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secret_file.read_text().strip(),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            # Tuned for one DAG file on a small machine (docs/benchmarks.md has each one's figures):
            # the cutover file's change reaches the next run within 10 s, not 30 s; one parsing process.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(REPARSE_SECONDS),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # Unpausing a scheduled DAG would start a run at once: versions nobody asked for.
            "PIPELINE_SCHEDULE": "none",
            # Versions made elsewhere reach Airflow's dataset Asset within seconds here.
            "PIPELINE_ANNOUNCE_INTERVAL_SECONDS": ANNOUNCE_INTERVAL_SECONDS,
        }
        if "dagster" in self.stack.config.services:  # a step cut over to Dagster is launched there
            airflow["PIPELINE_DAGSTER_URL"] = f"http://{LOOPBACK}:{self.stack.config.dagster_port}"
            airflow["PIPELINE_DAGSTER_POLL_SECONDS"] = str(PROXY_POLL_SECONDS)  # the triggerer's look at the run
        inherited = {key: value for key, value in process_environment().items() if not key.startswith("AIRFLOW__")}
        path = os.pathsep.join([venv_bin, inherited.get("PATH", "")])
        return {**inherited, **self.stack.settings_env(), **self.stack.project_env(), **airflow, "PATH": path}

    # lifecycle -------------------------------------------------------------------------------
    def up(self) -> None:
        if self.status()["running"]:
            return
        self.down()  # whatever is left of an earlier start
        self.check_port_free()
        self.home.mkdir(parents=True, exist_ok=True)
        self._ensure_secrets()
        env = self.env()
        self._migrate(env)
        processes = {
            name: self.start_process(name, ["airflow", *args], env=env, cwd=self.home)
            for name, args in COMPONENTS.items()
        }
        self.ready_file.write({name: process.pid for name, process in processes.items()}, self.configured_port)
        try:
            self.wait_until_ready(processes, self._healthy, READY_TIMEOUT_SECONDS)
            with self.client() as client:
                self._wait_for_dag(client, processes)
                client.unpause(NAMES.dag_id)
        except Exception:
            self.down()
            raise

    def down(self) -> None:
        self.stop()

    def status(self) -> dict[str, Any]:
        ready = self.running()
        return {
            "running": ready is not None and self._healthy(),
            "url": self.url,
            "user": ADMIN_USER,
            "password_file": str(self.password_file),
            "pids": ready.pids if ready else {},
            "home": str(self.home),
        }

    def run_via(
        self,
        records: int,
        run_id: str | None,
        console: Console,
        pipeline: DeclaredPipeline | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RunOutcome:
        from dataset_pipeline.airflow_runs import run_dag

        with self.client() as client:
            return run_dag(self.stack, client, records, run_id, console, pipeline, params)

    def apply_cutover(self, cutover: Cutover, timeout: float = READY_TIMEOUT_SECONDS) -> float:
        """Write the cutover file of its pipeline and wait until Airflow has parsed it; the seconds that took."""
        started = time.monotonic()
        path = cutover.of.file(cutover_file())
        if read_cutover(path, cutover.of).to_text() != cutover.to_text():
            write_cutover(path, cutover)
        wanted = set(cutover.in_dagster())
        shadows = {shadow_task_id(step) for step in cutover.shadowed()}
        with self.client() as client:

            def parsed() -> bool:
                operators = client.task_operators(cutover.of.names.dag_id)
                proxied = {task for task, kind in operators.items() if kind == PROXY_OPERATOR}
                shadowing = {task for task, kind in operators.items() if kind == SHADOW_OPERATOR}
                return proxied == wanted and shadowing == shadows

            poll_until(
                parsed,
                timeout=timeout,
                interval=1,
                timed_out=lambda: StackError(f"Airflow did not parse the cutover {sorted(wanted)} in {timeout:.0f} s"),
            )
        return time.monotonic() - started

    # internals -------------------------------------------------------------------------------
    def _ensure_secrets(self) -> None:
        if not self.secret_file.exists():
            _write_private(self.secret_file, secrets.token_urlsafe(32))
        passwords = json.loads(self.password_file.read_text()) if self.password_file.exists() else {}
        missing = {user: secrets.token_urlsafe(18) for user in USERS if user not in passwords}
        if missing:
            _write_private(self.password_file, json.dumps({**passwords, **missing}))
        if ADMIN_USER in missing:
            Console(stderr=True).print(
                f"Airflow admin password (shown once, kept in {self.password_file}): {missing[ADMIN_USER]}",
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

    def _wait_for_dag(self, client: AirflowClient, processes: dict[str, subprocess.Popen[bytes]]) -> None:
        """Until the DAG processor has parsed the DAG (an import error fails fast)."""

        def parsed() -> bool:
            if client.dag_exists(NAMES.dag_id):
                return True
            errors = client.import_errors()
            if errors:
                raise StackError(f"Airflow could not import the DAG: {errors[0][-500:]}")
            return False

        late = f"the DAG {NAMES.dag_id} did not appear in Airflow within {READY_TIMEOUT_SECONDS} s"
        self.wait_until_ready(processes, parsed, READY_TIMEOUT_SECONDS, interval=1, timeout_message=late)

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _write_private(path: Path, text: str) -> None:
    """Owner-only from the first byte: the file is created with mode 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)
