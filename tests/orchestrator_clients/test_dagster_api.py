"""Dagster's GraphQL client against a scripted API: reads wait out a busy server, a launch makes one run.

The launches are the control side's own (`dataset_pipeline.dagster_runs.launch`), not a copy of it."""

from __future__ import annotations

from typing import Any

import pytest

from dataset_pipeline.dagster_runs import launch
from orchestrator_clients import OrchestratorApiError
from orchestrator_clients.dagster_api import LAUNCH_TAG, DagsterClient, GraphQL, JobSelector, document
from tests.scripted_api import ATTEMPTS, ScriptedApi

pytestmark = pytest.mark.usefixtures("no_waiting")

ENDPOINT = ("POST", "/graphql")
SERVER_ERROR = (500, {"error": "database is locked"})
RUN = {"runOrError": {"__typename": "Run", "runId": "r1", "status": "STARTED"}}
RUN_QUERY = document("run")
LAUNCH_MUTATION = document("launch_run")
JOB = JobSelector("dataset_pipeline", "dataset_pipeline")
RUN_CONFIG = {"ops": {"changed_dataset": {"config": {"records": 2}}}}


def test_a_query_is_sent_again_after_a_server_error(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, SERVER_ERROR, (200, {"data": RUN})]
    assert GraphQL(scripted_api.url)(RUN_QUERY, runId="r1") == RUN
    assert len(scripted_api.sent(*ENDPOINT)) == 3


def test_a_query_that_keeps_failing_raises_the_last_error(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR]
    with pytest.raises(OrchestratorApiError, match="500"):
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")
    assert len(scripted_api.sent(*ENDPOINT)) == ATTEMPTS


def test_a_bad_query_is_not_sent_again(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [(400, {"errors": [{"message": "Cannot query field"}]})]
    with pytest.raises(OrchestratorApiError, match="400"):
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")
    assert len(scripted_api.sent(*ENDPOINT)) == 1


def test_a_mutation_is_sent_once_even_when_it_fails(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, (200, {"data": {}})]
    with pytest.raises(OrchestratorApiError, match="500"):
        GraphQL(scripted_api.url)(LAUNCH_MUTATION, executionParams={})
    assert len(scripted_api.sent(*ENDPOINT)) == 1


def launched(run_id: str) -> tuple[int, dict[str, object]]:
    return 200, {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": run_id}}}}


def tagged(*run_ids: str) -> tuple[int, dict[str, object]]:
    return 200, {"data": {"runsOrError": {"__typename": "Runs", "results": [{"runId": r} for r in run_ids]}}}


def launch_tags(body: dict[str, Any]) -> list[dict[str, str]]:
    variables = body["variables"]
    if "executionParams" in variables:
        return list(variables["executionParams"]["executionMetadata"]["tags"])
    return list(variables.get("extraTags") or variables["tags"])


def test_a_launch_whose_answer_was_lost_is_found_by_its_tag_not_launched_again(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, tagged("r9"), launched("never")]
    assert launch(DagsterClient(scripted_api.url), records=2, run_id=None) == "r9"
    sent, lookup = scripted_api.sent(*ENDPOINT)
    assert "launchRun" in sent["query"] and "runsOrError" in lookup["query"]
    assert launch_tags(sent) == launch_tags(lookup)
    assert [tag["key"] for tag in launch_tags(sent)] == [LAUNCH_TAG]


def test_a_launch_that_made_no_run_is_sent_again_with_the_same_tag(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, tagged(), launched("r2")]
    assert launch(DagsterClient(scripted_api.url), records=2, run_id=None) == "r2"
    first, _, second = scripted_api.sent(*ENDPOINT)
    assert first == second


def test_two_launches_carry_different_tags(scripted_api: ScriptedApi) -> None:
    client = DagsterClient(scripted_api.url)
    for run_id in ("r1", "r2"):
        scripted_api.script[ENDPOINT] = [launched(run_id)]
        assert launch(client, records=1, run_id=None) == run_id
    first, second = (launch_tags(body) for body in scripted_api.sent(*ENDPOINT))
    assert first != second


def test_a_re_execution_is_tagged_too(scripted_api: ScriptedApi) -> None:
    answer = {"launchRunReexecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r3"}}}
    scripted_api.script[ENDPOINT] = [(200, {"data": RUN}), (200, {"data": answer})]
    assert launch(DagsterClient(scripted_api.url), records=1, run_id="r1") == "r3"
    lookup, body = scripted_api.sent(*ENDPOINT)
    assert lookup["variables"] == {"runId": "r1"}  # a run id Dagster does not know fails before any launch
    assert body["variables"]["parentRunId"] == "r1"
    assert [tag["key"] for tag in launch_tags(body)] == [LAUNCH_TAG]


TRACEBACK = "Traceback (most recent call last):\n" + "".join(f'  File "x.py", line {n}\n' for n in range(223))


def test_an_http_error_is_one_line_with_its_status(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [(502, "Bad gateway: the code server went away\n" + TRACEBACK)]
    with pytest.raises(OrchestratorApiError) as raised:
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")
    message = str(raised.value)
    assert "\n" not in message and "502" in message and "the code server went away" in message
    assert f"{scripted_api.url}/graphql" in message and raised.value.status == 502


def test_a_graphql_error_answered_with_an_http_error_gives_its_message(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [(400, {"errors": [{"message": "Cannot query field 'runz'"}]})]
    with pytest.raises(OrchestratorApiError, match="400 Bad Request: Cannot query field 'runz'"):
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")


def test_a_launch_of_some_assets_carries_the_selection_and_the_tags(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [launched("r5")]
    client = DagsterClient(scripted_api.url)
    tags = {"airflow/run_id": "manual__1"}
    assert client.launch_run(JOB, run_config=RUN_CONFIG, tags=tags, asset_selection=[["changed_dataset"]]) == "r5"
    (body,) = scripted_api.sent(*ENDPOINT)
    selector = body["variables"]["executionParams"]["selector"]
    assert selector["assetSelection"] == [{"path": ["changed_dataset"]}]
    assert selector["jobName"] == "dataset_pipeline" and selector["repositoryName"] == "__repository__"
    assert [tag["key"] for tag in launch_tags(body)] == ["airflow/run_id", LAUNCH_TAG]


def test_runs_are_listed_by_tags_with_their_status(scripted_api: ScriptedApi) -> None:
    runs = [{"runId": "r1", "status": "SUCCESS", "later": 1}, {"runId": "r2", "status": "QUEUED"}]
    scripted_api.script[ENDPOINT] = [(200, {"data": {"runsOrError": {"__typename": "Runs", "results": runs}}})]
    found = DagsterClient(scripted_api.url).runs_with_tags({"airflow/run_id": "manual__1"})
    assert [(run.run_id, run.status) for run in found] == [("r1", "SUCCESS"), ("r2", "QUEUED")]
    (body,) = scripted_api.sent(*ENDPOINT)
    assert body["variables"]["tags"] == [{"key": "airflow/run_id", "value": "manual__1"}]


def test_a_finished_run_comes_with_its_step_stats(scripted_api: ScriptedApi) -> None:
    steps = [{"stepKey": "pulled_dataset", "status": "SUCCESS", "startTime": 1.0, "endTime": 3.5, "attempts": [{}, {}]}]
    run = {"__typename": "Run", "runId": "r1", "rootRunId": None, "status": "SUCCESS", "stepStats": steps}
    scripted_api.script[ENDPOINT] = [(200, {"data": RUN}), (200, {"data": {"runOrError": run}})]
    seen: list[str] = []
    finished = DagsterClient(scripted_api.url).wait_for_run(
        "r1", on_poll=lambda r: seen.append(r.status), poll_seconds=0
    )
    assert seen == ["STARTED", "SUCCESS"]
    (step,) = finished.step_stats
    assert (step.step_key, step.end_time - (step.start_time or 0), step.attempts) == ("pulled_dataset", 2.5, 2)


def test_a_failed_step_is_named_with_the_first_error(scripted_api: ScriptedApi) -> None:
    events = [
        {"__typename": "ExecutionStepUpForRetryEvent", "stepKey": "changed_dataset", "error": {"message": "why\n"}},
        {"__typename": "ExecutionStepFailureEvent", "stepKey": "changed_dataset", "error": {"message": "retried"}},
        {"__typename": "MaterializationEvent", "stepKey": "x", "assetKey": {"path": ["x"]}, "metadataEntries": []},
    ]
    answer = {"logsForRun": {"__typename": "EventConnection", "events": events}}
    scripted_api.script[ENDPOINT] = [(200, {"data": answer})]
    assert DagsterClient(scripted_api.url).failure("r1") == "step changed_dataset failed (after 1 retries): why"


def run_answer(run_id: str, status: str, **tags: str) -> tuple[int, dict[str, object]]:
    listed = [{"key": f"dagster/{key}", "value": value} for key, value in tags.items()]
    return 200, {"data": {"runOrError": {"__typename": "Run", "runId": run_id, "status": status, "tags": listed}}}


def test_a_run_dagster_retries_is_followed_to_its_retry(scripted_api: ScriptedApi) -> None:
    """A run failed by run monitoring (its worker died) is retried as a new run: the wait ends with that one."""
    scripted_api.script[ENDPOINT] = [
        run_answer("r1", "STARTED"),
        run_answer("r1", "FAILURE", will_retry="true"),
        tagged(),  # the daemon has not launched the retry yet
        tagged("r2"),
        run_answer("r2", "STARTED", parent_run_id="r1"),
        run_answer("r2", "SUCCESS", parent_run_id="r1"),
    ]
    retries: list[tuple[str, str]] = []
    run = DagsterClient(scripted_api.url).wait_for_run_or_its_retry(
        "r1", on_retry=lambda failed, retry: retries.append((failed.run_id, retry)), poll_seconds=0
    )
    assert (run.run_id, run.status) == ("r2", "SUCCESS")
    assert retries == [("r1", "r2")]
    asked_for = [body["variables"] for body in scripted_api.sent(*ENDPOINT)]
    assert {"tags": [{"key": "dagster/parent_run_id", "value": "r1"}], "limit": None} in asked_for


def test_a_failure_dagster_does_not_retry_is_final(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [run_answer("r1", "FAILURE", will_retry="false")]
    run = DagsterClient(scripted_api.url).wait_for_run_or_its_retry("r1", poll_seconds=0)
    assert (run.run_id, run.status, run.will_retry) == ("r1", "FAILURE", False)
    assert len(scripted_api.sent(*ENDPOINT)) == 1  # no search for a retry


def test_the_retry_verdict_that_follows_the_failure_is_waited_for(scripted_api: ScriptedApi) -> None:
    """Dagster writes the failure, then tags whether it retries: a look in between must not end the wait."""
    scripted_api.script[ENDPOINT] = [
        run_answer("r1", "FAILURE"),
        run_answer("r1", "FAILURE", will_retry="true"),
        tagged("r2"),
        run_answer("r2", "FAILURE", parent_run_id="r1", will_retry="false"),
    ]
    run = DagsterClient(scripted_api.url).wait_for_run_or_its_retry("r1", poll_seconds=0)
    assert (run.run_id, run.status) == ("r2", "FAILURE")


def test_a_run_that_finished_without_a_verdict_is_final_when_retries_are_off(
    scripted_api: ScriptedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("orchestrator_clients.dagster_api.RETRY_VERDICT_SECONDS", 0.2)
    scripted_api.script[ENDPOINT] = [run_answer("r1", "FAILURE")]
    run = DagsterClient(scripted_api.url).wait_for_run_or_its_retry("r1", poll_seconds=0.05)
    assert (run.run_id, run.status) == ("r1", "FAILURE")
    # It looked again for the verdict before giving up (how often within the window depends on the machine).
    assert len(scripted_api.sent(*ENDPOINT)) >= 2
