"""The comparison's runners: what each one is, its isolation, and how one run with it is made.

A runner reaches an orchestrator only through its public API (through the stack's services);
the cut-over runners set the cutover file beside the DAG for their runs, and the comparison puts
it back as it was when it ends (`cutover_kept`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from dataset_pipeline import airflow_stack, dagster_stack
from dataset_pipeline.run_parts import timing_of
from dataset_pipeline.stack import LocalStack
from shared_tasks.project.cutover import Cutover, Runner, read_cutover
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE, new_run_id, run_pipeline
from shared_tasks.project.records import PublishedVersion, StepRecord, StepTiming
from shared_tasks.project.settings import Settings

STEP_NAMES = tuple(step.name for step in PIPELINE)


@dataclass(frozen=True)
class RunnerSpec:
    """A way to run the pipeline: which services it needs and how its steps are isolated."""

    name: str
    services: tuple[str, ...]
    isolation: str
    in_dagster: tuple[str, ...] = ()  # for Airflow's runners: the steps its DAG proxies to Dagster
    process_per_step: bool = True


RUNNER_SPECS = (
    RunnerSpec("direct", (), "one process, warm: the CLI's own, the steps imported once", process_per_step=False),
    RunnerSpec("airflow", ("airflow",), "a process per step: LocalExecutor (a pod per task on the cluster)"),
    RunnerSpec(
        "dagster",
        ("dagster",),
        "a process per step: multiprocess executor (k8s_job_executor on the cluster); the steps only, as Airflow's DAG",
    ),
    RunnerSpec(
        "dagster-in-process",
        ("dagster",),
        "one process per run: in_process_executor, the steps share the run's process; the job as the UI runs it, "
        "with its asset checks after push",
        process_per_step=False,
    ),
    RunnerSpec(
        "airflow→dagster:modify_data",
        ("airflow", "dagster"),
        "a process per step: Airflow's tasks, modify_data launched in a Dagster run of its own",
        in_dagster=("modify_data",),
    ),
    RunnerSpec(
        "airflow→dagster:all",
        ("airflow", "dagster"),
        "a process per step: each Airflow task launches its step in a Dagster run of its own",
        in_dagster=STEP_NAMES,
    ),
)
RUNNERS = tuple(spec.name for spec in RUNNER_SPECS)
SPECS = {spec.name: spec for spec in RUNNER_SPECS}


def runner_named(name: str) -> RunnerSpec:
    """The runner by its name (`->` may stand for `→`); an unknown name is an error listing them."""
    spec = SPECS.get(name.replace("->", "→"))
    if spec is None:
        raise ValueError(f"unknown runner {name!r}; the runners are {', '.join(RUNNERS)}")
    return spec


@contextmanager
def cutover_kept(stack: LocalStack, specs: list[RunnerSpec], services: dict[str, Any]) -> Iterator[list[str] | None]:
    """The cutover as it was before the comparison, parsed by Airflow again once it ends (however it ends).

    Yields the steps that were in Dagster then (and will be again), or None when no runner uses Airflow.
    """
    if not any("airflow" in spec.services for spec in specs) or not services.get("airflow", {}).get("running"):
        yield None
        return
    before = read_cutover(airflow_stack.cutover_file())  # a bad file fails here, naming its line, before any run
    try:
        yield before.in_dagster()
    finally:
        airflow_stack.Service(stack).apply_cutover(before)


def set_cutover(stack: LocalStack, spec: RunnerSpec, console: Console) -> float | None:
    if "airflow" not in spec.services:
        return None
    cutover = Cutover(dict.fromkeys(spec.in_dagster, Runner.DAGSTER))
    seconds = airflow_stack.Service(stack).apply_cutover(cutover)
    shown = ", ".join(spec.in_dagster) or "nothing"
    console.print(f"{spec.name}: {shown} in Dagster (Airflow parsed the cutover in {seconds:.1f} s)", highlight=False)
    return round(seconds, 3)


Timings = list[tuple[str, StepTiming]]


def run_once(
    stack: LocalStack, settings: Settings, spec: RunnerSpec, records: int, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings]:
    """One run with the runner: its version, the seconds of each step as reported, the steps' timings;
    `seen` gets the instant the client had the version."""
    if spec.name == "direct":
        return _direct_run(settings, records, seen)
    if spec.services[0] == "airflow":
        return _airflow_run(stack, records, console, seen)
    return _dagster_run(stack, spec, records, console, seen)


def _direct_run(
    settings: Settings, records: int, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings]:
    steps: dict[str, float] = {}
    started: dict[str, float] = {}
    timings: Timings = []

    def on_step(name: str, phase: str, result: StepRecord | None) -> None:
        if phase == "start":
            started[name] = time.perf_counter()
            return
        steps[name] = time.perf_counter() - started[name]
        if result is not None and result.timing is not None:
            timings.append((name, result.timing))

    version = run_pipeline(settings, new_run_id("direct"), records=records, on_step=on_step)
    seen.append(time.time())
    return version, steps, timings


def _airflow_run(
    stack: LocalStack, records: int, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings]:
    from dataset_pipeline.airflow_runs import run_dag

    with airflow_stack.Service(stack).client() as client:
        outcome = run_dag(stack, client, records, None, console)
        seen.append(time.time())
        run_id = str(outcome.orchestrator_run_id)
        returned = {name: client.return_value(NAMES.dag_id, run_id, name) for name in STEP_NAMES}
    return outcome.version, dict(outcome.step_seconds), _timings(returned)


def _dagster_run(
    stack: LocalStack, spec: RunnerSpec, records: int, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings]:
    from dataset_pipeline.dagster_runs import JOB, PROCESS_PER_STEP_JOB, run_job

    client = dagster_stack.Service(stack).client()
    job = PROCESS_PER_STEP_JOB if spec.process_per_step else JOB
    outcome = run_job(stack, client, records, None, console, job=job)
    seen.append(time.time())
    assert outcome.orchestrator_run_id is not None
    materialized = client.run_materializations(outcome.orchestrator_run_id)
    returned = {step.name: materialized.get(NAMES.asset_key(step.output)) for step in PIPELINE}
    return outcome.version, dict(outcome.step_seconds), _timings(returned)


def _timings(records: dict[str, Any]) -> Timings:
    """Each step's timing from what it returned, in the pipeline's order (steps without one left out)."""
    found = [(name, timing_of(records.get(name))) for name in STEP_NAMES]
    return [(name, timing) for name, timing in found if timing is not None]
