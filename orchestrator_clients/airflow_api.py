"""Airflow's REST API v2, the calls we use, with a JWT from `POST /auth/token`.

Every call is safe to send again (reads, setting a state, triggers that carry their run id), so a
transport error or a server error is sent again under the busy-API policy. A 401 on a call means
the token expired: the client logs in once more and resends. Answers are parsed into records
holding only the fields we read, each optional unless it identifies the thing, so a field Airflow
adds, drops or leaves null (a manual run's `logical_date`) in a minor release does not break us.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from tenacity import RetryCallState, retry_if_exception_type, retry_if_result

from orchestrator_clients.airflow_records import Asset, AssetEvent, DagRun, TaskInstance
from orchestrator_clients.errors import OrchestratorApiError, first_line
from orchestrator_clients.retrying import busy_api_retrying

__all__ = ["AirflowClient", "Asset", "AssetEvent", "DagRun", "TaskInstance"]

API = "/api/v2"
# A busy SQLite database answers 500 "Database error" (database is locked).
TRANSIENT_STATUS_CODES = {500, 502, 503, 504}
LOG_TAIL_LINES = 30
PAGE_SIZE = 100


class AirflowClient:
    """The REST API v2 calls the control side and the adapters use, logged in as `user`."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 30) -> None:
        self.http = httpx.Client(base_url=url, timeout=timeout)
        self._user = user
        self._password = password
        try:
            self._login()
        except BaseException:
            self.http.close()
            raise

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    # transport -------------------------------------------------------------------------------
    def _login(self) -> None:
        response = self._request("POST", "/auth/token", json={"username": self._user, "password": self._password})
        if response.status_code not in (200, 201):
            detail = _login_detail(response, self._password)
            raise OrchestratorApiError(
                f"Airflow at {response.request.url} refused the login of {self._user!r} "
                f"({response.status_code} {response.reason_phrase}){f': {detail}' if detail else ''}",
                status=response.status_code,
            )
        token = response.json().get("access_token")
        if not token:
            raise OrchestratorApiError(f"Airflow at {response.request.url} answered the login without a token")
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call, sent again while the answer is a transient failure; the last answer is returned."""
        retrying = busy_api_retrying(
            retry_if_exception_type(httpx.TransportError) | retry_if_result(_transient),
            retry_error_callback=_last_answer,
        )
        try:
            response: httpx.Response = retrying(self.http.request, method, path, **kwargs)
        except httpx.TransportError as error:
            raise OrchestratorApiError(
                f"the Airflow API at {self.url} did not answer {method} {path}: {type(error).__name__}: {error}",
                transient=True,
            ) from None
        return response

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the API; an expired token is renewed once (a 401 again is an error)."""
        response = self._request(method, path, **kwargs)
        if response.status_code == 401:
            self._login()
            response = self._request(method, path, **kwargs)
            if response.status_code == 401:
                raise OrchestratorApiError(
                    f"Airflow at {response.request.url} refused a fresh token for {method} "
                    f"(401 {response.reason_phrase}): {first_line(_detail(response))}",
                    status=401,
                )
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a call under /api/v2; any error status raises OrchestratorApiError."""
        response = self.send(method, f"{API}{path}", **kwargs)
        _check(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params or None)

    # DAGs ------------------------------------------------------------------------------------
    def dag_exists(self, dag_id: str) -> bool:
        response = self.send("GET", f"{API}/dags/{dag_id}")
        if response.status_code == 404:
            return False
        _check(response)
        return True

    def import_errors(self) -> list[str]:
        """The stack traces of the DAG files Airflow could not import."""
        errors = self.get("/importErrors").get("import_errors") or []
        return [str(error.get("stack_trace", "")) for error in errors]

    def task_operators(self, dag_id: str) -> dict[str, str]:
        """The operator of each task of the DAG as Airflow last parsed it, by task id."""
        return {task["task_id"]: task["operator_name"] for task in self.get(f"/dags/{dag_id}/tasks")["tasks"]}

    def unpause(self, dag_id: str) -> None:
        """Writes only when the DAG is paused: concurrent runs would otherwise all queue for the database."""
        if self.get(f"/dags/{dag_id}").get("is_paused"):
            self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # runs ------------------------------------------------------------------------------------
    def trigger(self, dag_id: str, conf: Mapping[str, Any], run_id: str | None) -> tuple[str, bool]:
        """A new run, or (given the id of an existing run) that run: (run id, whether it existed).

        A new run's id is chosen here, the way Airflow names manual runs, so that sending the
        call again after a lost answer finds the same run (409) instead of starting a second one.
        """
        chosen = run_id or f"manual__{datetime.now(UTC).isoformat()}_{secrets.token_hex(5)}"
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf), "dag_run_id": chosen}
        response = self.send("POST", f"{API}/dags/{dag_id}/dagRuns", json=body)
        if response.status_code == 409:
            return chosen, run_id is not None
        if response.status_code >= 400:
            raise OrchestratorApiError(
                f"Airflow refused the run ({response.status_code}): {response.text[:300]}",
                status=response.status_code,
            )
        return str(response.json()["dag_run_id"]), False

    def retry_failed(self, dag_id: str, run_id: str) -> None:
        """Clear the run's failed tasks (and what follows them) so the scheduler runs them again."""
        body = {"dag_run_id": run_id, "only_failed": True, "dry_run": False, "include_downstream": True}
        self.call("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> DagRun:
        return DagRun.model_validate(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.dag_run(dag_id, run_id).state)

    def dag_runs(
        self,
        dag_id: str,
        *,
        updated_at_gte: datetime | None = None,
        order_by: str = "updated_at",
        page_size: int = PAGE_SIZE,
    ) -> Iterator[DagRun]:
        """The DAG's runs (`~` for every DAG's), page by page, updated at or after `updated_at_gte`."""
        params: dict[str, Any] = {"order_by": order_by}
        if updated_at_gte is not None:
            params["updated_at_gte"] = updated_at_gte.isoformat()
        for item in self._pages(f"/dags/{dag_id}/dagRuns", "dag_runs", params, page_size):
            yield DagRun.model_validate(item)

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return [TaskInstance.model_validate(item) for item in self._pages(path, "task_instances", {}, PAGE_SIZE)]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
        return {task.task_id: task for task in self.task_instances(dag_id, run_id)}

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """What the task returned (its `return_value` XCom), as JSON."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.get(path, deserialize="true", stringify="false")["value"]
        return json.loads(value) if isinstance(value, str) else value

    def log_tail(self, dag_id: str, run_id: str, task: TaskInstance, lines: int = LOG_TAIL_LINES) -> list[str]:
        """The last lines of the task's log of its latest try, structured entries made text."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task.task_id}/logs/{max(task.try_number, 1)}"
        answer = self.call("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        content = answer.get("content", [])
        entries = content if isinstance(content, list) else str(content).splitlines()
        text = [line for entry in entries for line in _log_line(entry).splitlines()]
        return [line for line in text if line.strip()][-lines:]

    # assets ----------------------------------------------------------------------------------
    def assets(self, *, name: str | None = None, uri: str | None = None) -> list[Asset]:
        """The assets named `name` and/or with URI `uri` exactly (Airflow's own filters match substrings)."""
        params = {key: value for key, value in (("name_pattern", name), ("uri_pattern", uri)) if value}
        found = [Asset.model_validate(item) for item in self._pages("/assets", "assets", params, PAGE_SIZE)]
        return [a for a in found if (name is None or a.name == name) and (uri is None or a.uri == uri)]

    def create_asset_event(self, asset_id: int, extra: Mapping[str, Any] | None = None) -> AssetEvent:
        """An event of the asset, as if a task had updated it: DAGs scheduled on it are triggered."""
        body = {"asset_id": asset_id, "extra": dict(extra or {})}
        return AssetEvent.model_validate(self.call("POST", "/assets/events", json=body))

    def asset_events(
        self, asset_id: int, *, order_by: Literal["timestamp", "-timestamp"] = "timestamp"
    ) -> Iterator[AssetEvent]:
        params = {"asset_id": asset_id, "order_by": order_by}
        for item in self._pages("/assets/events", "asset_events", params, PAGE_SIZE):
            yield AssetEvent.model_validate(item)

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[AssetEvent]:
        """The asset events Airflow linked to an asset-triggered run (its `triggering_asset_events`)."""
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")
        return [AssetEvent.model_validate(item) for item in answer.get("asset_events") or []]

    # internals -------------------------------------------------------------------------------
    def _pages(self, path: str, key: str, params: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        """Every item of a listing, fetched `page_size` at a time with limit and offset."""
        offset = 0
        while True:
            answer = self.get(path, **params, limit=page_size, offset=offset)
            items = answer.get(key) or []
            yield from items
            offset += len(items)
            total = answer.get("total_entries")
            # The server caps `limit` at its own maximum: a short page ends the listing only when
            # the total is not known.
            if not items or (offset >= total if isinstance(total, int) else len(items) < page_size):
                return


def _transient(response: httpx.Response) -> bool:
    return response.status_code in TRANSIENT_STATUS_CODES


def _last_answer(state: RetryCallState) -> httpx.Response:
    """After the last attempt: its answer for the caller to judge, or its transport error raised."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        request = response.request
        raise OrchestratorApiError(
            f"Airflow answered {response.status_code} {response.reason_phrase} to {request.method} {request.url}"
            f"{f': {detail}' if (detail := first_line(_detail(response))) else ''}",
            status=response.status_code,
            transient=response.status_code in TRANSIENT_STATUS_CODES,
        )


def _detail(response: httpx.Response) -> str:
    """FastAPI's `detail` when the body has one, else the body."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text
    if detail is None:
        return response.text
    return detail if isinstance(detail, str) else json.dumps(detail)


def _login_detail(response: httpx.Response, password: str) -> str:
    """Why a login was refused, without the password: a validation error's messages, never its input."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text
    if isinstance(detail, list):
        detail = "; ".join(str(item.get("msg", "")) for item in detail if isinstance(item, dict))
    text = first_line(str(detail or ""))
    return text.replace(password, "***") if password else text


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    parts = [str(entry.get(key, "")) for key in ("timestamp", "level", "event") if entry.get(key)]
    errors = [f"{error.get('exc_type')}: {error.get('exc_value')}" for error in entry.get("error_detail") or []]
    return "\n".join([" ".join(parts), *errors])
