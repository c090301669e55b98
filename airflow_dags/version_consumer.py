"""Consume every version of the `dataset` Asset exactly once, however Airflow grouped its events into runs.

Airflow does not make one run per asset event. Events that arrive while a run is being created,
or while the DAG is at `max_active_runs`, are queued as one entry and linked to whichever run is
made next, or to none (apache/airflow#56050, #54659): a burst of three announcements can give one
run that names only the first. So a consumer must not take its work from
`triggering_asset_events`. It takes it from the branch instead: every version after the newest
one it has consumed, a watermark kept per consumer in the Asset's state store.

That is complete because a version is on the branch before any event announces it (the watcher
reads the branch; the DAG's push commits before its outlet event is written), and the scheduler
drops a queued event only when it creates a run, whose tasks then start later and read the
branch. It is once per version because the watermark advances after each version is consumed and
the consuming DAG runs one run at a time (`max_active_runs=1`); a worker that dies between a
version's work and its watermark repeats that one version, never skips it.

Use it from a task of a DAG scheduled on the Asset, with the Asset as an inlet:

    @task(inlets=[dataset_asset])
    def load(asset_state_store=None, triggering_asset_events=None):
        for version in every_new_version(asset_state_store[dataset_asset], "load_into_warehouse",
                                         triggering_asset_events):
            ...  # the version's work; the watermark moves past it when the loop resumes
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from airflow_dags.version_watcher import announced_version
from shared_tasks.project.names import CONSUMER_WATERMARK_PREFIX
from shared_tasks.versioning.versions import VersionRecord


class StateStore(Protocol):
    """What a consumer needs of Airflow's asset state store accessor (`asset_state_store[asset]`)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


def watermark_key(consumer: str) -> str:
    """Each consumer its own watermark: two DAGs on the Asset do not consume each other's versions."""
    if not consumer or len(consumer) > 200:
        raise ValueError(f"a consumer's name must be 1 to 200 characters: {consumer!r}")
    return CONSUMER_WATERMARK_PREFIX + consumer


def announced_commits(events: Mapping[Any, Sequence[Any]] | None) -> list[str]:
    """The commits that the run's triggering asset events name (any asset, any shape of event)."""
    commits = []
    for found in (events or {}).values():
        for event in found:
            commit = announced_version(getattr(event, "extra", None) or {}).get("commit")
            if commit:
                commits.append(str(commit))
    return commits


def pending_versions(
    versions: Sequence[VersionRecord], watermark: str | None, announced: Iterable[str] = ()
) -> list[VersionRecord]:
    """The versions after `watermark`, oldest first, from the branch's history (newest first, as `history` gives it).

    With no watermark (a consumer's first run) or one the branch no longer holds (the origin was
    replaced), it starts at the oldest version an event of this run announced, else at the newest
    version: a new consumer does not replay history.
    """
    commits = [version.commit for version in versions]
    if watermark in commits:
        return list(reversed(versions[: commits.index(watermark)]))
    named = [commits.index(commit) for commit in announced if commit in commits]
    return list(reversed(versions[: max(named) + 1])) if named else list(versions[:1])


def every_new_version(
    state: StateStore,
    consumer: str,
    triggering_asset_events: Mapping[Any, Sequence[Any]] | None = None,
    versions: Sequence[VersionRecord] | None = None,
) -> Iterator[VersionRecord]:
    """Each version not yet consumed by `consumer`, oldest first; the watermark passes a version when the loop resumes.

    `versions` is the branch's history, newest first; read from the origin when not given.
    """
    key = watermark_key(consumer)
    if versions is None:
        from shared_tasks.project.settings import load_builtin_settings
        from shared_tasks.versioning.history import history

        versions = history(load_builtin_settings())
    stored = state.get(key)
    for version in pending_versions(
        versions, str(stored) if stored else None, announced_commits(triggering_asset_events)
    ):
        yield version
        state.set(key, version.commit)
