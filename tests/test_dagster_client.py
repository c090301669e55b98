"""Dagster's GraphQL client against a scripted API: reads wait out a busy server, a launch is sent once."""

from __future__ import annotations

import urllib.error

import pytest
from tenacity import stop_after_attempt, wait_none

from dataset_pipeline import dagster_stack
from dataset_pipeline.dagster_stack import LAUNCH_MUTATION, RUN_QUERY, GraphQL
from tests.scripted_api import ScriptedApi, scripted_api

__all__ = ["scripted_api"]  # the fixture

ENDPOINT = ("POST", "/graphql")
ATTEMPTS = 4
SERVER_ERROR = (500, {"error": "database is locked"})
RUN = {"runOrError": {"__typename": "Run", "runId": "r1", "status": "STARTED"}}


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dagster_stack, "GRAPHQL_RETRY_WAIT", wait_none())
    monkeypatch.setattr(dagster_stack, "GRAPHQL_RETRY_STOP", stop_after_attempt(ATTEMPTS))


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


def test_a_launch_is_sent_once_even_when_it_fails(scripted_api: ScriptedApi) -> None:
    scripted_api.script[ENDPOINT] = [SERVER_ERROR, (200, {"data": {}})]
    with pytest.raises(urllib.error.HTTPError, match="500"):
        GraphQL(scripted_api.url)(LAUNCH_MUTATION, executionParams={})
    assert len(scripted_api.sent(*ENDPOINT)) == 1
