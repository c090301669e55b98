"""Dagster's GraphQL API over plain HTTP, the documents we send kept beside this module (graphql/).

A query that fails in transit or with a server error is sent again under the busy-API policy; a
mutation is sent once. A launch carries a tag of its own, so a launch whose answer was lost is
found by that tag instead of being sent again: sending it again would start a second run.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import httpx
from tenacity import retry_if_exception

from orchestrator_clients import dagster_waiting
from orchestrator_clients.dagster_records import (
    REPOSITORY_NAME,
    CheckExecution,
    DagsterRun,
    JobSelector,
    LocationStatus,
    Materialization,
    RunSummary,
    SensorTick,
    metadata_value,
)
from orchestrator_clients.errors import OrchestratorApiError, first_line
from orchestrator_clients.retrying import busy_api_retrying

__all__ = [
    "LAUNCH_TAG",
    "DagsterClient",
    "DagsterRun",
    "GraphQL",
    "JobSelector",
    "LocationStatus",
    "RunSummary",
    "document",
]

LAUNCH_TAG = "dataset-pipeline/launch"
# The client's waits (dagster_waiting): how long one run is waited for, how often it is looked at,
# and how long a failed run is looked at again until Dagster has said whether it retries it.
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.5
RETRY_VERDICT_SECONDS = 5.0


@cache
def document(name: str) -> str:
    """The GraphQL document graphql/<name>.graphql."""
    return resources.files(__package__).joinpath("graphql", f"{name}.graphql").read_text(encoding="utf-8")


def _is_mutation(query: str) -> bool:
    lines = (line.strip() for line in query.splitlines())
    return next((line for line in lines if line and not line.startswith("#")), "").startswith("mutation")


def _transient(error: BaseException) -> bool:
    return isinstance(error, OrchestratorApiError) and error.transient


class GraphQL:
    """One GraphQL endpoint; calling it with a document and variables returns the answer's data."""

    def __init__(self, url: str) -> None:
        self.endpoint = f"{url.rstrip('/')}/graphql"

    def __call__(self, query: str, timeout: float = 30, **variables: Any) -> dict[str, Any]:
        """The query's data. A query is sent again while it fails in transit or with a server error;
        a mutation is sent once: whether a launch may be sent again is for `launch_run` to find out.
        """
        body = {"query": query, "variables": variables}
        if _is_mutation(query):
            answer = self._send(body, timeout)
        else:
            answer = busy_api_retrying(retry_if_exception(_transient), reraise=True)(self._send, body, timeout)
        if answer.get("errors"):
            raise OrchestratorApiError(f"Dagster's GraphQL API said: {answer['errors'][0].get('message')}")
        data: dict[str, Any] = answer["data"]
        return data

    def _send(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            response = httpx.post(self.endpoint, json=body, timeout=timeout)
        except httpx.TransportError as error:
            raise OrchestratorApiError(
                f"Dagster's GraphQL API at {self.endpoint} did not answer: {type(error).__name__}: {error}",
                transient=True,
            ) from None
        if response.status_code >= 400:
            raise OrchestratorApiError(
                f"Dagster's GraphQL API at {self.endpoint} answered {response.status_code} "
                f"{response.reason_phrase}: {first_line(_error_text(response))}",
                status=response.status_code,
                transient=response.status_code >= 500,
            )
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            raise OrchestratorApiError(
                f"Dagster's GraphQL API at {self.endpoint} answered with no JSON: {first_line(response.text)}"
            ) from None
        return answer


def _error_text(response: httpx.Response) -> str:
    """A GraphQL error's message when the body carries one, else the body itself."""
    try:
        errors = response.json().get("errors")
        return str(errors[0]["message"])
    except (ValueError, AttributeError, LookupError, TypeError):
        return response.text


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


class DagsterClient:
    """The calls the control side and the adapters make to Dagster's webserver."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.graphql = GraphQL(self.url)

    # code locations and pools ----------------------------------------------------------------
    def location_status(self, name: str) -> LocationStatus:
        workspace = self.graphql(document("locations"))["workspaceOrError"]
        for entry in workspace.get("locationEntries") or []:
            if entry["name"] == name and entry["loadStatus"] == "LOADED":
                error = entry.get("locationOrLoadError") or {}
                failed = error.get("__typename") == "PythonError"
                return LocationStatus(loaded=True, error=error.get("message") if failed else None)
        return LocationStatus(loaded=False)

    def set_pool_limits(self) -> None:
        """Give each pool the assets use the instance's default limit now, before any run is queued.

        Dagster sets a pool's default limit when the queue first meets a run of that pool, but does
        not apply it in that same pass: two runs queued together on a fresh instance would both start.
        """
        answer = self.graphql(document("pools"))
        limit = answer["instance"]["poolConfig"]["defaultPoolLimit"]
        if limit is None:
            return
        known = {entry["concurrencyKey"] for entry in answer["instance"]["concurrencyLimits"]}
        for pool in sorted({pool for node in answer["assetNodes"] for pool in node["pools"]} - known):
            self.graphql(document("set_pool_limit"), pool=pool, limit=limit)

    # launching -------------------------------------------------------------------------------
    def launch_run(
        self,
        job: JobSelector,
        *,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        asset_selection: Sequence[Sequence[str]] | None = None,
        check_selection: Sequence[tuple[Sequence[str], str]] | None = None,
    ) -> str:
        """Launch a run of `job` once: only the assets of `asset_selection` (by key path) and the
        checks of `check_selection` (asset key path, check name) when given."""
        launch_tags = tag_list({**(tags or {}), LAUNCH_TAG: secrets.token_hex(8)})
        selector = job.to_graphql()
        if asset_selection is not None:
            selector["assetSelection"] = [{"path": list(path)} for path in asset_selection]
        if check_selection is not None:
            selector["assetCheckSelection"] = [
                {"assetKey": {"path": list(path)}, "name": name} for path, name in check_selection
            ]
        params = {
            "selector": selector,
            "runConfigData": dict(run_config or {}),
            "executionMetadata": {"tags": launch_tags},
        }
        return self._launch_once("launch_run", "launchRun", {"executionParams": params}, launch_tags)

    def reexecute(self, parent_run_id: str, tags: Mapping[str, str] | None = None) -> str:
        """Every step of run `parent_run_id` again, in a new run under the same root run, once."""
        launch_tags = tag_list({**(tags or {}), LAUNCH_TAG: secrets.token_hex(8)})
        variables = {"parentRunId": parent_run_id, "extraTags": launch_tags}
        return self._launch_once("reexecute_run", "launchRunReexecution", variables, launch_tags)

    def _launch_once(self, name: str, field: str, variables: dict[str, Any], tags: list[dict[str, str]]) -> str:
        """Send the launch; after a transient failure, look for the run it made by its tag before sending again."""
        for attempt in busy_api_retrying(retry_if_exception(_transient), reraise=True):
            with attempt:
                earlier = self.tagged_runs(tags) if attempt.retry_state.attempt_number > 1 else []
                return earlier[0] if earlier else _launched(self.graphql(document(name), **variables)[field])
        raise AssertionError("unreachable")  # pragma: no cover

    # runs ------------------------------------------------------------------------------------
    def runs_with_tags(
        self, tags: Mapping[str, str] | Sequence[Mapping[str, str]], limit: int | None = None
    ) -> list[RunSummary]:
        """Runs carrying every one of the tags, newest first, with their status."""
        listed = tag_list(tags) if isinstance(tags, Mapping) else [dict(tag) for tag in tags]
        found = self.graphql(document("tagged_runs"), tags=listed, limit=limit)["runsOrError"]
        if found["__typename"] != "Runs":
            raise OrchestratorApiError(f"Dagster could not list runs: {found.get('message', found['__typename'])}")
        return [RunSummary.model_validate(run) for run in found["results"]]

    def tagged_runs(self, tags: Sequence[Mapping[str, str]]) -> list[str]:
        """The ids of the runs carrying every one of the tags ({key, value} pairs)."""
        return [run.run_id for run in self.runs_with_tags(tags)]

    def sensor_ticks(self, location: str, sensor: str, limit: int = 20) -> list[SensorTick]:
        """The sensor's latest evaluations, newest first."""
        selector = {"repositoryLocationName": location, "repositoryName": REPOSITORY_NAME, "sensorName": sensor}
        found = self.graphql(document("sensor_ticks"), selector=selector, limit=limit)["sensorOrError"]
        if found["__typename"] != "Sensor":
            raise OrchestratorApiError(f"Dagster sensor {sensor}: {found.get('message', found['__typename'])}")
        return [SensorTick.parse(tick) for tick in (found.get("sensorState") or {}).get("ticks") or []]

    def run(self, run_id: str) -> DagsterRun:
        found = self.graphql(document("run"), runId=run_id)["runOrError"]
        if found["__typename"] != "Run":
            raise OrchestratorApiError(f"Dagster run {run_id}: {found.get('message', found['__typename'])}")
        return DagsterRun.parse(found)

    def wait_for_run(
        self,
        run_id: str,
        on_poll: Callable[[DagsterRun], None] | None = None,
        timeout: float = RUN_TIMEOUT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> DagsterRun:
        """The run once it has finished; `on_poll` sees it at every look."""
        return dagster_waiting.wait_for_run(self, run_id, on_poll, timeout, poll_seconds)

    def wait_for_run_or_its_retry(
        self,
        run_id: str,
        on_poll: Callable[[DagsterRun], None] | None = None,
        on_retry: Callable[[DagsterRun, str], None] | None = None,
        timeout: float = RUN_TIMEOUT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> DagsterRun:
        """The run once it has finished; when Dagster's run retries retry it, its last retry once finished."""
        return dagster_waiting.wait_for_run_or_its_retry(
            self, run_id, on_poll, on_retry, timeout, poll_seconds, verdict_seconds=RETRY_VERDICT_SECONDS
        )

    def retry_of(self, run_id: str, timeout: float = RUN_TIMEOUT_SECONDS, poll_seconds: float = POLL_SECONDS) -> str:
        """The id of the run Dagster launched to retry `run_id` (waiting for the daemon to launch it)."""
        return dagster_waiting.retry_of(self, run_id, timeout, poll_seconds)

    def events(self, run_id: str) -> list[dict[str, Any]]:
        answer = self.graphql(document("run_events"), runId=run_id)["logsForRun"]
        events: list[dict[str, Any]] = answer.get("events") or []
        return events

    def materialization_metadata(self, run_id: str, asset_key: Sequence[str]) -> dict[str, Any]:
        """The metadata values of the run's materialization of the asset (text, numbers, booleans, JSON)."""
        return self.run_materializations(run_id).get(tuple(asset_key), {})

    def run_materializations(self, run_id: str) -> dict[tuple[str, ...], dict[str, Any]]:
        """The metadata of every asset the run materialized, by asset key, read in one request."""
        found: dict[tuple[str, ...], dict[str, Any]] = {}
        for event in self.events(run_id):
            if event["__typename"] == "MaterializationEvent":
                values = found.setdefault(tuple(event["assetKey"]["path"]), {})
                values.update({entry["label"]: metadata_value(entry) for entry in event["metadataEntries"]})
        return found

    def asset_materializations(self, asset_key: Sequence[str], limit: int = 100) -> list[Materialization]:
        """The asset's latest materializations, newest first: from runs, or reported by a sensor (no run)."""
        answer = self.graphql(document("asset_materializations"), assetKey={"path": list(asset_key)}, limit=limit)
        found = answer["assetOrError"]
        if found["__typename"] != "Asset":
            return []
        return [Materialization.parse(event) for event in found.get("assetMaterializations") or []]

    def check_executions(self, asset_key: Sequence[str], check_name: str, limit: int = 100) -> list[CheckExecution]:
        """The latest executions of an asset check, newest first."""
        answer = self.graphql(
            document("check_executions"), assetKey={"path": list(asset_key)}, checkName=check_name, limit=limit
        )
        return [CheckExecution.parse(item) for item in answer.get("assetCheckExecutions") or []]

    def failure(self, run_id: str) -> str:
        """The failed step and its error (or the run's own error when no step failed)."""
        events = self.events(run_id)
        failed = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
        if failed:
            step = failed[-1]["stepKey"]
            # After retries, the failure only says so; the first attempt's error says why.
            retries = [
                e for e in events if e.get("stepKey") == step and e["__typename"] == "ExecutionStepUpForRetryEvent"
            ]
            error = (retries or failed)[0].get("error") or failed[-1].get("error") or {}
            retried = f" (after {len(retries)} retries)" if retries else ""
            return f"step {step} failed{retried}: {error.get('message', '').strip()}"
        runs = [e for e in events if e["__typename"] == "RunFailureEvent"]
        if runs:
            return str((runs[-1].get("error") or {}).get("message") or runs[-1]["message"])
        return "no failure event recorded"


def _launched(result: dict[str, Any]) -> str:
    if result["__typename"] != "LaunchRunSuccess":
        details = [error["message"] for error in result.get("errors", [])] or [result.get("message", "")]
        raise OrchestratorApiError(f"Dagster refused the run ({result['__typename']}): {'; '.join(details)}")
    return str(result["run"]["runId"])
