"""What the shadow runs of a pipeline's steps found, read from Dagster's API, and the gate before a cut-over.

Each shadow run is an execution of the step's `matches_airflow` asset check in Dagster, its
metadata naming the step's code digest. Only those with the step's current digest count: a shadow
proves the code it ran, and a change of the step's module starts the count again. A step moves
to Dagster once it has at least N matched shadow runs and none that differed (N is
PIPELINE_SHADOW_MATCHES, 3 by default); `--force` moves it anyway.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator_clients.dagster_api import DagsterClient
from shared_tasks.project.cutover import MATCHES_AIRFLOW_CHECK, CutoverSteps
from shared_tasks.run.shadow import step_code_digest

SHADOW_MATCHES_ENV = "PIPELINE_SHADOW_MATCHES"
DEFAULT_SHADOW_MATCHES = 3
EXECUTIONS_READ = 500


@dataclass(frozen=True)
class ShadowRecord:
    step: str
    code_digest: str
    matched: int  # since the step's code last changed
    differed: int
    last_difference: str | None  # the newest difference's summary

    def shown(self) -> str:
        said = f"{self.matched} matched, {self.differed} differed"
        return f"{said}: {self.last_difference.splitlines()[0]}" if self.last_difference else said


def required_matches() -> int:
    value = os.environ.get(SHADOW_MATCHES_ENV, str(DEFAULT_SHADOW_MATCHES))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{SHADOW_MATCHES_ENV}={value!r}: a whole number of matched shadow runs, 1 or more")
    return int(value)


def shadow_records(client: DagsterClient, pipeline: CutoverSteps, steps: Sequence[str]) -> dict[str, ShadowRecord]:
    """Each step's shadow runs since its code last changed, as Dagster recorded them."""
    declared = pipeline.declared
    if declared is None:
        raise ValueError("only a declared pipeline's steps have shadow runs")
    records = {}
    for step in steps:
        digest = step_code_digest(declared, step)
        key = list(pipeline.names.asset_key(pipeline.steps[step].output))
        executions = client.check_executions(key, MATCHES_AIRFLOW_CHECK, limit=EXECUTIONS_READ)  # newest first
        counted = [e for e in executions if e.passed is not None and e.metadata.get("code_digest") == digest]
        differences = [e for e in counted if not e.passed]
        last = str(differences[0].metadata.get("summary", "")) if differences else None
        records[step] = ShadowRecord(step, digest, len(counted) - len(differences), len(differences), last)
    return records


def gate_refusal(record: ShadowRecord, required: int) -> str | None:
    """Why the step may not move to Dagster yet, or None."""
    if record.differed:
        return (
            f"{record.differed} shadow run(s) of its current code differed from Airflow's, the newest: "
            f"{record.last_difference}"
        )
    if record.matched < required:
        return f"{record.matched} matched shadow run(s) of its current code, {required} needed ({SHADOW_MATCHES_ENV})"
    return None
