"""Dagster's daemon killed with a run at every point of its life: nothing stays stuck, nothing is lost.

The daemon takes a queued run from the queue, launches it (STARTING: the run worker, a process of
the daemon's code server, is starting) and its worker runs the steps (STARTED). Its whole process
group is killed with SIGKILL (as when its pod dies: code servers and run worker with it) at each of
these points in turn, then the operator's `stack up` starts it again. A run that was only queued is
launched by the new daemon and succeeds; one whose worker died is failed by run monitoring (its
pool slot freed), then retried once in the same workspace, and the retry, queued behind nothing,
publishes exactly one version for the run. The runs are started with `dataset-pipeline run --via
dagster`, which follows the retry and reports the version.

Nothing is frozen (a stopped SQLite writer would hold its lock and stall the webserver of this
shared stack): the kill comes as soon as a poll sees the point, and the point is read back from
what the kill left. A run that moved past its point before the kill is counted at the point it
was killed at, and the missed point is tried again, so every point is shown hit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dataset_pipeline.dagster_runs import launch
from dataset_pipeline.process import group_alive
from orchestrator_clients.dagster_api import DagsterClient
from orchestrator_clients.dagster_records import PARENT_RUN_TAG, DagsterRun
from orchestrator_clients.retrying import poll_until
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE
from tests.conftest import REPO_ROOT, cli
from tests.dagster_support import DagsterStack

pytestmark = pytest.mark.slow

WAIT_SECONDS = 300
TRIES_PER_POINT = 3
LAUNCHED = re.compile(r"dagster run (\S+)")


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
        yield KillPoint(f"step {step.name}", _step_running(NAMES.op_name(step.output)))


def point_of(run: DagsterRun) -> str | None:
    return next((point.name for point in kill_points() if point.reached(run)), None)


def wait(check: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS, interval: float = 0.05) -> None:
    poll_until(check, timeout=timeout, interval=interval, timed_out=lambda: AssertionError(f"{what} in {timeout} s"))


def daemon_pid(dagster_stack: DagsterStack) -> int:
    return int(json.loads((dagster_stack.root / "dagster.ready").read_text())["pids"]["daemon"])


def kill_daemon_group(dagster_stack: DagsterStack) -> None:
    daemon = daemon_pid(dagster_stack)
    os.killpg(daemon, signal.SIGKILL)
    wait(lambda: not group_alive(daemon), "the daemon's processes did not die")


@dataclass
class CliRun:
    """`dataset-pipeline run --via dagster --json`, its Dagster run id read from its progress."""

    process: subprocess.Popen[str]
    progress: list[str]
    launched: threading.Event
    run_id: str = ""

    @classmethod
    def start(cls, env: dict[str, str]) -> CliRun:
        process = subprocess.Popen(
            [sys.executable, "-m", "dataset_pipeline.cli", "run", "--json", "--via", "dagster", "--records", "1"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = cls(process, [], threading.Event())
        threading.Thread(target=started._read_progress, daemon=True).start()
        return started

    def _read_progress(self) -> None:
        assert self.process.stderr is not None
        for line in iter(self.process.stderr.readline, ""):
            self.progress.append(line)
            found = LAUNCHED.search(line)
            if found and not self.launched.is_set():
                self.run_id = found.group(1)
                self.launched.set()

    def version(self) -> dict[str, Any]:
        stdout, _ = self.process.communicate(timeout=WAIT_SECONDS * 2)
        assert self.process.returncode == 0, "".join(self.progress)[-3000:]
        return json.loads(stdout)  # type: ignore[no-any-return]


def kill_at(
    dagster_stack: DagsterStack, client: DagsterClient, point: KillPoint
) -> tuple[str, DagsterRun, CliRun | None]:
    """A run killed at `point` or, if it moved on before the kill landed, at a later one: its id and what was left."""
    if not point.worker_dies:
        kill_daemon_group(dagster_stack)  # nothing takes the run from the queue
        run_id = launch(client, records=1, run_id=None)
        return run_id, client.run(run_id), None
    started = CliRun.start(dagster_stack.env)
    assert started.launched.wait(WAIT_SECONDS), "".join(started.progress)
    seen: list[DagsterRun] = []

    def at_point() -> bool:
        seen.append(client.run(started.run_id))
        assert not seen[-1].finished, f"{started.run_id} finished before the kill point {point.name}"
        return point.reached(seen[-1]) or point_of(seen[-1]) not in (None, "queued", *earlier_than(point))

    wait(at_point, f"the run did not reach {point.name}")
    kill_daemon_group(dagster_stack)
    return started.run_id, client.run(started.run_id), started


def earlier_than(point: KillPoint) -> list[str]:
    names = [each.name for each in kill_points()]
    return names[: names.index(point.name)]


def test_a_run_in_flight_when_the_daemon_dies_is_failed_freed_and_retried(dagster_stack: DagsterStack) -> None:
    client = DagsterClient(dagster_stack.status()["dagster_url"])
    killed: dict[str, str] = {}  # kill point -> the run killed there
    for point in kill_points():
        for _ in range(TRIES_PER_POINT):
            run_id, left, started = kill_at(dagster_stack, client, point)
            hit = point_of(left)
            assert hit is not None, f"{run_id} was killed at no known point: {left.status} {left.step_stats}"
            after = client.run(run_id)
            assert (after.status, after.step_stats) == (left.status, left.step_stats)  # nothing runs it now

            dagster_stack.up()  # the operator's `stack up` after the crash
            killed.setdefault(hit, run_id)
            if hit == "queued":
                run = client.wait_for_run(run_id, timeout=WAIT_SECONDS)
                assert run.status == "SUCCESS", client.failure(run_id)
            else:
                assert started is not None
                version = started.version()  # the CLI followed the retry to the version
                assert version["run_id"] == run_id
                run = client.run(run_id)
                assert run.status == "FAILURE" and run.will_retry
                failure = client.failure(run_id)
                assert "run worker" in failure or "to start" in failure, failure  # run monitoring failed it
                # The retry is queued in the same pool: it starts only because the killed run's slot is free.
                (retry_id,) = client.tagged_runs([{"key": PARENT_RUN_TAG, "value": run_id}])
                retry = client.run(retry_id)
                assert retry.status == "SUCCESS", client.failure(retry_id)
                assert retry.root_run_id == run_id  # the same pipeline run, in the same workspace
                assert version["dagster_run_id"] == retry_id
            if point.name in killed:
                break
        assert point.name in killed, f"no run was killed at {point.name} in {TRIES_PER_POINT} tries: {killed}"

    later = launch(client, records=1, run_id=None)  # nothing stuck in the pool
    assert client.wait_for_run(later, timeout=WAIT_SECONDS).status == "SUCCESS"
    versions = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)
    published = [version["run_id"] for version in versions]
    for name, run_id in killed.items():
        assert published.count(run_id) == 1, f"{name}: {published.count(run_id)} versions for {run_id}"
