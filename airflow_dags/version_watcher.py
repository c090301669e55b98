"""Every new version on the branch, whoever made it, becomes an event of Airflow's `dataset` Asset.

An asset watcher (Airflow's event-driven scheduling) runs this trigger in the triggerer: it reads
the branch's history from the Git origin every `poll_seconds` and yields one event per version it
has not announced, oldest first, with the version's record (commit, md5, rows, rows added,
orchestrator, run id, author) as the payload. Airflow keeps the event's `extra` as
`{"from_trigger": true, "payload": <record>}`. Versions Airflow's own DAG published are skipped:
its push task's outlet event announces those already, with the same record.

Why here and not a Dagster sensor posting to Airflow's API: Airflow then sees every version with
no Dagster running at all (the state a port is in right after a rollback), and needs no
credentials for another orchestrator. The watermark (the last commit announced) lives in Airflow's
asset state store, so a restarted triggerer neither repeats nor skips a version; it is advanced
after the event is yielded, so a triggerer killed in between announces that version again rather
than never (a repeated announcement only verifies a version twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from shared_tasks.project.names import ANNOUNCED_COMMIT_KEY
from shared_tasks.versioning.versions import VersionRecord

log = logging.getLogger(__name__)
ANNOUNCED_FIELDS = ("commit", "md5", "size", "rows", "rows_added", "orchestrator", "run_id", "author")


def announcement(record: Mapping[str, Any]) -> dict[str, Any]:
    """What an event of the `dataset` Asset says of a version, from the watcher or from the DAG's push."""
    return {key: record[key] for key in ANNOUNCED_FIELDS if key in record}


def announced_version(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """The version an asset event carries: a watcher's under `payload`, an outlet's at the top."""
    payload = extra.get("payload")
    return payload if isinstance(payload, Mapping) else extra


# The watermark of a branch first seen holding no version of the pipeline (a declared pipeline not yet
# adopted): every version after that is new, the adopted one too, however fast the next ones follow.
NO_VERSION_YET = "no-version-yet"


def unannounced(versions: Sequence[VersionRecord], announced: str | None) -> list[VersionRecord]:
    """The versions after `announced`, oldest first (newest-first history in, as `history` gives it).

    With no watermark yet, or one the branch no longer holds (the origin was replaced), nothing is
    announced: the newest version becomes the watermark, so history is never replayed as new. A
    branch first seen with no version of the pipeline has every later version announced.
    """
    commits = [version.commit for version in versions]
    if announced == NO_VERSION_YET:
        return list(reversed(versions))
    if announced is None or announced not in commits:
        return []
    return list(reversed(versions[: commits.index(announced)]))


class NewVersionTrigger(BaseEventTrigger):
    """The watcher of one pipeline's versions: a declared pipeline's (`pipeline`), or the built-in one's."""

    def __init__(
        self, poll_seconds: float = 30.0, skip_orchestrator: str = "airflow", pipeline: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.poll_seconds = poll_seconds
        self.skip_orchestrator = skip_orchestrator
        self.pipeline = pipeline
        self._memory: str | None = None  # where the watermark lives when no state store was given

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {"poll_seconds": self.poll_seconds, "skip_orchestrator": self.skip_orchestrator}
        if self.pipeline is not None:
            kwargs["pipeline"] = self.pipeline
        return (f"{__name__}.NewVersionTrigger", kwargs)

    async def _watermark(self) -> str | None:
        if self.asset_state_store is None:
            return self._memory
        value = await self.asset_state_store.aget(ANNOUNCED_COMMIT_KEY)
        return str(value) if value else None

    async def _advance(self, commit: str) -> None:
        self._memory = commit
        if self.asset_state_store is not None:
            await self.asset_state_store.aset(ANNOUNCED_COMMIT_KEY, commit)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from shared_tasks.project.settings import load_builtin_settings, load_settings
        from shared_tasks.versioning.history import history

        settings = load_settings(pipeline=self.pipeline) if self.pipeline else load_builtin_settings()
        while True:
            try:
                versions = await asyncio.to_thread(history, settings)
            except Exception as error:  # the origin unreachable for a while: try again next poll
                log.warning("cannot read the origin's history: %s", error)
                await asyncio.sleep(self.poll_seconds)
                continue
            announced = await self._watermark()
            if not versions and announced is None:
                await self._advance(NO_VERSION_YET)
            elif versions and announced != NO_VERSION_YET and announced not in {v.commit for v in versions}:
                await self._advance(versions[0].commit)
            for version in unannounced(versions, announced):
                if version.orchestrator != self.skip_orchestrator:
                    log.info("new version %s by %s", version.commit, version.orchestrator)
                    yield TriggerEvent(announcement(version.to_dict()))  # type: ignore[no-untyped-call]
                await self._advance(version.commit)
            await asyncio.sleep(self.poll_seconds)
