"""What Airflow's answers are parsed into: only the fields we read, each optional unless it names the thing.

A field Airflow adds, drops or leaves null in a minor release (a manual run's `logical_date`, a new
run state) still parses; extra fields are ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ApiRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class DagRun(ApiRecord):
    dag_run_id: str
    dag_id: str | None = None
    state: str | None = None  # a plain string: a state added in a minor release still parses
    run_type: str | None = None
    logical_date: datetime | None = None
    run_after: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: dict[str, Any] | None = None


class TaskInstance(ApiRecord):
    task_id: str
    state: str | None = None
    try_number: int = 0
    map_index: int = -1
    duration: float | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    pid: int | None = None  # the task's process, while it runs on a local executor


class Asset(ApiRecord):
    id: int
    name: str | None = None
    uri: str | None = None
    extra: dict[str, Any] | None = None


class AssetEvent(ApiRecord):
    id: int
    asset_id: int
    extra: dict[str, Any] = Field(default_factory=dict)
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    partition_key: str | None = None
    timestamp: datetime | None = None
