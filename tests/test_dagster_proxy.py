"""The trigger of a step cut over to Dagster: it fires when the Dagster run ends, and not too soon."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_dags.dagster_proxy import DagsterRunTrigger

STATES = ("QUEUED", "STARTED", "SUCCESS")


class FinishingRuns:
    """Dagster's answers about one run: queued, started, then its end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = iter(STATES)

    def run(self, run_id: str) -> Any:
        status = next(self.answers, "SUCCESS")
        return type("Run", (), {"run_id": run_id, "status": status, "finished": status == "SUCCESS"})()


def first_event(trigger: DagsterRunTrigger) -> tuple[dict[str, Any], float]:
    async def first() -> Any:
        async for event in trigger.run():
            return event

    started = time.monotonic()
    event = asyncio.run(first())
    return event.payload, time.monotonic() - started


@pytest.fixture(autouse=True)
def scripted_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("orchestrator_clients.dagster_api.DagsterClient", FinishingRuns)


def test_the_trigger_fires_with_the_runs_status_once_it_has_ended() -> None:
    payload, waited = first_event(DagsterRunTrigger("http://dagster", "run-1", poll_seconds=0.01))
    assert payload == {"run_id": "run-1", "status": "SUCCESS"}
    assert waited < 5


def test_a_run_that_ends_at_once_is_reported_no_sooner_than_the_scheduler_can_take_it() -> None:
    """Airflow 3.3's scheduler fails a resumed task whose defer-exit it has not processed yet."""
    not_before = time.time() + 0.5
    payload, waited = first_event(
        DagsterRunTrigger("http://dagster", "run-2", poll_seconds=0.01, not_before=not_before)
    )
    assert payload["status"] == "SUCCESS"
    assert time.time() >= not_before and waited >= 0.45


def test_the_trigger_serializes_everything_it_needs_to_resume_in_another_triggerer() -> None:
    trigger = DagsterRunTrigger("http://dagster", "run-3", poll_seconds=1.5, not_before=123.0)
    path, kwargs = trigger.serialize()
    assert path == "airflow_dags.dagster_proxy.DagsterRunTrigger"
    assert DagsterRunTrigger(**kwargs).serialize() == (path, kwargs)
    assert kwargs["not_before"] == 123.0
