"""A consumer of the `dataset` Asset takes every version after its watermark, once, whatever events its run names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_dags.version_consumer import every_new_version, pending_versions, watermark_key
from shared_tasks.project.names import NAMES
from shared_tasks.versioning.versions import VersionRecord

HISTORY = [f"c{n}" for n in range(6, 0, -1)]  # newest first, as history gives it


def version(commit: str) -> VersionRecord:
    return VersionRecord(
        commit=commit, time="t", md5="m", size=1, rows=1, rows_added=1, run_id="r", orchestrator="direct"
    )


VERSIONS = [version(commit) for commit in HISTORY]


class StateStore:
    """Airflow's asset state store as a task reads it (`asset_state_store[asset]`)."""

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)
        self.writes: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.writes.append((key, value))


def events(*commits: str, watcher: bool = True) -> dict[str, list[Any]]:
    """Triggering asset events as a task sees them: a watcher's record under `payload`, an outlet's at the top."""
    extra = [{"from_trigger": True, "payload": {"commit": c}} if watcher else {"commit": c} for c in commits]
    return {NAMES.airflow_asset: [SimpleNamespace(extra=e) for e in extra]}


@pytest.mark.parametrize("watermark", HISTORY)
@pytest.mark.parametrize("named", [(), ("c6",), ("c1",), ("c3", "c5"), ("gone",)])
def test_every_version_after_the_watermark_is_pending_oldest_first_whatever_the_run_names(
    watermark: str, named: tuple[str, ...]
) -> None:
    pending = [v.commit for v in pending_versions(VERSIONS, watermark, named)]
    assert pending == list(reversed(HISTORY[: HISTORY.index(watermark)]))


@pytest.mark.parametrize(
    ("named", "expected"),
    [((), ["c6"]), (("c4",), ["c4", "c5", "c6"]), (("c5", "c2"), ["c2", "c3", "c4", "c5", "c6"]), (("x",), ["c6"])],
)
def test_a_first_run_starts_at_the_oldest_version_it_names_else_at_the_newest(
    named: tuple[str, ...], expected: list[str]
) -> None:
    for watermark in (None, "a-commit-the-branch-no-longer-holds"):
        assert [v.commit for v in pending_versions(VERSIONS, watermark, named)] == expected


def test_a_burst_named_by_one_event_is_consumed_whole_and_each_version_once_across_runs() -> None:
    state = StateStore(**{watermark_key("verify"): "c2"})
    first = [v.commit for v in every_new_version(state, "verify", events("c3"), versions=VERSIONS)]
    assert first == ["c3", "c4", "c5", "c6"]
    assert state.writes == [(watermark_key("verify"), c) for c in first]  # advanced after each, in order
    again = [v.commit for v in every_new_version(state, "verify", events("c5", "c6", watcher=False), VERSIONS)]
    assert again == []


def test_the_watermark_passes_a_version_only_when_its_work_is_done() -> None:
    state = StateStore(**{watermark_key("verify"): "c4"})
    pending = every_new_version(state, "verify", None, versions=VERSIONS)
    assert next(pending).commit == "c5"
    assert state.values[watermark_key("verify")] == "c4"  # the worker dies here: c5 is still pending
    assert [v.commit for v in every_new_version(state, "verify", None, VERSIONS)] == ["c5", "c6"]


def test_consumers_keep_watermarks_of_their_own() -> None:
    state = StateStore(**{watermark_key("verify"): "c6", watermark_key("warehouse"): "c4"})
    assert [v.commit for v in every_new_version(state, "warehouse", None, versions=VERSIONS)] == ["c5", "c6"]
    assert [v.commit for v in every_new_version(state, "verify", None, versions=VERSIONS)] == []


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_a_consumer_needs_a_name_the_state_store_can_key(name: str) -> None:
    with pytest.raises(ValueError, match="consumer's name"):
        watermark_key(name)
