"""Airflow's `dataset` Asset: its place on the S3 remote, and the watcher that announces every version."""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from airflow_dags.version_watcher import NewVersionTrigger
from shared_tasks.project.names import NAMES
from shared_tasks.project.settings import OrchestrationSettings

orchestration = OrchestrationSettings()
dataset_asset = Asset(
    name=NAMES.airflow_asset,
    uri=orchestration.dataset_uri,
    watchers=[
        AssetWatcher(
            name="new_versions_on_the_branch",
            trigger=NewVersionTrigger(poll_seconds=orchestration.announce_interval_seconds),
        )
    ],
)
