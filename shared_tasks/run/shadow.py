"""A step run in the shadow of another orchestrator's run: the same inputs, another environment.

Before a team's step moves from Airflow to Dagster, Dagster runs it again beside Airflow's run:
in a shadow workspace of its own, forked from Airflow's run where that step starts (the version
the run pulled, checked out and pulled again from the shared DVC cache; the kept outputs of the
steps it takes; the run's parameters), with the same run id, so the same seed. The shadow reads
Airflow's workspace and never writes it, and publishes nothing: no publishing step can be
shadowed. Its output is then compared with Airflow's (shadow_compare): what differs is what
Dagster's environment (its image, variables, secrets, resources) does to the step. A step that
fails in the shadow is a difference too, with its error.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared_tasks.project.declared import DeclaredPipeline
from shared_tasks.project.settings import Settings
from shared_tasks.run.context import RunContext
from shared_tasks.run.shadow_compare import OutputComparison, compare_outputs
from shared_tasks.run.team_steps import load_step_function, output_file, run_team_step
from shared_tasks.run.trust import pull_head_data
from shared_tasks.run.workspace import RunState, Workspace, WorkspaceError

if TYPE_CHECKING:
    from shared_tasks.project.records import StepOutput


@dataclass(frozen=True)
class ShadowOutcome:
    step: str
    run_id: str
    code_digest: str  # of the step's module when the shadow ran: "since the step's code last changed"
    matched: bool
    summary: str
    deterministic: bool
    comparison: OutputComparison | None = None  # None: the shadow failed before it had an output
    error: str | None = None
    seconds: float | None = None  # the step's own work in the shadow, as Airflow's record times its run of it

    def metadata(self) -> dict[str, str | int | float | bool]:
        """What a report of it carries (the asset check's metadata): flat text and numbers."""
        found: dict[str, str | int | float | bool] = {
            "step": self.step,
            "airflow_run_id": self.run_id,
            "code_digest": self.code_digest,
            "matched": self.matched,
            "deterministic": self.deterministic,
            "summary": self.summary,
        }
        if self.comparison is not None:
            found |= {
                "airflow_rows": self.comparison.expected_rows,
                "dagster_rows": self.comparison.actual_rows,
                "airflow_md5": self.comparison.expected_md5,
                "dagster_md5": self.comparison.actual_md5,
            }
        if self.error is not None:
            found["error"] = self.error
        if self.seconds is not None:
            found["dagster_seconds"] = self.seconds
        return found


def step_code_digest(pipeline: DeclaredPipeline, step: str) -> str:
    """The md5 of the source file the step's function is in: a shadow counts only for this code."""
    function = load_step_function(pipeline, pipeline.step(step))
    source = inspect.getsourcefile(function)
    if source is None:
        raise WorkspaceError(f"the source of step {step!r} ({pipeline.step(step).function}) cannot be found")
    return hashlib.md5(Path(source).read_bytes(), usedforsecurity=False).hexdigest()


def shadow_workspace(settings: Settings, run_id: str, step: str) -> Workspace:
    """Where the shadow of `step` in run `run_id` works: beside the runs' own, never one of them."""
    own = Workspace.for_run(settings.work_root, run_id)
    return Workspace(settings.work_root / "shadows" / own.root.name / step, run_id)


def run_shadow(settings: Settings, pipeline: DeclaredPipeline, step_name: str, run_id: str) -> ShadowOutcome:
    """Run `step_name` in the shadow of run `run_id` and compare its output with the run's own."""
    step = pipeline.step(step_name)
    digest = step_code_digest(pipeline, step_name)
    original = RunContext(settings, run_id)
    state = original.workspace.load_state()  # read only: the run may go on meanwhile
    _kept_output(original, state, step_name)
    shadow = RunContext(settings, run_id, workspace=shadow_workspace(settings, run_id, step_name))

    def outcome(
        matched: bool, summary: str, comparison: OutputComparison | None = None, error: str | None = None
    ) -> ShadowOutcome:
        return ShadowOutcome(
            step_name, run_id, digest, matched, summary, step.deterministic, comparison, error, seconds
        )

    seconds = None
    try:
        _fork(original, shadow, state, pipeline, step_name)
        started = time.perf_counter()
        actual = run_team_step(shadow, pipeline, step_name, dict(state.params or {}), "dagster")
        seconds = round(time.perf_counter() - started, 3)
    except Exception as error:
        said = f"{type(error).__name__}: {error}"
        return outcome(matched=False, summary=f"the step failed in the shadow: {said}", error=said)
    import polars as pl

    comparison = compare_outputs(
        pl.read_parquet(output_file(original, step_name)),
        pl.read_parquet(output_file(shadow, actual.step)),
        key=_key(original),
        deterministic=step.deterministic,
    )
    return outcome(matched=comparison.matched, summary=comparison.summary(), comparison=comparison)


def _kept_output(ctx: RunContext, state: RunState, step: str) -> StepOutput:
    """The run's own output of the step, as the run recorded it."""
    kept = state.outputs.get(step)
    path = output_file(ctx, step)
    if kept is None or not path.is_file():
        raise WorkspaceError(f"run {ctx.run_id!r} has no kept output of step {step!r} to compare a shadow with")
    if hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() != kept.md5:
        raise WorkspaceError(f"the kept output of step {step!r} in run {ctx.run_id!r} is not what the run recorded")
    return kept


def _fork(original: RunContext, shadow: RunContext, state: RunState, pipeline: DeclaredPipeline, step: str) -> None:
    """The shadow workspace as the run's was when `step` started: made anew each time."""
    if state.pulled is None:
        raise WorkspaceError(f"pull_data has not run for run {original.run_id!r}")
    inputs = [name for name in pipeline.step(step).inputs if name in state.outputs]
    shutil.rmtree(shadow.workspace.root, ignore_errors=True)
    with shadow.workspace.locked():
        shadow.git.clone(shadow.workspace.repo)
        shadow.git.reset_hard(state.pulled.commit)
        pulled = pull_head_data(shadow)
        if pulled.md5 != state.pulled.md5:
            raise WorkspaceError(f"run {original.run_id!r}'s pulled version cannot be pulled again (md5 {pulled.md5})")
        for name in inputs:
            target = output_file(shadow, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(output_file(original, name), target)
        outputs = {name: state.outputs[name] for name in inputs}
        shadow.workspace.save_state(
            RunState(run_id=original.run_id, pulled=state.pulled, params=state.params, outputs=outputs)
        )


def _key(ctx: RunContext) -> list[str]:
    return list(ctx.rules.table.primary_key)
