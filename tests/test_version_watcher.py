"""Airflow's watcher of the branch: each version made outside Airflow's DAG is announced once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_dags.version_watcher import NewVersionTrigger, announced_version, unannounced
from shared_tasks.project.names import ANNOUNCED_COMMIT_KEY
from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from shared_tasks.versioning.versions import VersionRecord
from tests.conftest import appended_record, foreign_commit


class StateStore:
    """Airflow's asset state store as the triggerer hands it to a watcher: async get and set."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._written = asyncio.Condition()

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        async with self._written:
            self.values[key] = value
            self._written.notify_all()

    async def until(self, holds: Callable[[dict[str, Any]], bool]) -> None:
        """Wait for the write after which `holds` is true of the store (at once if it already is)."""
        async with self._written:
            await self._written.wait_for(lambda: holds(self.values))


def version(commit: str) -> VersionRecord:
    return VersionRecord(
        commit=commit, time="t", md5="m", size=1, rows=1, rows_added=1, run_id="r", orchestrator="direct"
    )


def test_only_versions_after_the_watermark_are_new_oldest_first() -> None:
    history = [version("c3"), version("c2"), version("c1")]  # newest first, as history gives it
    assert [v.commit for v in unannounced(history, "c1")] == ["c2", "c3"]
    assert unannounced(history, "c3") == []
    assert unannounced(history, None) == []  # a first start does not replay the history
    assert unannounced(history, "gone") == []  # nor does a replaced origin


def test_an_announced_version_is_read_from_either_shape_of_event() -> None:
    record = {"commit": "c1", "md5": "m"}
    assert announced_version({"from_trigger": True, "payload": record}) == record  # the watcher's
    assert announced_version(record) == record  # the DAG's own outlet event


async def next_events(events: AsyncIterator[Any], count: int, timeout: float = 60) -> list[dict[str, Any]]:
    found = []
    for _ in range(count):
        found.append((await asyncio.wait_for(anext(events), timeout)).payload)
    return found


@pytest.mark.slow
def test_each_version_made_elsewhere_is_announced_once_across_a_restart(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_GIT_URL", settings.git_url)
    monkeypatch.setenv("PIPELINE_WORK_ROOT", str(settings.work_root))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", str(settings.s3_endpoint_url))
    store = StateStore()

    appended_row = appended_record(5000)

    async def settled(events: AsyncIterator[Any], head: str) -> None:
        """Let the watcher go on past its last event until its watermark is the head, as in a triggerer."""
        going_on = asyncio.ensure_future(anext(events))
        await asyncio.wait_for(store.until(lambda values: values.get(ANNOUNCED_COMMIT_KEY) == head), 60)
        going_on.cancel()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        watcher = NewVersionTrigger(poll_seconds=0.2)
        watcher.asset_state_store = store  # type: ignore[assignment]
        events = watcher.run()
        first_poll = asyncio.ensure_future(anext(events))
        # the first poll only sets the watermark
        await asyncio.wait_for(store.until(lambda values: ANNOUNCED_COMMIT_KEY in values), 60)
        await asyncio.to_thread(run_pipeline, settings, "direct-1")
        await asyncio.to_thread(run_pipeline, settings, "airflow-1", "airflow")  # announced by its outlet
        head = await asyncio.to_thread(foreign_commit, settings, tmp_path, appended_row)
        before_restart = [(await asyncio.wait_for(first_poll, 60)).payload, *await next_events(events, 1)]
        await settled(events, head)

        restarted = NewVersionTrigger(poll_seconds=0.2)  # a new triggerer: the same state store
        restarted.asset_state_store = store  # type: ignore[assignment]
        await asyncio.to_thread(run_pipeline, settings, "direct-2")
        after_restart = await next_events(restarted.run(), 1)
        return before_restart, after_restart

    before, after = asyncio.run(scenario())
    assert [(event["run_id"], event["orchestrator"]) for event in before] == [("direct-1", "direct"), (None, None)]
    assert before[1]["author"] == "A. Person <person@example.invalid>"  # the plain git + dvc commit
    assert [event["run_id"] for event in after] == ["direct-2"]
    assert {"commit", "md5", "rows", "rows_added", "orchestrator", "run_id"} <= set(after[0])


def test_a_pipeline_first_seen_with_no_version_has_every_later_one_announced_however_fast_they_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A declared pipeline not yet adopted: its adopted version and one published before the watcher's
    next poll are both new (taking the newest as the first watermark would lose the first of them)."""
    import shared_tasks.project.settings as settings_module
    import shared_tasks.versioning.history as history_module

    adopted, direct = version("c1").model_copy(update={"orchestrator": "adopt"}), version("c2")
    polls = iter([[], [direct, adopted]])  # newest first; then the same again, for good
    monkeypatch.setattr(settings_module, "load_builtin_settings", lambda: None)
    monkeypatch.setattr(history_module, "history", lambda settings: next(polls, [direct, adopted]))
    store = StateStore()

    async def scenario() -> list[dict[str, Any]]:
        watcher = NewVersionTrigger(poll_seconds=0.05)
        watcher.asset_state_store = store  # type: ignore[assignment]
        return await next_events(watcher.run(), 2, timeout=10)

    announced = asyncio.run(scenario())
    assert [event["commit"] for event in announced] == ["c1", "c2"], "the adopted version first, then the next"
