"""Dagster on the local stack: webserver and daemon on loopback, home under the stack folder.

Started like `dagster dev`, but as two processes of our own, each in its own process group with
default signal handlers restored (a `dagster dev` started in the background ignored SIGTERM), so
`stack down` really stops them and every code server they started. The control side talks to
Dagster only over HTTP (GraphQL), never by importing it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dataset_pipeline.process import LOOPBACK, ProcessService, StackError, process_environment
from orchestrator_clients.dagster_api import DagsterClient
from shared_tasks.project.names import NAMES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from dataset_pipeline.outcome import RunOutcome
    from dataset_pipeline.stack import LocalStack
    from shared_tasks.project.declared import DeclaredPipeline

DEFINITIONS_MODULE = "dagster_assets.definitions"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The code location loads in a code server the webserver starts; that takes a while on 2 cores.
LOAD_TIMEOUT_SECONDS = 180
PEER_INTERVAL_SECONDS = "10"
RUN_LAUNCHER_MODULE = "dagster_assets.run_launcher"
# A run's worker reports its start within seconds (about 4 s on a busy 2-core machine): one that has not
# in a minute is failed (and retried), so a run whose launch died with the daemon frees its slot.
RUN_START_TIMEOUT_SECONDS = 60
RUN_MONITORING_INTERVAL_SECONDS = 5
GUARDED_WEBSERVER = "dagster_assets.local_webserver"  # an Airflow run shows in Dagster within seconds here


def instance_config(home: Path) -> dict[str, Any]:
    """dagster.yaml: a 1 s run queue starting one publishing run at a time, run monitoring, state under `home`.

    Pools at run granularity count runs, not steps: a run holding a step of the pool keeps the
    next one queued until it ends, whichever page or schedule launched it.
    """
    return {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": 1},
        },
        "concurrency": {"pools": {"granularity": "run", "default_limit": 1}},
        # A run whose worker died (killed with the daemon that launched it, say) is failed by the
        # daemon's run monitoring, which frees its pool slot, and retried once with the same root
        # run, so the same workspace: the steps are idempotent per run id. The default launcher
        # cannot resume a run (max_resume_run_attempts 0) nor say whether its worker lives: this
        # one can (dagster_assets.run_launcher). Failed steps are retried by their own policy.
        "run_launcher": {"module": RUN_LAUNCHER_MODULE, "class": "MonitoredRunLauncher"},
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": RUN_START_TIMEOUT_SECONDS,
            "max_resume_run_attempts": 0,
            "poll_interval_seconds": RUN_MONITORING_INTERVAL_SECONDS,
        },
        "run_retries": {"enabled": True, "max_retries": 1, "retry_on_asset_or_op_failure": False},
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(home / "artifacts")},
        },
        "compute_logs": {
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(home / "logs")},
        },
        "telemetry": {"enabled": False},
    }


def workspace_config() -> dict[str, Any]:
    return {
        "load_from": [
            {
                "python_module": {
                    "module_name": DEFINITIONS_MODULE,
                    "location_name": NAMES.dagster_location,
                    "working_directory": str(PROJECT_ROOT),
                }
            }
        ]
    }


def _script(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"{name} is not installed: install the project with its `dagster` extra")
    return found


class Service(ProcessService):
    name = "dagster"
    title = "Dagster"
    port_option = "--dagster-port"

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.home = stack.root / "dagster"
        super().__init__(stack.root / "dagster.ready", stack.root, stack.config.dagster_port)

    def log_path(self, role: str) -> Path:
        return self.stack.root / f"dagster-{role}.log"

    def client(self) -> DagsterClient:
        return DagsterClient(self.url)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def status(self) -> dict[str, Any]:
        ready = self.running()
        running = ready is not None and self._answers()
        return {"running": running, "url": self.url, "home": str(self.home), "pids": ready.pids if ready else {}}

    def up(self) -> None:
        if self.running() is not None and self._answers():
            return
        self.down()  # whatever is left of an earlier start
        self.check_port_free()
        self._write_config()
        port = str(self.configured_port)
        workspace = str(self.home / "workspace.yaml")
        # One at a time: both would create the fresh instance storage, and its migrations race.
        # Dagster's webserver with a guard: no GraphQL mutation by GET, no other origin (dagster_assets).
        webserver = [
            sys.executable,
            "-m",
            "dagster_assets.local_webserver",
            "-h",
            LOOPBACK,
            "-p",
            port,
            "-w",
            workspace,
        ]
        processes = {"webserver": self._start("webserver", webserver)}
        self.ready_file.write({"webserver": processes["webserver"].pid}, self.configured_port)
        try:
            late = f"Dagster did not load {DEFINITIONS_MODULE} in {LOAD_TIMEOUT_SECONDS} s"
            late += f"; see {self.log_path('webserver')}"
            self.wait_until_ready(processes, self._location_loaded, LOAD_TIMEOUT_SECONDS, timeout_message=late)
            self.client().set_pool_limits()
            processes["daemon"] = self._start("daemon", [_script("dagster-daemon"), "run", "-w", workspace])
            self.ready_file.write({role: process.pid for role, process in processes.items()}, self.configured_port)
        except StackError:
            self.down()
            raise

    def down(self) -> None:
        self.stop()

    def run_via(
        self,
        records: int,
        run_id: str | None,
        console: Console,
        pipeline: DeclaredPipeline | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RunOutcome:
        from dataset_pipeline.dagster_runs import run_job

        return run_job(self.stack, self.client(), records, run_id, console, None, pipeline, params)

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(self.home), sort_keys=False))
        (self.home / "workspace.yaml").write_text(yaml.safe_dump(workspace_config(), sort_keys=False))

    def _start(self, role: str, command: list[str]) -> subprocess.Popen[bytes]:
        env = process_environment(
            **self.stack.settings_env(), **self.stack.project_env(), **self._peer_env(), DAGSTER_HOME=str(self.home)
        )
        return self.start_process(role, command, env=env, cwd=self.home)

    def _peer_env(self) -> dict[str, str]:
        """Where the Airflow of this stack is, and Dagster's login there: its sensor reads Airflow's runs."""
        if "airflow" not in self.stack.config.services:
            return {}
        from dataset_pipeline.airflow_stack import PEER_USER
        from dataset_pipeline.airflow_stack import Service as Airflow

        airflow = Airflow(self.stack)
        return {
            "PIPELINE_AIRFLOW_URL": f"http://{LOOPBACK}:{self.stack.config.airflow_port}",
            "PIPELINE_AIRFLOW_USERNAME": PEER_USER,
            "PIPELINE_AIRFLOW_PASSWORD": airflow.password_of(PEER_USER),
            "PIPELINE_PEER_INTERVAL_SECONDS": PEER_INTERVAL_SECONDS,
        }

    def _location_loaded(self) -> bool:
        if not self._answers():
            return False
        status = self.client().location_status(NAMES.dagster_location)
        if status.error is not None:
            raise StackError(f"Dagster could not load {DEFINITIONS_MODULE}: {status.error}")
        return status.loaded
