"""The local stack's run launcher: Dagster's default one, plus a run worker health check.

Dagster's run monitoring (dagster.yaml `run_monitoring`, run by the daemon) fails a STARTED run
whose worker has died, which frees the run's pool slot and lets `run_retries` retry it; but it
asks the run launcher whether the worker lives, and the default launcher (runs as processes of
the code server) cannot say, so without this a run whose worker was killed (with the daemon
that launched it, say) stays STARTED for good and every run of its pool queues behind it. The
worker's pid is in the run's own event log ("Started process for run (pid: N)"); the worker
lives while that process runs and started no later than that event (a recycled pid did not).
The cluster's K8sRunLauncher has a check of its own (the run's Kubernetes Job).
"""

from __future__ import annotations

import dagster as dg
import psutil
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher

STARTED_PROCESS = "Started process for run"
CLOCK_SLACK_SECONDS = 2.0  # a process's start time is in clock ticks from a boot time in whole seconds


class MonitoredRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        started = [
            entry
            for entry in self._instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if (entry.message or "").startswith(STARTED_PROCESS)
        ]
        if not started:  # launched, its worker not yet this far: the start timeout covers it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker process recorded yet")
        latest = started[-1]
        pid = worker_pid(latest)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run worker's pid is not recorded", transient=True)
        if process_runs(pid, started_by=latest.timestamp + CLOCK_SLACK_SECONDS):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"the run worker (pid {pid}) is no longer running", run_worker_id=str(pid)
        )


def worker_pid(entry: dg.EventLogEntry) -> int | None:
    event = entry.dagster_event
    data = event.engine_event_data if event is not None else None
    value = data.metadata.get("pid") if data is not None else None
    try:
        return int(value.value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def process_runs(pid: int, started_by: float) -> bool:
    """Whether `pid` runs (not a zombie) and is the process that started by `started_by` (not a recycled pid)."""
    try:
        process = psutil.Process(pid)
        status: str = process.status()
        started: float = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process of that pid: it runs, its start time unreadable
        return True
    return status != psutil.STATUS_ZOMBIE and started <= started_by
