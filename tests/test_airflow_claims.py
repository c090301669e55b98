"""What a Dagster launch can claim: `airflow/*` tags only with Airflow's word, and no settings from launch config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._config.config_type import ConfigTypeKind

from dagster_assets import assets as assets_module
from dagster_assets.airflow_claims import (
    AirflowClaim,
    ClaimRefused,
    check_launch_tags,
    claimed_task,
    verify_claim,
)
from dagster_assets.definitions import defs
from dagster_assets.resources import PipelineSettings
from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.errors import OrchestratorApiError
from shared_tasks.project.cutover import (
    AIRFLOW_DAG_TAG,
    AIRFLOW_RUN_TAG,
    AIRFLOW_TAGS,
    AIRFLOW_TASK_TAG,
    AIRFLOW_TRY_TAG,
    DAGSTER_RUN_XCOM,
    LAUNCHING_OPERATOR,
)
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import STEPS, StepSpec
from shared_tasks.project.settings import Settings, load_settings
from tests.scripted_api import ScriptedApi

DAG = f"/api/v2/dags/{NAMES.dag_id}"
AIRFLOW_RUN = "manual__2026-12-02T12:00:00+00:00"
DAGSTER_RUN = "5d0c2e4a-8d6f-4b7e-9a51-0c3f6a1b2d3e"
STEP = "push_data"
ASSET = STEPS[STEP].output
TAGS = {AIRFLOW_DAG_TAG: NAMES.dag_id, AIRFLOW_RUN_TAG: AIRFLOW_RUN, AIRFLOW_TASK_TAG: STEP, AIRFLOW_TRY_TAG: "1"}
CLAIM = AirflowClaim(NAMES.dag_id, AIRFLOW_RUN, STEP, 1)


# the tags alone -------------------------------------------------------------------------------

FORGED: list[tuple[str, str | None]] = [
    (AIRFLOW_RUN_TAG, "../../x"),
    (AIRFLOW_RUN_TAG, "manual__1/../../x"),
    (AIRFLOW_RUN_TAG, "x" * 249),
    (AIRFLOW_RUN_TAG, "a b"),
    (AIRFLOW_RUN_TAG, ""),
    (AIRFLOW_DAG_TAG, "another_dag"),
    (AIRFLOW_TASK_TAG, "pull_data"),  # a real task, but not the step this run works on
    (AIRFLOW_TASK_TAG, "verify"),
    (AIRFLOW_TRY_TAG, "0"),
    (AIRFLOW_TRY_TAG, "-1"),
    (AIRFLOW_TRY_TAG, "one"),
    (AIRFLOW_TRY_TAG, "\u0661"),  # an Arabic-Indic one: a digit to str.isdigit, not a try number
    *[(tag, None) for tag in AIRFLOW_TAGS],  # each tag missing beside the others
]


def forged(tag: str, value: str | None) -> dict[str, str]:
    tags = dict(TAGS)
    if value is None:
        del tags[tag]
    else:
        tags[tag] = value
    return tags


@pytest.mark.parametrize(("tag", "value"), FORGED)
def test_every_forged_tag_is_refused_naming_it_before_airflow_is_asked(tag: str, value: str | None) -> None:
    assert claimed_task(TAGS, ASSET) == CLAIM  # the genuine tags pass this stage
    with pytest.raises(ClaimRefused) as refused:
        claimed_task(forged(tag, value), ASSET)
    assert refused.value.tag == tag and tag in str(refused.value.description)
    assert refused.value.allow_retries is False


def test_an_airflow_tag_the_task_does_not_set_is_refused() -> None:
    with pytest.raises(ClaimRefused, match="airflow/map_index"):
        claimed_task({**TAGS, "airflow/map_index": "0"}, ASSET)


def test_a_run_with_no_airflow_tag_is_dagsters_own_and_asks_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_AIRFLOW_URL", raising=False)
    assert check_launch_tags({"dagster/from_ui": "true", "team": "data"}, DAGSTER_RUN, ASSET) is False


def test_tags_cannot_be_honoured_where_airflow_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_AIRFLOW_URL", raising=False)
    with pytest.raises(ClaimRefused, match="not configured"):
        check_launch_tags(TAGS, DAGSTER_RUN, ASSET)


# Airflow's word -------------------------------------------------------------------------------


def script_airflow(
    api: ScriptedApi,
    *,
    run_state: str | None = "running",
    operator: str = LAUNCHING_OPERATOR,
    task_state: str | None = "deferred",
    try_number: int = 1,
    named: list[str | None] | None = None,
) -> None:
    """Airflow's answers about the claimed run and task; `named`: the XCom's successive values."""
    run = f"{DAG}/dagRuns/{AIRFLOW_RUN}"
    if run_state is not None:
        api.script[("GET", run)] = [(200, {"dag_run_id": AIRFLOW_RUN, "state": run_state})]
    tasks = [{"task_id": task, "operator_name": "PythonOperator"} for task in STEPS]
    tasks = [{**task, "operator_name": operator} if task["task_id"] == STEP else task for task in tasks]
    api.script[("GET", f"{DAG}/tasks")] = [(200, {"tasks": tasks, "total_entries": len(tasks)})]
    listed = [{"task_id": STEP, "state": task_state, "try_number": try_number}] if task_state else []
    api.script[("GET", f"{run}/taskInstances")] = [(200, {"task_instances": listed, "total_entries": len(listed)})]
    values = named if named is not None else [f"http://dagster.example/runs/{DAGSTER_RUN}"]
    api.script[("GET", f"{run}/taskInstances/{STEP}/xcomEntries/{DAGSTER_RUN_XCOM}")] = [
        (200, {"key": DAGSTER_RUN_XCOM, "value": value}) if value else (404, {"detail": "no XCom"}) for value in values
    ]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def verify(api: ScriptedApi, claim: AirflowClaim = CLAIM, time: FakeTime | None = None) -> FakeTime:
    time = time or FakeTime()
    with AirflowClient(api.url, "dagster-peer", "pw") as client:
        verify_claim(
            client, claim, DAGSTER_RUN, wait_seconds=5, poll_seconds=1, sleep=time.sleep, clock=lambda: time.now
        )
    return time


def test_the_task_that_launched_the_run_is_vouched_for(scripted_api: ScriptedApi) -> None:
    script_airflow(scripted_api)
    assert verify(scripted_api).slept == []


def test_a_retry_waiting_on_the_run_an_earlier_try_launched_is_vouched_for(scripted_api: ScriptedApi) -> None:
    script_airflow(scripted_api, try_number=2)
    verify(scripted_api)


def test_a_step_starting_before_its_task_named_the_run_waits_for_the_name(scripted_api: ScriptedApi) -> None:
    script_airflow(scripted_api, task_state="running", named=[None, None, f"http://d/runs/{DAGSTER_RUN}"])
    assert verify(scripted_api).slept == [1, 1]


@pytest.mark.parametrize(
    ("scripted", "tag", "reason"),
    [
        ({"run_state": None}, AIRFLOW_RUN_TAG, "no such run"),
        ({"run_state": "success"}, AIRFLOW_RUN_TAG, "not running"),
        ({"run_state": "failed"}, AIRFLOW_RUN_TAG, "not running"),
        ({"operator": "PythonOperator"}, AIRFLOW_TASK_TAG, "runs the step in Airflow itself"),
        ({"task_state": None}, AIRFLOW_TASK_TAG, "no such task"),
        ({"task_state": "success"}, AIRFLOW_TASK_TAG, "launching nothing"),
        ({"task_state": "up_for_retry"}, AIRFLOW_TASK_TAG, "launching nothing"),
        ({"task_state": "queued"}, AIRFLOW_TASK_TAG, "launching nothing"),
        ({"try_number": 0}, AIRFLOW_TRY_TAG, "at try 0"),
        ({"named": ["http://dagster.example/runs/another-run"]}, AIRFLOW_RUN_TAG, "another-run"),
        ({"named": [f"http://dagster.example/runs/{DAGSTER_RUN}-x"]}, AIRFLOW_RUN_TAG, "not on Dagster run"),
        ({"named": [None]}, AIRFLOW_RUN_TAG, "no Dagster run"),
        ({"task_state": "running", "named": [None]}, AIRFLOW_RUN_TAG, "no Dagster run"),  # after the wait
    ],
)
def test_a_claim_airflow_does_not_vouch_for_is_refused_naming_the_tag(
    scripted_api: ScriptedApi, scripted: dict[str, Any], tag: str, reason: str
) -> None:
    script_airflow(scripted_api, **scripted)
    time = FakeTime()
    with pytest.raises(ClaimRefused) as refused:
        verify(scripted_api, time=time)
    assert refused.value.tag == tag and reason in str(refused.value.description)
    assert time.now <= 5


@pytest.mark.usefixtures("no_waiting")
def test_an_airflow_that_cannot_answer_leaves_the_step_to_its_retries(scripted_api: ScriptedApi) -> None:
    script_airflow(scripted_api)
    scripted_api.script[("GET", f"{DAG}/dagRuns/{AIRFLOW_RUN}")] = [(503, "unavailable")]
    with pytest.raises(OrchestratorApiError) as error:
        verify(scripted_api)
    assert error.value.transient and not isinstance(error.value, ClaimRefused)


def test_the_names_dagster_checks_are_the_ones_airflows_task_uses() -> None:
    from airflow_dags.dagster_proxy import RUN_URL_XCOM, DagsterStepOperator

    assert (DagsterStepOperator.__name__, RUN_URL_XCOM) == (LAUNCHING_OPERATOR, DAGSTER_RUN_XCOM)


# a step launched with the tags ------------------------------------------------------------------


class NoSettings(PipelineSettings):
    def load(self) -> Settings:
        raise AssertionError("the settings were read")


def launch_step(tags: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[dg.ExecuteInProcessResult, list[Any]]:
    """The first step launched in-process with `tags`; what the step itself was asked to do."""
    asked: list[Any] = []

    def recorded(self: StepSpec, settings: Settings, run_id: str, inputs: Any) -> Any:
        asked.append((run_id, inputs.orchestrator))
        raise dg.Failure("recorded", allow_retries=False)

    monkeypatch.setattr(StepSpec, "run", recorded)
    monkeypatch.setattr(NoSettings, "load", lambda self: Settings.model_construct(git_url="x"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [assets_module.pulled_dataset],
            tags=tags,
            instance=instance,
            resources={"pipeline_settings": NoSettings()},
            raise_on_error=False,
        )
    return result, asked


def test_a_launch_tagged_for_a_forged_airflow_run_fails_at_once_naming_the_tag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forged_tags = {**TAGS, AIRFLOW_RUN_TAG: "../../x", AIRFLOW_TASK_TAG: "pull_data"}
    result, asked = launch_step(forged_tags, monkeypatch)
    assert not result.success and asked == []
    (failure,) = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "tag airflow/run_id='../../x' refused" in str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]

    # Without the check the tags were taken at their word: the step worked in the run "../../x" as Airflow's.
    monkeypatch.setattr(assets_module, "check_launch_tags", lambda tags, *_: AIRFLOW_RUN_TAG in tags)
    _, asked = launch_step(forged_tags, monkeypatch)
    assert asked == [("../../x", "airflow")]


def test_a_vouched_launch_acts_for_airflow_and_an_untagged_one_for_dagster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets_module, "check_launch_tags", lambda tags, *_: AIRFLOW_RUN_TAG in tags)
    _, asked = launch_step({**TAGS, AIRFLOW_TASK_TAG: "pull_data"}, monkeypatch)
    assert asked == [(AIRFLOW_RUN, "airflow")]
    result, asked = launch_step({}, monkeypatch)
    assert asked == [(result.run_id, "dagster")]


# settings are not launch config -----------------------------------------------------------------


def launch_config_fields(definitions: dg.Definitions) -> list[tuple[str, str, str]]:
    """(job, resource, field) for every config field a launch can set on any resource of any job."""
    found = []
    for job in definitions.resolve_all_job_defs():
        resources = job.run_config_schema.config_type.fields["resources"].config_type
        for name, resource in resources.fields.items():
            config = resource.config_type.fields.get("config")
            if config is None:
                continue
            kind = config.config_type.kind  # a permissive shape or Any would take keys no one listed
            assert kind is ConfigTypeKind.STRICT_SHAPE, f"{job.name}: resource {name} takes {kind} config"
            found += [(job.name, name, field) for field in config.config_type.fields]  # type: ignore[attr-defined]
    return found


JOBS_AND_RESOURCES = [
    (job.name, name) for job in defs.resolve_all_job_defs() for name in sorted(job.resource_defs) if name
]


def test_the_listing_finds_a_resource_field_a_launch_could_set() -> None:
    class SettingsFromAFile(dg.ConfigurableResource):  # the resource as it was
        env_file: str | None = None

    loose = dg.Definitions(assets=[assets_module.pulled_dataset], resources={"pipeline_settings": SettingsFromAFile()})
    assert ("__ASSET_JOB", "pipeline_settings", "env_file") in launch_config_fields(loose)
    assert ("__ASSET_JOB", "io_manager", "base_dir") in launch_config_fields(loose)  # Dagster's default


def test_no_resource_of_any_job_takes_config_from_a_launch() -> None:
    assert launch_config_fields(defs) == []
    assert {resource for _, resource in JOBS_AND_RESOURCES} >= {"pipeline_settings", "io_manager"}


@pytest.mark.parametrize(("job_name", "resource"), JOBS_AND_RESOURCES)
@pytest.mark.parametrize("key", ["env_file", "base_dir", "git_author_name", "git_url"])
def test_a_launch_setting_any_resource_config_is_refused(job_name: str, resource: str, key: str) -> None:
    job = defs.resolve_job_def(job_name)
    with pytest.raises(dg.DagsterInvalidConfigError, match=key):
        dg.validate_run_config(job, {"resources": {resource: {"config": {key: "/tmp/elsewhere"}}}})


def test_an_env_file_is_what_set_the_commit_author(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why a launch must not name one: the file the old `env_file` config named chose the author."""
    monkeypatch.delenv("PIPELINE_GIT_AUTHOR_NAME", raising=False)
    chosen = tmp_path / "any.env"
    chosen.write_text(f"PIPELINE_GIT_URL=/x\nPIPELINE_WORK_ROOT={tmp_path}\nPIPELINE_GIT_AUTHOR_NAME=mallory\n")
    assert load_settings(chosen).git_author_name == "mallory"
    monkeypatch.setenv("PIPELINE_GIT_URL", "/x")
    monkeypatch.setenv("PIPELINE_WORK_ROOT", str(tmp_path))
    assert PipelineSettings().load().git_author_name != "mallory"
