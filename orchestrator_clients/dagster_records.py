"""What Dagster's answers are parsed into, and how a job is named: only the fields we read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a `Definitions`
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
# Dagster's own run tags: a failed run it will retry, and the retry's link back to it.
WILL_RETRY_TAG = "dagster/will_retry"
PARENT_RUN_TAG = "dagster/parent_run_id"


class ApiRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class StepStats(ApiRecord):
    step_key: str = Field(alias="stepKey")
    status: str | None = None
    start_time: float | None = Field(default=None, alias="startTime")
    end_time: float | None = Field(default=None, alias="endTime")
    attempts: int = 0

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> StepStats:
        return cls.model_validate({**data, "attempts": len(data.get("attempts") or [])})


class DagsterRun(ApiRecord):
    run_id: str = Field(alias="runId")
    root_run_id: str | None = Field(default=None, alias="rootRunId")
    status: str
    step_stats: tuple[StepStats, ...] = ()
    tags: dict[str, str] = {}

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> DagsterRun:
        steps = tuple(StepStats.parse(step) for step in data.get("stepStats") or [])
        tags = {tag["key"]: tag["value"] for tag in data.get("tags") or []}
        return cls.model_validate({**data, "step_stats": steps, "tags": tags})

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def will_retry(self) -> bool:
        """Dagster's daemon will launch a retry of this failed run (its run retries judged it worth one)."""
        return self.status == "FAILURE" and self.tags.get(WILL_RETRY_TAG) == "true"


class RunSummary(ApiRecord):
    run_id: str = Field(alias="runId")
    status: str | None = None


@dataclass(frozen=True)
class JobSelector:
    """A job of a code location (its repository is the one a `Definitions` makes, unless named)."""

    location: str
    job: str
    repository: str = REPOSITORY_NAME

    def to_graphql(self) -> dict[str, Any]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository, "jobName": self.job}


@dataclass(frozen=True)
class LocationStatus:
    loaded: bool
    error: str | None = None


class Materialization(ApiRecord):
    """An asset's materialization: its run (empty when a sensor reported it), metadata values and tags."""

    run_id: str
    timestamp: float
    metadata: dict[str, Any]
    tags: dict[str, str]

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Materialization:
        metadata = {
            entry["label"]: next((entry[key] for key in ("text", "intValue", "boolValue", "url") if key in entry), None)
            for entry in data.get("metadataEntries") or []
        }
        tags = {tag["key"]: tag["value"] for tag in data.get("tags") or []}
        return cls(
            run_id=data.get("runId") or "", timestamp=float(data["timestamp"]) / 1000, metadata=metadata, tags=tags
        )


class SensorTick(ApiRecord):
    """One evaluation of a sensor: when it started and ended (epoch seconds), how it ended, its error."""

    tick_id: str = Field(alias="tickId")
    status: str
    timestamp: float
    end_timestamp: float | None = Field(default=None, alias="endTimestamp")
    error: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> SensorTick:
        return cls.model_validate({**raw, "error": (raw.get("error") or {}).get("message")})


class CheckExecution(ApiRecord):
    run_id: str
    status: str
    passed: bool | None
    metadata: dict[str, Any] = {}

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> CheckExecution:
        evaluation = data.get("evaluation") or {}
        metadata = {entry["label"]: metadata_value(entry) for entry in evaluation.get("metadataEntries") or []}
        return cls(run_id=data["runId"], status=data["status"], passed=evaluation.get("success"), metadata=metadata)


def metadata_value(entry: Mapping[str, Any]) -> Any:
    """A metadata entry's value as GraphQL gives it: text, a number, a boolean or parsed JSON."""
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    return next((entry[key] for key in ("text", "intValue", "floatValue", "boolValue") if key in entry), None)
