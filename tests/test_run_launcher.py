"""The local run launcher's worker health check: a dead, a zombie or a recycled worker pid is not the run's worker."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from dagster_assets.run_launcher import process_runs


def test_a_running_worker_that_started_before_its_event_runs() -> None:
    worker = subprocess.Popen(["sleep", "60"])
    try:
        assert process_runs(worker.pid, started_by=time.time())
    finally:
        worker.kill()
        worker.wait()


def test_a_pid_that_started_after_the_event_is_another_process() -> None:
    """A pid recycled by a process started after the worker's start event is not the worker."""
    worker = subprocess.Popen(["sleep", "60"])
    try:
        started = psutil.Process(worker.pid).create_time()
        assert not process_runs(worker.pid, started_by=started - 1)
        assert process_runs(worker.pid, started_by=started)
    finally:
        worker.kill()
        worker.wait()


def test_an_exited_worker_left_unreaped_is_not_running() -> None:
    worker = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOWAIT)  # exited, a zombie until reaped
        assert psutil.Process(worker.pid).status() == psutil.STATUS_ZOMBIE
        assert not process_runs(worker.pid, started_by=time.time())
    finally:
        worker.wait()
    assert not process_runs(worker.pid, started_by=time.time())  # reaped: the pid is gone
