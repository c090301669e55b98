"""The one settings object, read from the environment.

Pods get these variables from the chart values, a settings ConfigMap and the
`git-credentials` Secret; the local stack writes the same names into an env file.
Credentials are only ever read from the environment and are kept as SecretStr so
they never show up in a repr, a log line or a serialised settings dump.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_tasks.project.declared import DeclaredPipeline, load_project

ENV_PREFIX = "PIPELINE_"


class Layout(StrEnum):
    """How the dataset is stored; the single CSV file is the original system's layout."""

    SINGLE_FILE = "single-file"
    PARTITIONED = "partitioned"


class Settings(BaseSettings):
    """Everything a step needs to know that is not in the run's workspace."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    git_url: str = Field(description="Origin repository (https://, ssh:// or file://); no credentials.")
    git_branch: str = "main"
    dataset_path: str = Field(
        default="data/employee_attrition.csv",
        description="Path of the DVC-tracked dataset inside the repository.",
    )
    dvc_remote: str = "storage"
    dvc_remote_url: str | None = Field(
        default=None,
        description="Overrides the remote's URL from the committed .dvc/config (s3://bucket/prefix).",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        description="Only for a local S3 API; unset on AWS.",
    )
    work_root: Path = Field(description="Shared volume: run workspaces live below it.")
    dvc_cache_dir: Path | None = Field(
        default=None, description="DVC cache shared by all runs; defaults to <work_root>/dvc-cache."
    )
    git_author_name: str = "dataset-pipeline"
    git_author_email: str = "dataset-pipeline@localhost"
    layout: Layout = Field(
        default=Layout.SINGLE_FILE,
        description="single-file: one CSV; partitioned: a directory of CSV parts named after the file's stem.",
    )
    part_rows: Annotated[int, Field(ge=1)] = 100_000
    push_attempts: Annotated[int, Field(ge=1, le=50)] = 8
    push_backoff_max_seconds: Annotated[float, Field(gt=0)] = 10.0
    upload_jobs: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4,
        description="Parallel transfers of dvc push; a large file goes up in 50 MB parts, this many in memory at once.",
    )
    publish_lease_seconds: Annotated[float, Field(ge=0)] = Field(
        default=120.0,
        description="How long a publisher waits for its turn on the shared volume; 0 publishes without turns.",
    )

    project_file: Path | None = Field(
        default=None,
        description="A team's project file (dataset-pipeline.toml or pyproject.toml) declaring its pipelines.",
    )
    pipeline_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PIPELINE_NAME", "pipeline_name"),
        description="Which declared pipeline this is (needed when the project file declares several).",
    )

    git_username: str | None = Field(
        default=None, validation_alias=AliasChoices("GIT_SYNC_USERNAME", "GITSYNC_USERNAME")
    )
    git_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GIT_SYNC_PASSWORD", "GITSYNC_PASSWORD")
    )

    @field_validator("git_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]+@", value, re.IGNORECASE) and "://git@" not in value:
            raise ValueError("git_url must not carry credentials; set GIT_SYNC_USERNAME and GIT_SYNC_PASSWORD")
        if not value.strip():
            raise ValueError("git_url is empty")
        return value

    @field_validator("dataset_path")
    @classmethod
    def _relative_dataset_path(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or not path.name:
            raise ValueError(f"dataset_path must be a relative path inside the repository, got {value!r}")
        return str(path)

    @field_validator("dvc_remote_url")
    @classmethod
    def _remote_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z0-9]+://", value):
            raise ValueError(f"dvc_remote_url must be a URL such as s3://bucket/prefix, got {value!r}")
        return value

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        if not self.work_root.is_absolute():
            raise ValueError(f"work_root must be an absolute path, got {str(self.work_root)!r}")
        if self.dvc_cache_dir is not None and not self.dvc_cache_dir.is_absolute():
            raise ValueError(f"dvc_cache_dir must be an absolute path, got {str(self.dvc_cache_dir)!r}")
        return self

    @model_validator(mode="after")
    def _the_declared_pipeline(self) -> Settings:
        """With a project file, these are the settings of one pipeline it declares (PIPELINE_NAME, or
        the file's only one): its name, dataset path and layout are the file's, whatever else says."""
        if self.project_file is None:
            return self
        declared = load_project(self.project_file).pipeline(self.pipeline_name)
        layout = Layout(declared.layout.value)
        for name, value in (("pipeline_name", declared.name), ("dataset_path", declared.dataset), ("layout", layout)):
            object.__setattr__(self, name, value)  # frozen: set once, while the object is made
        return self

    @property
    def cache_dir(self) -> Path:
        return self.dvc_cache_dir or self.work_root / "dvc-cache"

    @property
    def site_cache_dir(self) -> Path:
        return self.work_root / "dvc-site-cache"

    @property
    def publish_lease_file(self) -> Path:
        return self.work_root / "publish.lease"

    def data_relpath_for(self, layout: Layout) -> str:
        """Where the data lives in the repository: the file, or a directory named after its stem."""
        if layout is Layout.SINGLE_FILE:
            return self.dataset_path
        path = PurePosixPath(self.dataset_path)
        return str(path.with_suffix("")) if path.suffix else f"{path}.parts"

    @property
    def data_relpath(self) -> str:
        return self.data_relpath_for(self.layout)

    @property
    def pointer_path(self) -> str:
        return f"{self.data_relpath}.dvc"

    @property
    def pointer_paths(self) -> tuple[str, ...]:
        """This layout's pointer first, then the other's: history spans a migration."""
        others = [f"{self.data_relpath_for(layout)}.dvc" for layout in Layout if layout is not self.layout]
        return (self.pointer_path, *others)

    def for_pipeline(self, pipeline: str | None) -> Settings:
        """These settings for one pipeline of the project file: its name, dataset path and layout."""
        declared = self.declared(pipeline)
        return self.model_copy(
            update={
                "pipeline_name": declared.name,
                "dataset_path": declared.dataset,
                "layout": Layout(declared.layout.value),
            }
        )

    def declared(self, pipeline: str | None = None) -> DeclaredPipeline:
        """The declared pipeline these settings run; a ValueError when there is no project file."""
        if self.project_file is None:
            raise ValueError("no project file is set (PIPELINE_PROJECT_FILE)")
        return load_project(self.project_file).pipeline(pipeline or self.pipeline_name)

    @property
    def is_declared(self) -> bool:
        """Whether a team's project file declares this pipeline (else it is the built-in employee one)."""
        return self.project_file is not None

    def secret_values(self) -> list[str]:
        """Values that must never appear in output (used by the redactor)."""
        values = []
        if self.git_password is not None and self.git_password.get_secret_value():
            values.append(self.git_password.get_secret_value())
        return values


def load_settings(env_file: str | Path | None = None, pipeline: str | None = None) -> Settings:
    """Build settings from the environment; an env file only fills what the environment lacks.

    With a project file, the settings are those of one declared pipeline (`pipeline`, else
    PIPELINE_NAME, else the file's only one): its dataset path and layout are the file's.
    """
    chosen: dict[str, Any] = {} if pipeline is None else {"pipeline_name": pipeline}
    settings = Settings(_env_file=env_file, **chosen) if env_file is not None else Settings(**chosen)
    if settings.project_file is None and pipeline is not None:
        raise ValueError(f"pipeline {pipeline!r} is named, but no project file is set (PIPELINE_PROJECT_FILE)")
    return settings


def load_builtin_settings() -> Settings:
    """The built-in (employee) pipeline's settings, whatever project file is set: its DAG and assets
    run beside a team's declared pipelines, on the dataset the environment names."""
    return Settings(project_file=None, pipeline_name=None)


class OrchestrationSettings(BaseSettings):
    """What the orchestrators read when they load their definitions.

    Airflow's DAG processor and Dagster's code server import the definitions with no repository,
    workspace or credentials at hand, so this holds only what shapes the graph itself.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    schedule: str | None = Field(
        default="@daily", description="Cron expression or preset of the scheduled run; `none`: no schedule."
    )
    step_retries: Annotated[int, Field(ge=0, le=10)] = 2
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 30.0
    retry_delay_max_seconds: Annotated[float, Field(ge=0)] = 300.0
    dvc_remote: str = "storage"
    dvc_remote_url: str | None = None
    dataset_path: str = "data/employee_attrition.csv"
    cutover_file: Path | None = Field(
        default=None, description="Which orchestrator runs each step; default: cutover.yaml beside the DAG file."
    )
    project_file: Path | None = Field(
        default=None, description="A team's project file: each pipeline it declares gets its own DAG and assets."
    )
    announce_interval_seconds: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="How often Airflow's watcher reads the branch for versions made elsewhere."
    )

    @field_validator("schedule")
    @classmethod
    def _none_means_unscheduled(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in ("", "none") else value.strip()

    @property
    def dataset_uri(self) -> str:
        """The dataset as an asset URI: its place on the S3 remote, or the remote's name if unset."""
        if self.dvc_remote_url:
            return f"{self.dvc_remote_url.rstrip('/')}/{self.dataset_path}"
        return f"dvc://{self.dvc_remote}/{self.dataset_path}"
