"""Waiting for a Dagster run to finish, and following it into the retry Dagster launches of it.

A run whose worker died (failed by run monitoring) is retried by the daemon as a new run of the
same root: a wait that followed only the first would report a failure the retry then repairs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from orchestrator_clients.dagster_records import PARENT_RUN_TAG, WILL_RETRY_TAG, DagsterRun
from orchestrator_clients.errors import OrchestratorApiError
from orchestrator_clients.retrying import poll_until


class RunLookups(Protocol):
    """The two look-ups a wait makes of Dagster's API: a run by id, and the ids of runs by tags."""

    def run(self, run_id: str) -> DagsterRun: ...

    def tagged_runs(self, tags: Sequence[Mapping[str, str]]) -> list[str]: ...


def wait_for_run(
    client: RunLookups,
    run_id: str,
    on_poll: Callable[[DagsterRun], None] | None,
    timeout: float,
    poll_seconds: float,
) -> DagsterRun:
    """The run once it has finished; `on_poll` sees it at every look."""
    seen: list[DagsterRun] = []

    def finished() -> bool:
        seen.append(client.run(run_id))
        if on_poll is not None:
            on_poll(seen[-1])
        return seen[-1].finished

    def timed_out() -> Exception:
        return OrchestratorApiError(f"Dagster run {run_id} did not finish in {timeout:.0f} s")

    poll_until(finished, timeout=timeout, interval=poll_seconds, timed_out=timed_out)
    return seen[-1]


def wait_for_run_or_its_retry(
    client: RunLookups,
    run_id: str,
    on_poll: Callable[[DagsterRun], None] | None,
    on_retry: Callable[[DagsterRun, str], None] | None,
    timeout: float,
    poll_seconds: float,
    verdict_seconds: float,
) -> DagsterRun:
    """The run once it has finished; when Dagster retries it, its last retry once finished.

    A failed run is looked at again for up to `verdict_seconds` until Dagster has tagged whether it
    retries it.
    """
    run = wait_for_run(client, run_id, on_poll, timeout, poll_seconds)
    while (run := _with_retry_verdict(client, run, poll_seconds, verdict_seconds)).will_retry:
        retry_id = retry_of(client, run.run_id, timeout, poll_seconds)
        if on_retry is not None:
            on_retry(run, retry_id)
        run = wait_for_run(client, retry_id, on_poll, timeout, poll_seconds)
    return run


def _with_retry_verdict(client: RunLookups, run: DagsterRun, poll_seconds: float, verdict_seconds: float) -> DagsterRun:
    """A failed run once Dagster has tagged whether it retries it (the tag follows the status at once)."""
    if run.status != "FAILURE" or WILL_RETRY_TAG in run.tags:
        return run
    seen = [run]

    def tagged() -> bool:
        seen.append(client.run(run.run_id))
        return WILL_RETRY_TAG in seen[-1].tags

    with contextlib.suppress(TimeoutError):  # no verdict: run retries are off, the failure is final
        poll_until(tagged, timeout=verdict_seconds, interval=poll_seconds, timed_out=TimeoutError)
    return seen[-1]


def retry_of(client: RunLookups, run_id: str, timeout: float, poll_seconds: float) -> str:
    """The id of the run Dagster launched to retry `run_id` (waiting for the daemon to launch it)."""
    parent = [{"key": PARENT_RUN_TAG, "value": run_id}]
    found: list[str] = []

    def launched() -> bool:
        found[:] = client.tagged_runs(parent)
        return bool(found)

    def timed_out() -> Exception:
        return OrchestratorApiError(f"Dagster retries run {run_id}, but launched no retry in {timeout:.0f} s")

    poll_until(launched, timeout=timeout, interval=poll_seconds, timed_out=timed_out)
    return found[-1]  # the daemon retries a failed run once; its retry's failure has a retry of its own
