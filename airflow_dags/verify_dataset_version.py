"""DAG `verify_dataset_version`: every new version of the dataset, whoever made it, proven from the remote.

Scheduled on the `dataset` Asset, so it runs for the versions Airflow's own DAG publishes (its
push task's outlet event) and for every other one (the asset's watcher). A run verifies every
version published since the last one verified, not just those its triggering events name:
Airflow may fold a burst of events into one run that names only the first
(`airflow_dags/version_consumer.py`). Each version is taken from scratch: a fresh clone at its
commit, an empty DVC cache, its data pulled from the remote and compared with its pointer, as
`dataset-pipeline verify` does. A version that does not verify fails the run, naming the commit
and why, after the others of the run are verified; it is not verified again by a later run.
"""

from __future__ import annotations

from typing import Any

from airflow_dags.dataset_asset import dataset_asset
from airflow_dags.verifying import verify_dag
from shared_tasks.project.names import NAMES


def _builtin_settings() -> Any:
    from shared_tasks.project.settings import load_builtin_settings

    return load_builtin_settings()


dag = verify_dag(
    NAMES.verify_dag_id,
    dataset_asset,
    _builtin_settings,
    NAMES.dag_tag,
    "Verify each new version of the dataset from the remote",
    __doc__,
)
