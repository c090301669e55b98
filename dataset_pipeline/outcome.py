"""What a run through an orchestrator gives back: the version it published and how the run went."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared_tasks.project.records import PublishedVersion


@dataclass(frozen=True)
class RunOutcome:
    """The published version, the orchestrator's id of the run and the seconds each step took.

    `run_id_keys` are the names `run --json` prints the orchestrator's run id under (Dagster's runs
    also under `dagster_run_id`, the name they were first printed with).
    """

    version: PublishedVersion
    orchestrator_run_id: str | None
    step_seconds: Mapping[str, float] = field(default_factory=dict)
    run_id_keys: tuple[str, ...] = ("orchestrator_run_id",)

    def to_dict(self) -> dict[str, Any]:
        """The JSON `run --json` prints: the version's fields, the run id and the step seconds."""
        ids = {key: self.orchestrator_run_id for key in self.run_id_keys}
        return {**self.version.to_dict(), **ids, "step_seconds": dict(self.step_seconds)}
