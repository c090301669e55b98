"""The pipeline described once, neutrally: steps, their order and what each returns.

Both orchestrator adapters render this description, and the direct run walks it, so the
Airflow DAG, the Dagster asset graph and a bare run can never drift apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared_tasks.settings import Settings

MAX_RECORDS_PER_RUN = 100_000


@dataclass(frozen=True)
class StepSpec:
    """A step: its name (an Airflow task id), what it depends on, and what it produces (a Dagster asset)."""

    name: str
    upstream: tuple[str, ...]
    description: str
    output: str


PIPELINE: tuple[StepSpec, ...] = (
    StepSpec("pull_data", (), "Workspace at the branch head with the current dataset version", "pulled_dataset"),
    StepSpec("modify_data", ("pull_data",), "The run's records, validated and applied exactly once", "changed_dataset"),
    StepSpec(
        "push_data", ("modify_data",), "The new version: data on the DVC remote, pointer in Git", "published_dataset"
    ),
)
STEP_OF_OUTPUT = {step.output: step.name for step in PIPELINE}


def new_run_id(orchestrator: str = "direct") -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{orchestrator}__{stamp}__{secrets.token_hex(3)}"


StepCallback = Callable[[str, str, dict[str, Any] | None], None]


def run_pipeline(
    settings: Settings,
    run_id: str,
    orchestrator: str = "direct",
    records: int = 1,
    change_file: Path | None = None,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Pull, modify, push in this process; `on_step(name, "start"|"done", result)` reports progress."""
    from shared_tasks.steps import modify_data, pull_data, push_data  # pandas and DVC: only when running

    def report(name: str, phase: str, result: dict[str, Any] | None = None) -> None:
        if on_step is not None:
            on_step(name, phase, result)

    report("pull_data", "start")
    pulled = pull_data(settings, run_id).to_dict()
    report("pull_data", "done", pulled)
    report("modify_data", "start")
    changed = modify_data(settings, run_id, records=records, change_file=change_file).to_dict()
    report("modify_data", "done", changed)
    report("push_data", "start")
    published = push_data(settings, run_id, orchestrator=orchestrator).to_dict()
    report("push_data", "done", published)
    return published
