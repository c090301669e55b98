"""Dagster on the local stack, driven through the CLI as a user does: up, run --via dagster, down."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from dataset_pipeline.dagster_runs import launch, wait_for_run
from orchestrator_clients.dagster_api import LAUNCH_TAG, DagsterClient
from shared_tasks.project.names import NAMES
from tests.conftest import CALLER_CREDENTIALS, cli, environ_of, runs
from tests.dagster_support import DagsterStack

LOOPBACK_ADDRESSES = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 in /proc/net


def group_members(pgids: set[int]) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) in pgids and runs(int(entry.name)):
                    members.add(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def listening_addresses(pids: set[int]) -> set[str]:
    """(hex address, port) of every TCP socket these processes listen on, from /proc."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(fields[1])
    return found


RUN_TIMES_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { ... on Run { status startTime endTime tags { key value } } } }
"""


POOL_QUERY = """
query Pool($pool: String!) { instance { concurrencyLimit(concurrencyKey: $pool) { slotCount usingDefaultLimit } } }
"""


# First in the module, so that on a fresh stack it meets the queue before any other run has.
@pytest.mark.slow
def test_two_launched_runs_publish_one_after_the_other(dagster_stack: DagsterStack) -> None:
    client = DagsterClient(dagster_stack.status()["dagster_url"])
    graphql = client.graphql
    pool = graphql(POOL_QUERY, pool=NAMES.publish_pool)["instance"]["concurrencyLimit"]
    assert pool == {"slotCount": 1, "usingDefaultLimit": False}  # set by `stack up`, not by a first run
    launched = [launch(client, records=1, run_id=None) for _ in range(2)]
    runs = [wait_for_run(client, run_id, Console(file=io.StringIO())) for run_id in launched]
    assert [run.status for run in runs] == ["SUCCESS", "SUCCESS"]
    first, second = sorted(
        (graphql(RUN_TIMES_QUERY, runId=run_id)["runOrError"] for run_id in launched), key=lambda r: r["startTime"]
    )
    assert first["endTime"] <= second["startTime"]  # the second waited in the queue
    for run_id in launched:  # each launch is tagged so that a lost answer can be looked up
        tags = graphql(RUN_TIMES_QUERY, runId=run_id)["runOrError"]["tags"]
        launch_tag = [tag for tag in tags if tag["key"] == LAUNCH_TAG]
        assert len(launch_tag) == 1 and client.tagged_runs(launch_tag) == [run_id]
    versions = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)
    assert {v["run_id"] for v in versions[:2]} == set(launched)


@pytest.mark.slow
def test_run_via_dagster_publishes_a_version_named_dagster(dagster_stack: DagsterStack) -> None:
    status = dagster_stack.status()
    assert status["services"]["dagster"]["running"] is True
    assert status["dagster_url"] == status["services"]["dagster"]["url"]
    assert status["dagster_url"].startswith("http://127.0.0.1:")

    run = cli("run", "--via", "dagster", "--records", "2", "--json", env=dagster_stack.env)
    assert run.returncode == 0, run.stderr
    version = json.loads(run.stdout)
    assert "published_dataset: success" in run.stderr  # progress goes to the console
    versions = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)
    newest = versions[0]
    assert (newest["orchestrator"], newest["run_id"], newest["commit"]) == (
        "dagster",
        version["run_id"],
        version["commit"],
    )
    assert (newest["rows"], newest["rows_added"], version["md5"]) == (versions[1]["rows"] + 2, 2, newest["md5"])
    assert version["s3_url"].startswith("s3://dataset-pipeline/datasets/files/md5/")

    again = cli("run", "--via", "dagster", "--run-id", version["run_id"], "--json", env=dagster_stack.env)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["already_published"] is True
    assert (rerun["run_id"], rerun["commit"]) == (version["run_id"], version["commit"])
    assert json.loads(cli("history", "--json", env=dagster_stack.env).stdout) == versions  # no second version

    instance = yaml.safe_load((dagster_stack.root / "dagster" / "dagster.yaml").read_text())
    assert instance["run_coordinator"]["config"]["dequeue_interval_seconds"] == 1
    assert instance["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert instance["telemetry"]["enabled"] is False


@pytest.mark.slow
def test_a_failed_run_reports_the_failed_step_and_its_error(dagster_stack: DagsterStack) -> None:
    before = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)
    refused = cli("run", "--via", "dagster", "--records", "100001", env=dagster_stack.env)
    assert refused.returncode == 2  # the CLI names the limit before Dagster is asked
    assert "100000" in refused.stderr

    # Launched past the CLI (as from Dagster's UI), the run fails in its first step, naming the limit.
    client = DagsterClient(dagster_stack.status()["dagster_url"])
    launched = launch(client, records=100001, run_id=None)
    run = wait_for_run(client, launched, Console(file=io.StringIO()))
    assert run.status == "FAILURE"
    failed = [step.step_key for step in run.step_stats if step.status == "FAILURE"]
    assert failed == ["pulled_dataset"]  # the run's config is checked before anything is pulled
    assert "100000" in client.failure(launched)
    assert json.loads(cli("history", "--json", env=dagster_stack.env).stdout) == before


@pytest.mark.slow
def test_up_is_idempotent_and_down_stops_every_process(dagster_stack: DagsterStack) -> None:
    pids = dagster_stack.status()["services"]["dagster"]["pids"]
    dagster_stack.up()
    assert dagster_stack.status()["services"]["dagster"]["pids"] == pids  # the same processes

    s3_pid = json.loads((dagster_stack.root / "s3.ready").read_text())["pids"]["s3"]
    members = group_members({pids["webserver"], pids["daemon"], s3_pid})
    assert len(members) >= 3  # webserver, daemon and their code servers
    leaked = {(pid, name) for pid in members for name, value in CALLER_CREDENTIALS.items() if value in environ_of(pid)}
    assert leaked == set()  # the caller's credentials reach no stack process
    listening = listening_addresses(members)
    assert listening, "nothing listens at all"
    assert {address.split(":")[0] for address in listening} <= LOOPBACK_ADDRESSES, listening

    down = cli("stack", "down", env=dagster_stack.env)
    assert down.returncode == 0, down.stderr
    status = dagster_stack.status()
    assert status["services"]["dagster"]["running"] is False
    assert group_members({pids["webserver"], pids["daemon"], s3_pid}) == set()

    dagster_stack.up()  # the browser test shares this stack
    assert dagster_stack.status()["services"]["dagster"]["running"] is True
