"""Compare the orchestrators on identical work: the same steps, the same origin, N runs each.

Runs go through each orchestrator's public API, as a user's would, and the direct run is the
baseline. The headline runners give every step a process of its own, as the cluster gives each a
pod (Airflow's LocalExecutor, Dagster's multiprocess executor); the in-process Dagster run and the
steps Airflow proxies to Dagster (the cut-over modes of a port) are runners of their own, labelled
with their isolation. Each run's seconds are split into parts (`run_parts`). While a runner works,
its processes' memory is sampled (the whole process group of each orchestrator component, so task
runners and code servers count too).

The runners, and how one run with each is made, are in `compare_runners`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from dataset_pipeline.compare_runners import (
    RUNNERS,
    STEP_NAMES,
    RunnerSpec,
    Work,
    cutover_kept,
    run_once,
    runner_named,
    set_cutover,
)
from dataset_pipeline.run_parts import PARTS, STEP_PART_NAMES, split_run
from dataset_pipeline.stack import LocalStack
from shared_tasks.project.settings import Settings

SAMPLE_SECONDS = 0.2


@dataclass(frozen=True)
class RunMeasure:
    runner: str
    run_id: str | None
    ok: bool
    seconds: float
    step_seconds: dict[str, float]
    commit: str | None = None
    error: str | None = None
    parts: dict[str, Any] | None = None  # RunParts.to_dict(): by part, and each step's share
    shadows: dict[str, dict[str, Any]] = field(default_factory=dict)  # shadowed step -> both sides' work


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        return cls(statistics.median(values), min(values), max(values)) if values else None

    def text(self) -> str:
        return f"{self.median:.2f} [{self.low:.2f}–{self.high:.2f}]"


@dataclass
class RunnerSummary:
    runner: str
    runs: int
    successes: int
    end_to_end: Spread | None
    steps: dict[str, Spread | None]
    idle_rss_mb: float | None
    peak_rss_mb: float | None
    isolation: str = ""
    parts: dict[str, Spread | None] = field(default_factory=dict)
    step_parts: dict[str, dict[str, float]] = field(default_factory=dict)  # median seconds per step and part
    overhead_seconds: float | None = None
    cutover_seconds: float | None = None  # how long Airflow took to parse the runner's cutover
    shadows: dict[str, ShadowSummary] = field(default_factory=dict)  # shadowed step -> both sides, same runs


@dataclass(frozen=True)
class ShadowSummary:
    """A shadowed step over a runner's runs: its work in Airflow's runs and in Dagster's shadows of them."""

    airflow: Spread | None
    dagster: Spread | None
    matched: int
    runs: int

    @classmethod
    def of(cls, step: str, measures: list[RunMeasure]) -> ShadowSummary:
        found = [m.shadows[step] for m in measures if step in m.shadows]
        return cls(
            Spread.of([f["airflow_seconds"] for f in found if f.get("airflow_seconds") is not None]),
            Spread.of([f["dagster_seconds"] for f in found if f.get("dagster_seconds") is not None]),
            sum(1 for f in found if f.get("matched") is True),
            len(found),
        )


@dataclass
class Comparison:
    runs_per_runner: int
    records: int
    started: str
    pipeline: str = "dataset"
    steps: list[str] = field(default_factory=lambda: list(STEP_NAMES))
    params: dict[str, Any] | None = None  # a declared pipeline's run parameters
    measures: list[RunMeasure] = field(default_factory=list)
    summaries: list[RunnerSummary] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    cutover_restored: list[str] | None = None  # the steps in Dagster when the comparison began (and ends)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemorySampler:
    """Peak resident memory of a set of processes, sampled in the background."""

    def __init__(self, processes: Callable[[], Iterable[Any]]) -> None:
        self.processes = processes
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current_bytes(self) -> int:
        import psutil

        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def service_processes(pgids: Iterable[int]) -> Callable[[], list[Any]]:
    """Every process in the given process groups (a component and all it forked)."""
    import os

    import psutil

    groups = set(pgids)

    def listing() -> list[Any]:
        found = []
        for process in psutil.process_iter():
            try:
                if os.getpgid(process.pid) in groups:
                    found.append(process)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return found

    return listing


def this_process() -> Callable[[], list[Any]]:
    import psutil

    me = psutil.Process()
    return lambda: [me]


def run_comparison(
    stack: LocalStack,
    settings: Settings,
    runs: int,
    work: Work,
    console: Console,
    runners: tuple[str, ...] = RUNNERS,
) -> Comparison:
    comparison = Comparison(
        runs,
        work.records,
        datetime.now(UTC).isoformat(timespec="seconds"),
        pipeline=work.pipeline.names.pipeline,
        steps=list(work.steps),
        params=work.params,
    )
    services = stack.status()["services"]
    specs = [runner_named(name, work.pipeline) for name in runners]
    with cutover_kept(stack, specs, services, work.pipeline) as restored:
        comparison.cutover_restored = restored
        for spec in specs:
            missing = [name for name in spec.services if not services.get(name, {}).get("running")]
            if missing:
                why = f"{' and '.join(missing)} not running (start the stack with `dataset-pipeline stack up`)"
                comparison.skipped[spec.name] = why
                console.print(f"[yellow]skipping {spec.name}[/yellow]: {why}", highlight=False)
                continue
            cutover_seconds = set_cutover(stack, spec, console, work.pipeline)
            pgids = [pid for name in spec.services for pid in services[name]["pids"].values()]
            processes = service_processes(pgids) if pgids else this_process()
            measures, idle, peak = _measure_runner(stack, settings, spec, (runs, work), console, processes)
            comparison.measures.extend(measures)
            summary = summarize(spec.name, measures, idle, peak, work.steps, spec.isolation)
            summary.cutover_seconds = cutover_seconds
            comparison.summaries.append(summary)
    _add_overheads(comparison.summaries)
    comparison.versions = _versions_made(settings, comparison.measures)
    return comparison


def _measure_runner(
    stack: LocalStack,
    settings: Settings,
    spec: RunnerSpec,
    runs_and_work: tuple[int, Work],
    console: Console,
    processes: Callable[[], Iterable[Any]],
) -> tuple[list[RunMeasure], float, float]:
    runs, work = runs_and_work
    sampler = MemorySampler(processes)
    idle = sampler.current_bytes()
    measures = []
    quiet = Console(quiet=True)  # the runners' own progress lines; the comparison prints its own
    with sampler:
        for number in range(1, runs + 1):
            console.print(f"{spec.name}: run {number}/{runs}…", highlight=False)
            measure = _one_run(stack, settings, spec, work, quiet)
            if measure.ok:
                console.print(f"  [green]✓[/green] {measure.seconds:.2f} s", highlight=False)
            else:
                console.print(f"  ✗ {measure.seconds:.2f} s: {measure.error}", style="red", markup=False)
            measures.append(measure)
    return measures, idle / 2**20, sampler.peak_bytes / 2**20


def _one_run(stack: LocalStack, settings: Settings, spec: RunnerSpec, work: Work, console: Console) -> RunMeasure:
    requested_at, started = time.time(), time.perf_counter()
    seen: list[float] = []
    try:
        version, steps, timings, shadows = run_once(stack, settings, spec, work, console, seen)
    except Exception as error:  # one failed run is a figure of the comparison, not its end
        return RunMeasure(spec.name, None, False, time.perf_counter() - started, {}, error=str(error)[:300])
    seconds = seen[0] - requested_at
    parts = split_run(requested_at, seen[0], timings).to_dict() if len(timings) == len(work.steps) else None
    return RunMeasure(spec.name, version.run_id, True, seconds, steps, version.commit, parts=parts, shadows=shadows)


def summarize(
    runner: str,
    measures: list[RunMeasure],
    idle_mb: float,
    peak_mb: float,
    steps: tuple[str, ...] = STEP_NAMES,
    isolation: str | None = None,
) -> RunnerSummary:
    done = [m for m in measures if m.ok]
    split = [m.parts for m in done if m.parts is not None]
    step_parts = {
        step: {
            part: round(statistics.median(parts["steps"][step][part] for parts in split), 3) for part in STEP_PART_NAMES
        }
        for step in steps
        if split and all(step in parts["steps"] for parts in split)
    }
    return RunnerSummary(
        runner=runner,
        runs=len(measures),
        successes=len(done),
        end_to_end=Spread.of([m.seconds for m in done]),
        steps={name: Spread.of([m.step_seconds[name] for m in done if name in m.step_seconds]) for name in steps},
        idle_rss_mb=round(idle_mb, 1),
        peak_rss_mb=round(max(peak_mb, idle_mb), 1),
        isolation=isolation if isolation is not None else runner_named(runner).isolation,
        parts={part: Spread.of([parts["parts"][part] for parts in split]) for part in PARTS},
        step_parts=step_parts,
        shadows={step: ShadowSummary.of(step, done) for step in steps if any(step in m.shadows for m in done)},
    )


def _add_overheads(summaries: list[RunnerSummary]) -> None:
    baseline = next((s.end_to_end for s in summaries if s.runner == "direct"), None)
    if baseline is None:
        return
    for summary in summaries:
        if summary.end_to_end is not None:
            summary.overhead_seconds = round(summary.end_to_end.median - baseline.median, 3)


def _versions_made(settings: Settings, measures: list[RunMeasure]) -> list[dict[str, Any]]:
    from shared_tasks.versioning.history import history

    made = {m.run_id for m in measures if m.ok}
    return [version.to_dict() for version in history(settings) if version.run_id in made]
