"""The embedded local stack: everything on 127.0.0.1, all state in one folder.

Folder layout: s3/ (persisted S3 objects), origin.git (bare Git origin), work/ (run
workspaces, DVC cache and DVC site cache), settings.env (what the steps read), and per
service a log and a ready file holding its pid and port.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dataset_pipeline.process import StackError
from dataset_pipeline.s3_service import S3Service
from dataset_pipeline.s3server import FAKE_CREDENTIALS, s3_client
from dataset_pipeline.seed import create_origin
from shared_tasks.files import write_atomically
from shared_tasks.project.settings import ENV_PREFIX, Layout, Settings
from shared_tasks.run.generate import SEED_DATASET_ROWS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from dataset_pipeline.outcome import RunOutcome
    from shared_tasks.project.declared import DeclaredPipeline

__all__ = ["LocalStack", "StackConfig", "StackError", "StackService", "parse_services"]

DEFAULT_STACK_DIR = ".stack"
DEFAULT_S3_PORT = 9000
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_DAGSTER_PORT = 3000
# Orchestrator services and the module providing each (its `Service` class).
SERVICE_MODULES = {"airflow": "dataset_pipeline.airflow_stack", "dagster": "dataset_pipeline.dagster_stack"}
DEFAULT_BUCKET = "dataset-pipeline"
LOCAL_RETRY_DELAY_SECONDS = "5"
REMOTE_PREFIX = "datasets"


class StackService(Protocol):
    """An orchestrator run by the stack: started after the origin exists, stopped before S3."""

    name: str

    def up(self) -> None: ...

    def down(self) -> None: ...

    def status(self) -> dict[str, Any]:
        """At least {"running": bool, "url": str, "pids": {role: pid}}."""
        ...

    def run_via(
        self,
        records: int,
        run_id: str | None,
        console: Console,
        pipeline: DeclaredPipeline | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RunOutcome:
        """Run the pipeline (the built-in one, or a declared one with its parameters) through the
        orchestrator's public API, follow it, return what it published."""
        ...


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
    # A project file whose pipelines the orchestrators serve beside the built-in one (`up --project`).
    project_file: Path | None = None

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
        if env.get(f"{ENV_PREFIX}PROJECT_FILE"):
            values["project_file"] = env[f"{ENV_PREFIX}PROJECT_FILE"]
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["root"] = Path(values["root"]).resolve()
        if values.get("project_file") is not None:
            values["project_file"] = project_file_at(Path(values["project_file"]))
        return cls(**values)


def project_file_at(path: Path) -> Path:
    """The project file at `path`: the file itself, or the one a project folder holds."""
    from shared_tasks.project.declared import PROJECT_FILE_NAME

    path = path.expanduser().resolve()
    return path / PROJECT_FILE_NAME if path.is_dir() else path


def parse_services(text: str) -> tuple[str, ...]:
    """`airflow,dagster`, `dagster`, or `none`."""
    names = tuple(name.strip() for name in text.split(",") if name.strip() and name.strip() != "none")
    unknown = [name for name in names if name not in SERVICE_MODULES]
    if unknown:
        raise StackError(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICE_MODULES)} or none")
    return names


def service_factory(name: str) -> Callable[[LocalStack], StackService] | None:
    """The class of an orchestrator service, or None while it is not part of the product."""
    module_name = SERVICE_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    factory: Callable[[LocalStack], StackService] = module.Service
    return factory


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.root = config.root
        self.s3 = S3Service(self.root, config.s3_port)

    # paths ---------------------------------------------------------------------------------
    @property
    def origin(self) -> Path:
        return self.root / "origin.git"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.env"

    @property
    def project_record(self) -> Path:
        """Which project file the orchestrators were started with, for the next `up` and the CLI."""
        return self.root / "project"

    @property
    def project_file(self) -> Path | None:
        """The project file whose pipelines the stack's orchestrators serve (None: the built-in one only)."""
        if self.config.project_file is not None:
            return self.config.project_file
        return self._recorded_project()

    def project_env(self) -> dict[str, str]:
        """What the orchestrators' processes need to load the served project's pipelines."""
        project = self.project_file
        return {f"{ENV_PREFIX}PROJECT_FILE": str(project)} if project is not None else {}

    @property
    def s3_ready_file(self) -> Path:
        return self.s3.ready_file.path

    @property
    def s3_endpoint(self) -> str:
        return self.s3.url

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

    def settings(self, pipeline: DeclaredPipeline | None = None) -> Settings:
        """The built-in pipeline's settings on this stack, or a declared pipeline's."""
        env = self.settings_env()
        return Settings(
            git_url=env[f"{ENV_PREFIX}GIT_URL"],
            work_root=Path(env[f"{ENV_PREFIX}WORK_ROOT"]),
            s3_endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            layout=self.layout,
            project_file=None if pipeline is None else pipeline.project_file,
            pipeline_name=None if pipeline is None else pipeline.name,
        )

    @property
    def layout(self) -> Layout:
        """The origin's layout once it exists (a migration changes it), else the configured one.

        A head with no readable pointer (a foreign commit broke it) has the configured layout: the
        stack starts all the same, and `restore REV` mends the head."""
        if not (self.origin / "HEAD").exists():
            return self.config.layout
        from shared_tasks.project.redact import Redactor
        from shared_tasks.versioning.gitops import Git
        from shared_tasks.versioning.history import settings_for_commit
        from shared_tasks.versioning.tracked_pointer import PointerProblem

        probe = Settings(
            git_url=self.origin.as_uri(), work_root=self.root / "work", layout=self.config.layout, project_file=None
        )
        try:
            return settings_for_commit(probe, Git(probe, self.origin, Redactor([])), "refs/heads/main").layout
        except PointerProblem:
            return self.config.layout

    def services(self) -> list[StackService]:
        factories = [service_factory(name) for name in self.config.services]
        return [factory(self) for factory in factories if factory is not None]

    def service(self, name: str) -> StackService:
        """The orchestrator service `name` (configured or not: a stack may run it all the same)."""
        factory = service_factory(name) if name in SERVICE_MODULES else None
        if factory is None:
            raise StackError(f"{name} is not part of this installation")
        return factory(self)

    # lifecycle -----------------------------------------------------------------------------
    def up(self) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        self._serve_project()
        (self.root / ".gitignore").write_text("*\n")
        os.environ.update({k: v for k, v in FAKE_CREDENTIALS.items() if k not in os.environ})
        self.s3.up()
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
        self.s3.down()
        return self.status()

    def status(self) -> dict[str, Any]:
        running = self.s3.alive()
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
            "project_file": str(self.project_file) if self.project_file is not None else None,
            "services": services,
            **urls,
            "env": self.env(),
        }

    # internals -----------------------------------------------------------------------------
    def _recorded_project(self) -> Path | None:
        recorded = self.project_record.read_text(encoding="utf-8").strip() if self.project_record.exists() else ""
        return Path(recorded) if recorded else None

    def _serve_project(self) -> None:
        """Record the project asked for; one the running orchestrators do not serve is refused."""
        asked = self.config.project_file
        if asked is None:
            return  # whatever the stack served before, if anything
        from shared_tasks.project.declared import load_project

        load_project(asked)  # a bad project file: an error naming it and the field, before anything starts
        served = self._recorded_project()
        running = [service.name for service in self.services() if service.status()["running"]]
        if served != asked and running:
            raise StackError(
                f"{' and '.join(running)} already run{'s' if len(running) == 1 else ''} serving "
                f"{served or 'the built-in pipeline only'}; stop the stack (`dataset-pipeline stack down`) "
                f"to serve {asked}"
            )
        write_atomically(self.project_record, f"{asked}\n")

    def _write_settings_file(self) -> None:
        lines = [f"{key}={value}" for key, value in sorted(self.settings_env().items())]
        write_atomically(self.settings_file, "\n".join(lines) + "\n")

    def _ensure_bucket(self) -> None:
        client = s3_client(self.s3_endpoint)
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        if self.config.bucket not in existing:
            client.create_bucket(Bucket=self.config.bucket)
