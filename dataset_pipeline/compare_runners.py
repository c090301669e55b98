"""The comparison's runners: what each one is, its isolation, and how one run with it is made.

A runner reaches an orchestrator only through its public API (through the stack's services);
the cut-over runners set the pipeline's cutover file for their runs, and the comparison puts it
back as it was when it ends (`cutover_kept`). The built-in pipeline and each declared one have
the same runners; a cut-over runner may name any step of the pipeline (`airflow→dagster:STEP`).
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
from shared_tasks.project.cutover import BUILTIN, Cutover, CutoverSteps, Runner, read_cutover, shadow_task_id
from shared_tasks.project.pipeline import new_run_id, run_pipeline
from shared_tasks.project.records import PublishedVersion, StepRecord, StepTiming
from shared_tasks.project.settings import Settings

STEP_NAMES = tuple(BUILTIN.steps)
CUT_OVER = "airflow→dagster:"
SHADOW = "airflow+shadow:"  # Airflow runs the step, and Dagster again beside it (a declared pipeline's own step)


@dataclass(frozen=True)
class Work:
    """What every run of the comparison does: the pipeline, and the built-in one's records or a
    declared one's parameters."""

    pipeline: CutoverSteps = BUILTIN
    records: int = 1
    params: dict[str, Any] | None = None

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(self.pipeline.steps)


@dataclass(frozen=True)
class RunnerSpec:
    """A way to run the pipeline: which services it needs and how its steps are isolated."""

    name: str
    services: tuple[str, ...]
    isolation: str
    in_dagster: tuple[str, ...] = ()  # for Airflow's runners: the steps its DAG proxies to Dagster
    process_per_step: bool = True
    shadowed: tuple[str, ...] = ()  # for Airflow's runners: the steps Dagster runs again in the shadow


def runner_specs(pipeline: CutoverSteps = BUILTIN) -> tuple[RunnerSpec, ...]:
    """The pipeline's runners, headline first; the one-step cut-over runner ports the pipeline's first
    step of its own (`modify_data`, or a team's first step)."""
    ported = next((step.name for step in pipeline.steps.values() if step.declared), "modify_data")
    return (
        RunnerSpec("direct", (), "one process, warm: the CLI's own, the steps imported once", process_per_step=False),
        RunnerSpec("airflow", ("airflow",), "a process per step: LocalExecutor (a pod per task on the cluster)"),
        RunnerSpec(
            "dagster",
            ("dagster",),
            "a process per step: multiprocess executor (k8s_job_executor on the cluster); the steps only, "
            "as Airflow's DAG",
        ),
        RunnerSpec(
            "dagster-in-process",
            ("dagster",),
            "one process per run: in_process_executor, the steps share the run's process; the job as the UI runs "
            "it, with its asset checks after push",
            process_per_step=False,
        ),
        cut_over_runner(ported),
        RunnerSpec(
            f"{CUT_OVER}all",
            ("airflow", "dagster"),
            "a process per step: each Airflow task launches its step in a Dagster run of its own",
            in_dagster=tuple(pipeline.steps),
        ),
    )


def cut_over_runner(step: str) -> RunnerSpec:
    return RunnerSpec(
        f"{CUT_OVER}{step}",
        ("airflow", "dagster"),
        f"a process per step: Airflow's tasks, {step} launched in a Dagster run of its own",
        in_dagster=(step,),
    )


def shadow_runner(step: str) -> RunnerSpec:
    return RunnerSpec(
        f"{SHADOW}{step}",
        ("airflow", "dagster"),
        f"a process per step: Airflow's tasks, {step} run again by Dagster in the shadow (the version is "
        "published without waiting; the run ends when the shadow does)",
        shadowed=(step,),
    )


RUNNER_SPECS = runner_specs()
RUNNERS = tuple(spec.name for spec in RUNNER_SPECS)
SPECS = {spec.name: spec for spec in RUNNER_SPECS}


def runner_named(name: str, pipeline: CutoverSteps = BUILTIN) -> RunnerSpec:
    """The runner by its name (`->` may stand for `→`); an unknown name is an error listing them."""
    wanted = name.replace("->", "→")
    specs = {spec.name: spec for spec in runner_specs(pipeline)}
    if wanted in specs:
        return specs[wanted]
    if wanted.startswith(CUT_OVER) and wanted.removeprefix(CUT_OVER) in pipeline.steps:
        return cut_over_runner(wanted.removeprefix(CUT_OVER))
    own_steps = [step.name for step in pipeline.steps.values() if step.declared]
    if wanted.startswith(SHADOW) and wanted.removeprefix(SHADOW) in own_steps:
        return shadow_runner(wanted.removeprefix(SHADOW))
    shadowable = f", {SHADOW}STEP for a step of its own: {', '.join(own_steps)}" if own_steps else ""
    raise ValueError(
        f"unknown runner {name!r}; the runners are {', '.join(specs)}"
        f" (or {CUT_OVER}STEP for a step of {pipeline.names.dag_id}: {', '.join(pipeline.steps)}{shadowable})"
    )


def runner_names(asked: list[str] | None, pipeline: CutoverSteps = BUILTIN) -> tuple[str, ...]:
    """The runners asked for, each once, as the report names them; all of the pipeline's by default."""
    if not asked:
        return tuple(spec.name for spec in runner_specs(pipeline))
    return tuple(dict.fromkeys(runner_named(name, pipeline).name for name in asked))


@contextmanager
def cutover_kept(
    stack: LocalStack, specs: list[RunnerSpec], services: dict[str, Any], pipeline: CutoverSteps = BUILTIN
) -> Iterator[list[str] | None]:
    """The pipeline's cutover as it was before the comparison, parsed by Airflow again once it ends
    (however it ends).

    Yields the steps that were in Dagster then (and will be again), or None when no runner uses Airflow.
    """
    if not any("airflow" in spec.services for spec in specs) or not services.get("airflow", {}).get("running"):
        yield None
        return
    # a bad file fails here, naming its line, before any run
    before = read_cutover(pipeline.file(airflow_stack.cutover_file()), pipeline)
    try:
        yield before.in_dagster()
    finally:
        airflow_stack.Service(stack).apply_cutover(before)


def set_cutover(
    stack: LocalStack, spec: RunnerSpec, console: Console, pipeline: CutoverSteps = BUILTIN
) -> float | None:
    if "airflow" not in spec.services:
        return None
    lines = {**dict.fromkeys(spec.in_dagster, Runner.DAGSTER), **dict.fromkeys(spec.shadowed, Runner.SHADOW)}
    seconds = airflow_stack.Service(stack).apply_cutover(Cutover(lines, pipeline))
    shown = ", ".join(spec.in_dagster) or "nothing"
    shadowed = f", {', '.join(spec.shadowed)} shadowed" if spec.shadowed else ""
    console.print(
        f"{spec.name}: {shown} in Dagster{shadowed} (Airflow parsed the cutover in {seconds:.1f} s)", highlight=False
    )
    return round(seconds, 3)


Timings = list[tuple[str, StepTiming]]


def run_once(
    stack: LocalStack, settings: Settings, spec: RunnerSpec, work: Work, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings, dict[str, dict[str, Any]]]:
    """One run with the runner: its version, the seconds of each step as reported, the steps' timings,
    and what each shadowed step's shadow found (`shadow_measures`); `seen` gets the instant the client
    had the version."""
    if spec.name == "direct":
        return (*_direct_run(settings, work, seen), {})
    if spec.services[0] == "airflow":
        return _airflow_run(stack, spec, work, console, seen)
    return (*_dagster_run(stack, spec, work, console, seen), {})


def _direct_run(
    settings: Settings, work: Work, seen: list[float]
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

    version = run_pipeline(settings, new_run_id("direct"), records=work.records, on_step=on_step, params=work.params)
    seen.append(time.time())
    return version, steps, timings


def _airflow_run(
    stack: LocalStack, spec: RunnerSpec, work: Work, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings, dict[str, dict[str, Any]]]:
    from dataset_pipeline.airflow_runs import run_dag

    with airflow_stack.Service(stack).client() as client:
        outcome = run_dag(stack, client, work.records, None, console, work.pipeline.declared, work.params)
        seen.append(time.time())
        run_id = str(outcome.orchestrator_run_id)
        dag_id = work.pipeline.names.dag_id
        returned = {name: client.return_value(dag_id, run_id, name) for name in work.steps}
        shadows = {step: client.return_value(dag_id, run_id, shadow_task_id(step)) for step in spec.shadowed}
    timings = _timings(returned, work.steps)
    return outcome.version, dict(outcome.step_seconds), timings, shadow_measures(dict(timings), shadows)


def shadow_measures(
    timings: dict[str, StepTiming], shadows: dict[str, dict[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """Each shadowed step's work in Airflow's run and in Dagster's shadow of it, and whether they matched."""
    measured = {}
    for step, found in shadows.items():
        own = timings.get(step)
        measured[step] = {
            "airflow_seconds": round(own.seconds, 3) if own is not None else None,
            "dagster_seconds": (found or {}).get("dagster_seconds"),
            "matched": (found or {}).get("matched"),
            "summary": (found or {}).get("summary", "the shadow task returned nothing"),
        }
    return measured


def _dagster_run(
    stack: LocalStack, spec: RunnerSpec, work: Work, console: Console, seen: list[float]
) -> tuple[PublishedVersion, dict[str, float], Timings]:
    from dataset_pipeline.dagster_runs import run_job
    from orchestrator_clients.dagster_records import JobSelector

    client = dagster_stack.Service(stack).client()
    names = work.pipeline.names
    job = JobSelector(
        names.dagster_location, names.process_per_step_job if spec.process_per_step else names.dagster_job
    )
    outcome = run_job(stack, client, work.records, None, console, job, work.pipeline.declared, work.params)
    seen.append(time.time())
    assert outcome.orchestrator_run_id is not None
    materialized = client.run_materializations(outcome.orchestrator_run_id)
    returned = {step.name: materialized.get(names.asset_key(step.output)) for step in work.pipeline.steps.values()}
    return outcome.version, dict(outcome.step_seconds), _timings(returned, work.steps)


def _timings(records: dict[str, Any], steps: tuple[str, ...]) -> Timings:
    """Each step's timing from what it returned, in the pipeline's order (steps without one left out)."""
    found = [(name, timing_of(records.get(name))) for name in steps]
    return [(name, timing) for name, timing in found if timing is not None]
