"""The Dagster definitions: `dagster definitions validate -m dagster_assets.definitions`.

Locally every step runs in the run's own process (a launch takes seconds, not the 15 s of the
multiprocess executor); on the cluster, with PIPELINE_EXECUTOR=k8s, each step gets its own pod.
Locally the same job also exists with a process per step (`dataset_pipeline_process_per_step`, the
multiprocess executor, spawning each step as the cluster starts a pod): what `compare` measures
Dagster by, beside Airflow's process per task.
"""

import dagster as dg

from dagster_assets.assets import changed_dataset, dataset_head, published_dataset, pulled_dataset
from dagster_assets.checks import CHECKS
from dagster_assets.declared_pipelines import DeclaredPipelineSettings, declared_definitions, pipeline_schedules
from dagster_assets.k8s import k8s_executor_config
from dagster_assets.peering import airflow_runs_sensor
from dagster_assets.resources import RESOURCES, DagsterSettings
from shared_tasks.project.names import NAMES

PIPELINE_ASSETS = dg.AssetSelection.assets(pulled_dataset, changed_dataset, published_dataset)


def step_executor() -> dg.ExecutorDefinition:
    """In-process locally; with PIPELINE_EXECUTOR=k8s, one Kubernetes Job per step."""
    if DagsterSettings().executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config())
    return dg.in_process_executor


# Locally, the three steps again with a process per step, and no asset checks: the same work as
# Airflow's DAG, for the comparison. On the cluster every run already has a pod per step.
dataset_pipeline_process_per_step = dg.define_asset_job(
    NAMES.process_per_step_job,
    selection=PIPELINE_ASSETS.without_checks(),
    executor_def=dg.multiprocess_executor,
    description="The pipeline with each step in a process of its own (as a pod per step on the cluster)",
)
LOCAL_ONLY_JOBS = [] if DagsterSettings().executor == "k8s" else [dataset_pipeline_process_per_step]


dataset_pipeline = dg.define_asset_job(
    NAMES.dagster_job,
    selection=PIPELINE_ASSETS,
    description="Pull, modify and push the dataset: one new version per run",
)
published_dataset_checks = dg.define_asset_job(
    NAMES.checks_job,
    selection=dg.AssetSelection.checks_for_assets(published_dataset),
    description="The checks of a published version (the sensor of Airflow's runs asks for them)",
)
observe_dataset_head = dg.define_asset_job(
    NAMES.observe_job,
    selection=dg.AssetSelection.assets(dataset_head.key),
    description="Report the version at the branch head, whoever published it",
)

# The pipelines a team declares in its project file, beside the built-in one.
DECLARED = declared_definitions(DagsterSettings().peer_interval_seconds, process_per_step=bool(LOCAL_ONLY_JOBS))

defs = dg.Definitions(
    assets=[dataset_head, pulled_dataset, changed_dataset, published_dataset, *DECLARED.assets],
    asset_checks=[*CHECKS, *DECLARED.checks],
    jobs=[dataset_pipeline, *LOCAL_ONLY_JOBS, published_dataset_checks, observe_dataset_head, *DECLARED.jobs],
    schedules=[
        *pipeline_schedules(NAMES.schedule, dataset_pipeline, NAMES.dag_id),
        *DECLARED.schedules,
        dg.ScheduleDefinition(
            name=NAMES.observe_schedule,
            job=observe_dataset_head,
            cron_schedule=DagsterSettings().observe_schedule,
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
    ],
    sensors=[
        airflow_runs_sensor(published_dataset_checks, DagsterSettings().peer_interval_seconds),
        *DECLARED.sensors,
    ],
    resources={**RESOURCES, "declared_settings": DeclaredPipelineSettings()},
    executor=step_executor(),
)
