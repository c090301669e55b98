"""Dagster's daemon killed at every point of its life with a run in flight: nothing stays stuck.

The daemon takes a queued run from the queue, launches it (STARTING: the run worker, a process of
the daemon's code server, is starting) and its worker runs the steps (STARTED). It is killed (its
whole process group, as when its pod dies: code servers and run worker with it) at each of these
points in turn, then `stack up` starts it again. A run that was only queued is launched by the new
daemon and succeeds; one whose worker died is failed by run monitoring (its pool slot freed), then
retried once in the same workspace, and the retry, queued behind nothing, publishes exactly one
version for the run. The daemon is frozen (SIGSTOP) at the point, so the state the test reads is
the state the kill left. These tests share the session's Dagster stack (tests/dagster_support.py).
"""

from __future__ import annotations

import functools
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dataset_pipeline.dagster_runs import launch
from dataset_pipeline.process import group_alive
from dataset_pipeline.stack import LocalStack, StackConfig
from orchestrator_clients.dagster_api import DagsterClient
from orchestrator_clients.dagster_records import DagsterRun
from orchestrator_clients.retrying import poll_until
from shared_tasks.pipeline import PIPELINE
from tests.conftest import cli
from tests.dagster_support import DagsterStack

pytestmark = pytest.mark.slow

PARENT_RUN_TAG = "dagster/parent_run_id"
WAIT_SECONDS = 300


@dataclass(frozen=True)
class KillPoint:
    name: str
    reached: Callable[[DagsterRun], bool]
    worker_dies: bool = True  # False: no worker yet, the run is still the queue's


def _step_running(step_key: str) -> Callable[[DagsterRun], bool]:
    def reached(run: DagsterRun) -> bool:
        running = [step.step_key for step in run.step_stats if step.status == "IN_PROGRESS"]
        return run.status == "STARTED" and running == [step_key]

    return reached


def kill_points() -> Iterator[KillPoint]:
    """Queued (not yet taken from the queue), being launched, and each shared step running."""
    yield KillPoint("queued", lambda run: run.status == "QUEUED", worker_dies=False)
    yield KillPoint("starting", lambda run: run.status == "STARTING")
    for step in PIPELINE:
        yield KillPoint(f"step {step.name}", _step_running(step.output))


def wait(check: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS, interval: float = 0.1) -> None:
    poll_until(check, timeout=timeout, interval=interval, timed_out=lambda: AssertionError(f"{what} in {timeout} s"))


def dagster_service(dagster_stack: DagsterStack) -> Any:
    config = StackConfig(root=dagster_stack.root, dagster_port=int(dagster_stack.env["DATASET_PIPELINE_DAGSTER_PORT"]))
    return LocalStack(config).service("dagster")


def daemon_pid(dagster_stack: DagsterStack) -> int:
    return int(json.loads((dagster_stack.root / "dagster.ready").read_text())["pids"]["daemon"])


def finished(client: DagsterClient, run_id: str) -> DagsterRun:
    return client.wait_for_run(run_id, timeout=WAIT_SECONDS, poll_seconds=0.5)


def test_a_daemon_killed_alone_is_not_running_and_stack_up_restarts_it(dagster_stack: DagsterStack) -> None:
    service = dagster_service(dagster_stack)
    assert service.status()["running"] is True
    daemon = daemon_pid(dagster_stack)
    wait(lambda: len(_members(daemon)) >= 2, "the daemon started no code server")  # its children, to outlive it

    os.kill(daemon, signal.SIGKILL)  # the leader alone
    wait(lambda: not _running(daemon), "the daemon did not die")
    status = service.status()
    assert _members(daemon), "its code server should still run while the service is judged"
    assert status["running"] is False

    dagster_stack.up()
    restarted = dagster_stack.status()["services"]["dagster"]
    assert restarted["running"] is True and restarted["pids"]["daemon"] != daemon
    assert not group_alive(daemon)  # what was left of the old daemon was stopped


def test_a_run_in_flight_when_the_daemon_dies_is_failed_freed_and_retried(dagster_stack: DagsterStack) -> None:
    client = DagsterClient(dagster_stack.status()["dagster_url"])
    killed: dict[str, str] = {}  # kill point -> the run killed there
    for point in kill_points():
        daemon = daemon_pid(dagster_stack)
        if point.name == "queued":
            os.killpg(daemon, signal.SIGSTOP)  # nothing takes it from the queue
            run_id = launch(client, records=1, run_id=None)
        else:
            run_id = launch(client, records=1, run_id=None)
            seen: list[DagsterRun] = []

            def at_point(run_id: str = run_id, point: KillPoint = point, seen: list[DagsterRun] = seen) -> bool:
                seen.append(client.run(run_id))
                assert not seen[-1].finished, f"{run_id} finished before the kill point {point.name}"
                return point.reached(seen[-1])

            wait(at_point, f"the run did not reach {point.name}", interval=0.05)
            os.killpg(daemon, signal.SIGSTOP)  # the daemon, its code server and the run worker stand still
        frozen = client.run(run_id)
        assert point.reached(frozen), f"{point.name}: the run moved on to {frozen.status} {frozen.step_stats}"
        os.killpg(daemon, signal.SIGKILL)
        wait(functools.partial(_group_gone, daemon), "the daemon's processes did not die")
        after_kill = client.run(run_id)
        assert (after_kill.status, after_kill.step_stats) == (frozen.status, frozen.step_stats)  # nothing runs it

        dagster_stack.up()  # the operator's `stack up` after the crash
        run = finished(client, run_id)
        killed[point.name] = run_id
        if not point.worker_dies:
            assert run.status == "SUCCESS", client.failure(run_id)
            continue
        assert run.status == "FAILURE"
        failure = client.failure(run_id)
        assert "run worker" in failure or "to start" in failure, failure  # run monitoring failed it
        # The retry is queued in the same pool: it starts only because the killed run's slot is free.
        retry_tag = [{"key": PARENT_RUN_TAG, "value": run_id}]
        wait(functools.partial(_has_run, client, retry_tag), f"{point.name}: no retry of {run_id}")
        (retry_id,) = client.tagged_runs(retry_tag)
        retry = finished(client, retry_id)
        assert retry.status == "SUCCESS", client.failure(retry_id)
        assert retry.root_run_id == run_id  # the same pipeline run, in the same workspace

    assert list(killed) == [point.name for point in kill_points()]
    later = launch(client, records=1, run_id=None)  # nothing stuck in the pool
    assert finished(client, later).status == "SUCCESS"
    versions = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)
    published = [version["run_id"] for version in versions]
    for name, run_id in killed.items():
        assert published.count(run_id) == 1, f"{name}: {published.count(run_id)} versions for {run_id}"


def _group_gone(pgid: int) -> bool:
    return not group_alive(pgid)


def _has_run(client: DagsterClient, tags: list[dict[str, str]]) -> bool:
    return bool(client.tagged_runs(tags))


def _members(pgid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and _running(int(entry)):
                    found.add(int(entry))
            except ProcessLookupError:
                continue
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
