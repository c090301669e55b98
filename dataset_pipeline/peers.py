"""What each orchestrator shows of the versions the other made, read through its own public API.

Dagster learns of Airflow's runs from its sensor (the published dataset's materializations that
name an Airflow run); Airflow learns of every other version from its watcher (the `dataset` Asset's
events). Both poll, so a version made a moment ago may take a few seconds to appear.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import dataclass

from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.dagster_api import DagsterClient
from orchestrator_clients.retrying import poll_until
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import STEPS

PUBLISHED_ASSET = NAMES.asset_key(STEPS["push_data"].output)


@dataclass(frozen=True)
class Seen:
    commit: str
    made_by: str
    run_id: str | None


def dagster_sees(client: DagsterClient) -> dict[str, Seen]:
    """The versions Dagster holds as Airflow's: materializations its sensor reported for Airflow's runs."""
    seen = {}
    for event in client.asset_materializations(PUBLISHED_ASSET, limit=200):
        commit, run_id = event.metadata.get("commit"), event.metadata.get("airflow_run_id")
        if commit and run_id:
            seen[str(commit)] = Seen(str(commit), "airflow", str(run_id))
    return seen


def airflow_sees(client: AirflowClient) -> dict[str, Seen]:
    """The versions made elsewhere that Airflow's `dataset` Asset holds an event of (its watcher's)."""
    seen = {}
    for asset in client.assets(name=NAMES.airflow_asset):
        for event in client.asset_events(asset.id):
            payload = event.extra.get("payload")
            if isinstance(payload, dict) and payload.get("commit"):
                made_by = str(payload.get("orchestrator") or "hand")
                seen[str(payload["commit"])] = Seen(str(payload["commit"]), made_by, payload.get("run_id"))
    return seen


def wait_until_seen(
    look: Callable[[], dict[str, Seen]], commits: Collection[str], timeout: float = 90
) -> dict[str, Seen]:
    """What `look()` sees of `commits`, once it sees all of them (or what it saw when the time is up)."""
    found: dict[str, Seen] = {}

    def all_seen() -> bool:
        found.update({commit: seen for commit, seen in look().items() if commit in commits})
        return set(commits) <= set(found)

    with contextlib.suppress(TimeoutError):
        poll_until(all_seen, timeout=timeout, interval=2, timed_out=lambda: TimeoutError())
    return found
