"""The embedded local stack: everything on 127.0.0.1, all state in one folder.

Folder layout: s3/ (persisted S3 objects), origin.git (bare Git origin), work/ (run
workspaces, DVC cache and DVC site cache), settings.env (what the steps read), and per
service a log and a ready file holding its pid and port.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tenacity import Retrying, retry_base, stop_after_delay, wait_random_exponential

from dataset_pipeline.s3server import FAKE_CREDENTIALS, LOOPBACK, s3_client
from dataset_pipeline.seed import create_origin
from shared_tasks.generate import SEED_DATASET_ROWS
from shared_tasks.settings import ENV_PREFIX, Layout, Settings

DEFAULT_STACK_DIR = ".stack"
DEFAULT_S3_PORT = 9000
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_DAGSTER_PORT = 3000
# Orchestrator services and the module providing each (`Service` class, `run_via` function).
SERVICE_MODULES = {"airflow": "dataset_pipeline.airflow_stack", "dagster": "dataset_pipeline.dagster_stack"}
DEFAULT_BUCKET = "dataset-pipeline"
LOCAL_RETRY_DELAY_SECONDS = "5"
REMOTE_PREFIX = "datasets"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


class StackError(RuntimeError):
    """The stack cannot be brought to the asked state; the message says why."""


class StackService(Protocol):
    """An orchestrator run by the stack: started after the origin exists, stopped before S3."""

    name: str

    def up(self) -> None: ...

    def down(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """At least {"running": bool, "url": str}."""
        ...


# Both orchestrators keep their state in SQLite here, which lets one writer in at a time: while
# others write, an API call can fail or answer late. Such calls are sent again for up to a minute.
BUSY_API_STOP = stop_after_delay(60)
BUSY_API_WAIT = wait_random_exponential(multiplier=0.5, max=8)


def busy_api_retrying(retry: retry_base, **options: Any) -> Retrying:
    """The one retry policy for calls to an orchestrator's API on the local stack."""
    return Retrying(stop=BUSY_API_STOP, wait=BUSY_API_WAIT, retry=retry, **options)


@dataclass(frozen=True)
class StackConfig:
    root: Path
    s3_port: int = DEFAULT_S3_PORT
    airflow_port: int = DEFAULT_AIRFLOW_PORT
    dagster_port: int = DEFAULT_DAGSTER_PORT
    bucket: str = DEFAULT_BUCKET
    seed_rows: int = SEED_DATASET_ROWS
    layout: Layout = Layout.SINGLE_FILE
    services: tuple[str, ...] = tuple(SERVICE_MODULES)

    @classmethod
    def from_environment(cls, **overrides: Any) -> StackConfig:
        env = os.environ
        values: dict[str, Any] = {
            "root": env.get("DATASET_PIPELINE_STACK_DIR", DEFAULT_STACK_DIR),
            "s3_port": int(env.get("DATASET_PIPELINE_S3_PORT", DEFAULT_S3_PORT)),
            "airflow_port": int(env.get("DATASET_PIPELINE_AIRFLOW_PORT", DEFAULT_AIRFLOW_PORT)),
            "dagster_port": int(env.get("DATASET_PIPELINE_DAGSTER_PORT", DEFAULT_DAGSTER_PORT)),
        }
        if "DATASET_PIPELINE_SERVICES" in env:
            values["services"] = parse_services(env["DATASET_PIPELINE_SERVICES"])
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["root"] = Path(values["root"]).resolve()
        return cls(**values)


def parse_services(text: str) -> tuple[str, ...]:
    """`airflow,dagster`, `dagster`, or `none`."""
    names = tuple(name.strip() for name in text.split(",") if name.strip() and name.strip() != "none")
    unknown = [name for name in names if name not in SERVICE_MODULES]
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICE_MODULES)} or none")
    return names


def service_module(name: str) -> Any | None:
    """The module implementing an orchestrator service, or None while it is not part of the product."""
    module_name = SERVICE_MODULES[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.root = config.root

    # paths ---------------------------------------------------------------------------------
    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.env"

    @property
    def s3_ready_file(self) -> Path:
        return self.root / "s3.ready"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self._s3_port()}"

    def _s3_port(self) -> int:
        ready = self._ready(self.s3_ready_file)
        return int(ready["port"]) if ready else self.config.s3_port

    @property
    def remote_url(self) -> str:
        return f"s3://{self.config.bucket}/{REMOTE_PREFIX}"

    def env(self) -> dict[str, str]:
        """What a plain `git clone` + `dvc pull` (or any S3 client) needs to reach this stack."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
            "DVC_SITE_CACHE_DIR": str(self.root / "work" / "dvc-site-cache"),
        }

    def settings_env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}GIT_URL": self.origin.as_uri(),
            f"{ENV_PREFIX}GIT_BRANCH": "main",
            f"{ENV_PREFIX}WORK_ROOT": str(self.root / "work"),
            f"{ENV_PREFIX}DVC_REMOTE": "storage",
            f"{ENV_PREFIX}DVC_REMOTE_URL": self.remote_url,
            f"{ENV_PREFIX}LAYOUT": self.layout.value,
            # Both orchestrators retry a failed step after seconds, not the cluster's 30 s.
            f"{ENV_PREFIX}RETRY_DELAY_SECONDS": LOCAL_RETRY_DELAY_SECONDS,
            **self.env(),
        }

    def settings(self) -> Settings:
        env = self.settings_env()
        return Settings(
            git_url=env[f"{ENV_PREFIX}GIT_URL"],
            work_root=Path(env[f"{ENV_PREFIX}WORK_ROOT"]),
            s3_endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            layout=self.layout,
        )

    @property
    def layout(self) -> Layout:
        """The origin's layout once it exists (a migration changes it), else the configured one."""
        if not (self.origin / "HEAD").exists():
            return self.config.layout
        from shared_tasks.gitops import Git
        from shared_tasks.history import settings_for_commit
        from shared_tasks.redact import Redactor

        probe = Settings(git_url=self.origin.as_uri(), work_root=self.root / "work", layout=self.config.layout)
        return settings_for_commit(probe, Git(probe, self.origin, Redactor([])), "refs/heads/main").layout

    def services(self) -> list[StackService]:
        found = []
        for name in self.config.services:
            module = service_module(name)
            if module is not None:
                factory: Callable[[LocalStack], StackService] = module.Service
                found.append(factory(self))
        return found

    # lifecycle -----------------------------------------------------------------------------
    def up(self) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".gitignore").write_text("*\n")
        os.environ.update({k: v for k, v in FAKE_CREDENTIALS.items() if k not in os.environ})
        if not self._s3_alive():
            self._start_s3()
        self._ensure_bucket()
        if not (self.origin / "HEAD").exists():
            os.environ["DVC_SITE_CACHE_DIR"] = self.env()["DVC_SITE_CACHE_DIR"]
            create_origin(self.settings(), self.origin, self.remote_url, rows=self.config.seed_rows)
        self._write_settings_file()
        for service in self.services():
            service.up()
        return self.status()

    def down(self) -> dict[str, Any]:
        for service in self.services():
            service.down()
        ready = self._ready(self.s3_ready_file)
        if ready:
            stop_process(int(ready["pid"]))
            self.s3_ready_file.unlink(missing_ok=True)
        return self.status()

    def status(self) -> dict[str, Any]:
        running = self._s3_alive()
        services: dict[str, Any] = {"s3": {"running": running, "url": self.s3_endpoint}}
        urls = {}
        for service in self.services():
            services[service.name] = service.status()
            urls[f"{service.name}_url"] = services[service.name]["url"]
        return {
            "running": running,
            "stack_dir": str(self.root),
            "git_url": self.origin.as_uri(),
            "git_branch": "main",
            "s3_endpoint": self.s3_endpoint,
            "bucket": self.config.bucket,
            "dvc_remote_url": self.remote_url,
            "settings_file": str(self.settings_file),
            "services": services,
            **urls,
            "env": self.env(),
        }

    # internals -----------------------------------------------------------------------------
    def _write_settings_file(self) -> None:
        lines = [f"{key}={value}" for key, value in sorted(self.settings_env().items())]
        tmp = self.settings_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.settings_file)

    @staticmethod
    def _ready(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if pid_alive(int(data.get("pid", 0))) else None

    def _s3_alive(self) -> bool:
        if self._ready(self.s3_ready_file) is None:
            return False
        try:
            with urllib.request.urlopen(f"{self.s3_endpoint}/moto-api/", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def _start_s3(self) -> None:
        self.s3_ready_file.unlink(missing_ok=True)
        log_path = self.root / "s3.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dataset_pipeline.s3server",
                    "--port",
                    str(self.config.s3_port),
                    "--state-dir",
                    str(self.root / "s3"),
                    "--ready-file",
                    str(self.s3_ready_file),
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                hint = ""
                if any("Address already in use" in line for line in tail):
                    hint = f" (port {self.config.s3_port} is in use: choose another with --s3-port)"
                raise StackError(f"the S3 API did not start{hint}: {' | '.join(tail)}")
            if self.s3_ready_file.exists() and self._s3_alive():
                return
            time.sleep(0.1)
        stop_process(process.pid)
        raise StackError(f"the S3 API did not become ready in {START_TIMEOUT_SECONDS} s; see {log_path}")

    def _ensure_bucket(self) -> None:
        client = s3_client(self.s3_endpoint)
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        if self.config.bucket not in existing:
            client.create_bucket(Bucket=self.config.bucket)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(pid: int) -> None:
    """SIGTERM, wait, then SIGKILL: `down` must really stop what `up` started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished == pid:
                return
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_process_group(pgid: int) -> None:
    """A service and everything it forked (workers, code servers, task runners): SIGTERM, wait, SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    stop_process(pgid)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
