"""Every name the orchestrators know a pipeline by, derived in one place from the pipeline's name.

Airflow and Dagster address a pipeline by names: in the code of both sides, in the control side's
API calls, in the charts' values, in people's bookmarks and alerts. They are derived here and only
here, so that a second pipeline in the same deployment gets names of its own.

The rule, for a pipeline named P (ASCII letters and digits, a letter first, words joined by single
underscores, at most 64 characters: so every name below is a valid Airflow DAG id and Dagster name):

    Airflow DAG, its Asset's verify DAG    P_pipeline, verify_P_version
    Airflow Asset, the DAGs' tag           P
    Dagster job, its schedule              P_pipeline, P_pipeline_schedule
    the job with a process per step        P_pipeline_process_per_step (local stack only)
    the job of its steps' shadow checks    P_pipeline_shadow (a declared pipeline's)
    the checks job, the head's job         published_P_checks, observe_P_head (+ _schedule)
    Dagster asset group                    P
    Dagster asset keys                     P/<asset>, e.g. P/published_dataset
    Dagster pool of the publishing steps   P_pipeline
    Dagster sensor of Airflow's runs       P_airflow_runs
    the head observer's workspace          P-head-observer

Two pipelines never share a name of one kind: each name is P between a fixed prefix and suffix,
so it differs wherever P differs, and where one kind has several names their suffixes differ. An
op is named by its asset key joined with `__` (P__asset): as P holds no `__` and does not end in
`_`, the first `__` ends P, whatever the asset is called.

Today's pipeline is named `dataset`, and the rule gives it exactly the names it always had,
except two it keeps from before there could be a second pipeline: asset keys without a prefix
(`published_dataset`, never `dataset/published_dataset`; they cannot meet another pipeline's
keys, which all have two parts, nor its ops, as none of today's asset names holds `__`) and the
sensor `airflow_runs`.

Shared by every pipeline, so not derived: the Dagster code location (one per deployment, which
loads every pipeline's definitions) and the keys in an Airflow Asset's state store (each
pipeline's Asset has a store of its own). No Airflow pool is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEGACY_PIPELINE = "dataset"
# The Helm chart names a user deployment's location after the deployment (a Kubernetes name: no `_`).
CODE_LOCATION = "dataset-pipeline"
HEAD_ASSET = "dataset_head"  # the version at the branch head, observed (one per pipeline, under its prefix)
# Keys in a pipeline's Airflow Asset state store: the watcher's last announced commit, and each consumer's watermark.
ANNOUNCED_COMMIT_KEY = "announced_commit"
CONSUMER_WATERMARK_PREFIX = "consumed_by:"

MAX_PIPELINE_NAME_LENGTH = 64
PIPELINE_NAME = re.compile(r"[A-Za-z](?:_?[A-Za-z0-9])*")


class PipelineNameError(ValueError):
    """A pipeline name the orchestrators' names cannot be made from."""


def check_pipeline_name(pipeline: str) -> str:
    if len(pipeline) > MAX_PIPELINE_NAME_LENGTH or not PIPELINE_NAME.fullmatch(pipeline):
        raise PipelineNameError(
            f"pipeline name {pipeline!r} refused: it becomes Airflow DAG ids and Dagster names, so it must be"
            " ASCII letters and digits, a letter first, words joined by single underscores,"
            f" {MAX_PIPELINE_NAME_LENGTH} characters at most"
        )
    return pipeline


@dataclass(frozen=True)
class PipelineNames:
    """A pipeline's names in Airflow and Dagster (see the module's docstring for the rule)."""

    pipeline: str
    dag_id: str
    verify_dag_id: str
    airflow_asset: str
    dag_tag: str
    dagster_location: str
    dagster_job: str
    process_per_step_job: str
    shadow_job: str
    schedule: str
    checks_job: str
    observe_job: str
    observe_schedule: str
    asset_group: str
    asset_key_prefix: tuple[str, ...]
    publish_pool: str
    airflow_runs_sensor: str
    head_observer_run: str

    @classmethod
    def of(cls, pipeline: str) -> PipelineNames:
        """The names of the pipeline named `pipeline`; an invalid name is an error naming it."""
        check_pipeline_name(pipeline)
        legacy = pipeline == LEGACY_PIPELINE
        job = f"{pipeline}_pipeline"
        observe_job = f"observe_{pipeline}_head"
        return cls(
            pipeline=pipeline,
            dag_id=job,
            verify_dag_id=f"verify_{pipeline}_version",
            airflow_asset=pipeline,
            dag_tag=pipeline,
            dagster_location=CODE_LOCATION,
            dagster_job=job,
            process_per_step_job=f"{job}_process_per_step",
            shadow_job=f"{job}_shadow",
            schedule=f"{job}_schedule",
            checks_job=f"published_{pipeline}_checks",
            observe_job=observe_job,
            observe_schedule=f"{observe_job}_schedule",
            asset_group=pipeline,
            asset_key_prefix=() if legacy else (pipeline,),
            publish_pool=job,
            airflow_runs_sensor="airflow_runs" if legacy else f"{pipeline}_airflow_runs",
            head_observer_run=f"{pipeline}-head-observer",
        )

    def asset_key(self, asset: str) -> tuple[str, ...]:
        """The Dagster asset key (its path) of one of the pipeline's assets, e.g. a step's output."""
        return (*self.asset_key_prefix, asset)

    def op_name(self, asset: str) -> str:
        """The name of the op that materializes the asset: its key's parts joined as Dagster joins them
        (step keys in a run's stats, and the key of its config under `ops`)."""
        return "__".join(self.asset_key(asset))

    @property
    def head_asset_key(self) -> tuple[str, ...]:
        return self.asset_key(HEAD_ASSET)


NAMES = PipelineNames.of(LEGACY_PIPELINE)
