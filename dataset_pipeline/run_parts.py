"""Where a run's seconds went: queue, each step's start-up and work, the gaps between steps, the client.

How each part is measured is `HOW_PARTS_ARE_MEASURED`, which the comparison's report prints too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from shared_tasks.project.records import StepTiming

PARTS = ("queue", "start-up", "work", "gaps", "to client")
# A process's start time is read from /proc in clock ticks (10 ms), so parts may be off by that much each.
CLOCK_RESOLUTION_SECONDS = 0.01
HOW_PARTS_ARE_MEASURED = (
    "Each run's end-to-end time is cut at instants from two clocks: the client's (when it asked for the run, "
    "when it had the published version) and each step's own timing, taken inside shared_tasks by the same code "
    "under every runner (when the step's process started, read from /proc; when its work started; how long the "
    "work and our imports took: the step's module and the libraries it uses on every run). "
    "Queue: the request until the first step's process starts (trigger, run queue, scheduler loop). "
    "Start-up: a step's process starting until its work starts (interpreter, the orchestrator's imports and "
    "bookkeeping, our imports; 'of which ours' is those imports: the part we own, in every pod on the cluster too); "
    "in a process an earlier step used, only what is left of ours. "
    "Work: the step itself. "
    "Gaps: one step's work ending until the next step's process starts (recording the step, scheduling the "
    "next; for a proxied step, Airflow's task launching the Dagster run and Dagster queueing it). "
    "To client: the last step's work ending until the client has the version (the run's end recorded, the "
    "client's poll, reading the version back). "
    f"The parts add up to the end-to-end time up to the {CLOCK_RESOLUTION_SECONDS * 1000:.0f} ms resolution of a "
    "process's start time. On the cluster the queue, start-up and gaps are paid too, plus pod scheduling and "
    "image start; the work is the same code."
)


@dataclass(frozen=True)
class StepParts:
    startup: float
    our_imports: float
    work: float
    gap_before: float


STEP_PART_NAMES = tuple(field.name for field in fields(StepParts))


@dataclass(frozen=True)
class RunParts:
    """One run's seconds by part, and each step's share."""

    queue: float
    steps: dict[str, StepParts]
    to_client: float

    def by_part(self) -> dict[str, float]:
        return {
            "queue": self.queue,
            "start-up": sum(step.startup for step in self.steps.values()),
            "work": sum(step.work for step in self.steps.values()),
            "gaps": sum(step.gap_before for step in self.steps.values()),
            "to client": self.to_client,
        }

    def total(self) -> float:
        return sum(self.by_part().values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "parts": {name: round(value, 3) for name, value in self.by_part().items()},
            "steps": {
                name: {key: round(value, 3) for key, value in vars(step).items()} for name, step in self.steps.items()
            },
        }


def timing_of(record: Mapping[str, Any] | None) -> StepTiming | None:
    """The timing a step's record carries (as a task's XCom or an asset's metadata holds it), if any."""
    if not record or not isinstance(record.get("timing"), Mapping):
        return None
    return StepTiming.model_validate(record["timing"])


def split_run(requested_at: float, seen_at: float, timings: Sequence[tuple[str, StepTiming]]) -> RunParts:
    """The run's parts, from the client's two instants and each step's timing, in the order the steps ran."""
    steps: dict[str, StepParts] = {}
    previous_end = requested_at
    queue = 0.0
    for index, (name, timing) in enumerate(timings):
        asked = timing.started_at - timing.load_seconds  # when the step began loading our code
        process_start = timing.process_started_at
        fresh = process_start is not None and process_start >= previous_end - CLOCK_RESOLUTION_SECONDS
        begin = min(max(process_start, previous_end), asked) if fresh and process_start is not None else asked
        waited = max(begin - previous_end, 0.0)
        if index == 0:
            queue, waited = waited, 0.0
        startup = max(timing.started_at - max(begin, previous_end), 0.0)
        steps[name] = StepParts(
            startup=startup, our_imports=min(timing.load_seconds, startup), work=timing.seconds, gap_before=waited
        )
        previous_end = timing.started_at + timing.seconds
    return RunParts(queue=queue, steps=steps, to_client=max(seen_at - previous_end, 0.0))
