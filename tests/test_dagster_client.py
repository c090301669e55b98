"""Dagster's GraphQL client against a scripted API: reads wait out a busy server, a launch makes one run."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest

from dataset_pipeline.dagster_stack import LAUNCH_MUTATION, LAUNCH_TAG, RUN_QUERY, GraphQL, launch_run
from tests.scripted_api import ATTEMPTS, ScriptedApi, no_waiting, scripted_api

__all__ = ["no_waiting", "scripted_api"]  # the fixtures

pytestmark = pytest.mark.usefixtures("no_waiting")

ENDPOINT = ("POST", "/graphql")
SERVER_ERROR = (500, {"error": "database is locked"})
RUN = {"runOrError": {"__typename": "Run", "runId": "r1", "status": "STARTED"}}


def test_a_query_is_sent_again_after_a_server_error(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, SERVER_ERROR, (200, {"data": RUN})]
    assert GraphQL(scripted_api.url)(RUN_QUERY, runId="r1") == RUN
    assert len(scripted_api.sent(*ENDPOINT)) == 3


def test_a_query_that_keeps_failing_raises_the_last_error(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR]
    with pytest.raises(urllib.error.HTTPError, match="500"):
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")
    assert len(scripted_api.sent(*ENDPOINT)) == ATTEMPTS


def test_a_bad_query_is_not_sent_again(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [(400, {"errors": [{"message": "Cannot query field"}]})]
    with pytest.raises(urllib.error.HTTPError, match="400"):
        GraphQL(scripted_api.url)(RUN_QUERY, runId="r1")
    assert len(scripted_api.sent(*ENDPOINT)) == 1


def test_a_mutation_is_sent_once_even_when_it_fails(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, (200, {"data": {}})]
    with pytest.raises(urllib.error.HTTPError, match="500"):
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
    assert launch_run(GraphQL(scripted_api.url), records=2, run_id=None) == "r9"
    launch, lookup = scripted_api.sent(*ENDPOINT)
    assert "launchRun" in launch["query"] and "runsOrError" in lookup["query"]
    assert launch_tags(launch) == launch_tags(lookup)
    assert [tag["key"] for tag in launch_tags(launch)] == [LAUNCH_TAG]


def test_a_launch_that_made_no_run_is_sent_again_with_the_same_tag(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, tagged(), launched("r2")]
    assert launch_run(GraphQL(scripted_api.url), records=2, run_id=None) == "r2"
    first, _, second = scripted_api.sent(*ENDPOINT)
    assert first == second


def test_two_launches_carry_different_tags(scripted_api: ScriptedApi) -> None:
    graphql = GraphQL(scripted_api.url)
    for run_id in ("r1", "r2"):
        scripted_api.script[ENDPOINT] = [launched(run_id)]
        assert launch_run(graphql, records=1, run_id=None) == run_id
    first, second = (launch_tags(body) for body in scripted_api.sent(*ENDPOINT))
    assert first != second


def test_a_re_execution_is_tagged_too(scripted_api: ScriptedApi) -> None:
    answer = {"launchRunReexecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r3"}}}
    scripted_api.script[ENDPOINT] = [(200, {"data": answer})]
    assert launch_run(GraphQL(scripted_api.url), records=1, run_id="r1") == "r3"
    (body,) = scripted_api.sent(*ENDPOINT)
    assert body["variables"]["parentRunId"] == "r1"
    assert [tag["key"] for tag in launch_tags(body)] == [LAUNCH_TAG]
