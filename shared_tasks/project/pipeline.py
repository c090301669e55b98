"""The pipeline described once, neutrally: steps, their order, what each calls and produces.

The Airflow DAG, the Dagster asset graph and the direct run are all derived from `PIPELINE`, so
they can never drift apart. A step names its function by import path and loads it only when it
runs: the description itself imports neither pandas nor DVC, so a DAG processor or a code server
can read it cheaply.
"""

from __future__ import annotations

import importlib
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared_tasks.project.declared import DATASET_INPUT, DeclaredPipeline
from shared_tasks.project.records import PublishedVersion, StepRecord, StepTiming
from shared_tasks.project.settings import Settings


@dataclass(frozen=True)
class StepInputs:
    """What a run is asked to do, beyond its settings and run id; each step takes what it names."""

    records: int = 1
    change_file: Path | None = None
    orchestrator: str = "direct"  # whose run this is (its commit names it)
    runner: str = "direct"  # which orchestrator runs this step (Dagster, for a step Airflow cut over)
    params: Mapping[str, Any] | None = None  # a declared pipeline's run parameters


@dataclass(frozen=True)
class StepSpec:
    """A step: its name (an Airflow task id), what it depends on, the asset it stands for in
    Dagster, the function it calls, which of the run's inputs that function takes, and whether it
    publishes the dataset's new version."""

    name: str
    upstream: tuple[str, ...]
    description: str
    output: str
    function: str
    inputs: tuple[str, ...] = ()
    publishes: bool = False
    # Libraries the step imports on every run, loaded with it: the timing's `load_seconds` is then
    # all of our imports and `seconds` the work alone, in a fresh process as in a warm one.
    uses: tuple[str, ...] = ()
    # Arguments fixed for this step (a declared pipeline's step: which of its steps to run).
    bound: tuple[tuple[str, str], ...] = ()
    # Whether this is a team's own step of a declared pipeline.
    declared: bool = False

    def load(self) -> Callable[..., StepRecord]:
        module, _, name = self.function.partition(":")
        step: Callable[..., StepRecord] = getattr(importlib.import_module(module), name)
        for library in self.uses:
            importlib.import_module(library)
        return step

    def run(self, settings: Settings, run_id: str, inputs: StepInputs) -> StepRecord:
        """Call the step, and time its import and its work where it runs (the same code for every runner)."""
        asked = time.time()
        step = self.load()
        started = time.time()
        arguments = {name: getattr(inputs, name) for name in self.inputs}
        record = step(settings, run_id, **dict(self.bound), **arguments)
        timing = StepTiming(
            process_started_at=process_started_at(),
            started_at=started,
            seconds=time.time() - started,
            load_seconds=started - asked,
        )
        return record.model_copy(update={"timing": timing})


PIPELINE: tuple[StepSpec, ...] = (
    StepSpec(
        "pull_data",
        (),
        "Workspace at the branch head with the current dataset version",
        "pulled_dataset",
        "shared_tasks.run.steps:pull_data",
        ("runner",),
        uses=("dvc.repo",),
    ),
    StepSpec(
        "modify_data",
        ("pull_data",),
        "The run's records, validated and applied exactly once",
        "changed_dataset",
        "shared_tasks.run.steps:modify_data",
        ("records", "change_file", "runner"),
        uses=("pandas",),
    ),
    StepSpec(
        "push_data",
        ("modify_data",),
        "The new version: data on the DVC remote, pointer in Git",
        "published_dataset",
        "shared_tasks.run.steps:push_data",
        ("orchestrator", "runner"),
        publishes=True,
        uses=("dvc.repo", "s3fs"),
    ),
)
STEPS = {step.name: step for step in PIPELINE}


def declared_steps(pipeline: DeclaredPipeline) -> tuple[StepSpec, ...]:
    """A declared pipeline's steps: the product's pull, the team's steps, the product's publish.

    A team step runs after the steps it takes (or after the pull, when it takes none); the publish
    runs after every step no other step takes, so no step's work is left unfinished.
    """
    pull, push = PIPELINE[0], PIPELINE[-1]
    steps = [pull]
    taken: set[str] = set()
    for declared in pipeline.steps:
        upstream = tuple(name for name in declared.inputs if name != DATASET_INPUT) or (pull.name,)
        taken.update(upstream)
        steps.append(
            StepSpec(
                declared.name,
                upstream,
                declared.description or f"Step {declared.name} ({declared.function})",
                declared.name,
                "shared_tasks.run.steps:run_declared_step",
                ("params", "runner"),
                uses=("pyarrow.parquet",),
                bound=(("step", declared.name),),
                declared=True,
            )
        )
    sinks = tuple(step.name for step in steps[1:] if step.name not in taken)
    description = f"The new version: the output of {pipeline.output_step} applied by {pipeline.output.strategy}"
    steps.append(StepSpec(push.name, sinks, description, push.output, push.function, push.inputs, True, push.uses))
    return tuple(steps)


def pipeline_steps(settings: Settings) -> tuple[StepSpec, ...]:
    """The steps of the pipeline the settings run: a declared one's, or the built-in pipeline."""
    return declared_steps(settings.declared()) if settings.is_declared else PIPELINE


STEP_OF_OUTPUT = {step.output: step.name for step in PIPELINE}


def process_started_at() -> float | None:
    """When this process started, in seconds since the epoch (to 10 ms; Linux's /proc, None elsewhere).

    The kernel counts a process's start in clock ticks since boot; the boot clock's current reading
    turns that into an age, so the (whole-second) boot time never enters the figure.
    """
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.time() - age


def new_run_id(orchestrator: str = "direct") -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{orchestrator}__{stamp}__{secrets.token_hex(3)}"


StepCallback = Callable[[str, str, StepRecord | None], None]


def run_pipeline(
    settings: Settings,
    run_id: str,
    orchestrator: str = "direct",
    records: int = 1,
    change_file: Path | None = None,
    on_step: StepCallback | None = None,
    params: Mapping[str, Any] | None = None,
) -> PublishedVersion:
    """Every step in order, in this process; `on_step(name, "start"|"done", record)` reports progress."""
    inputs = StepInputs(
        records=records, change_file=change_file, orchestrator=orchestrator, runner=orchestrator, params=params
    )
    result: StepRecord | None = None
    for step in pipeline_steps(settings):
        if on_step is not None:
            on_step(step.name, "start", None)
        result = step.run(settings, run_id, inputs)
        if on_step is not None:
            on_step(step.name, "done", result)
    assert isinstance(result, PublishedVersion), "the last step publishes the version"
    return result
