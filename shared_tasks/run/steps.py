"""The three steps both orchestrators call: pull, modify, push.

Each step reads its inputs from settings and the run's workspace, so each can run in its own
pod; each returns a small typed record. Every step may be retried: modify applies the run's
change exactly once, and push recognises a version it already published by the Run-Id trailer
on the origin, so a retry never duplicates or drops a version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared_tasks.project.records import MAX_RECORDS_PER_RUN, ChangeSummary, PublishedVersion, PulledVersion, StepOutput
from shared_tasks.project.settings import Settings
from shared_tasks.run.change import apply_kept_change, kept_change, kept_output
from shared_tasks.run.context import RunContext
from shared_tasks.run.publish import publish, published_version
from shared_tasks.run.team_steps import run_team_step
from shared_tasks.run.trust import pull_head_data
from shared_tasks.run.workspace import RunState, WorkspaceError
from shared_tasks.versioning.versions import VersionRecord

_ORCHESTRATOR_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def pull_data(settings: Settings, run_id: str, runner: str = "direct") -> PulledVersion:
    """Bring the run's workspace to the branch head with its data, checked against the schema."""
    ctx = RunContext(settings, run_id)
    workspace = ctx.workspace
    with workspace.locked():
        ctx.clone_at_origin_head()
        pulled = pull_head_data(ctx)
        state = workspace.load_state().model_copy(update={"pulled": pulled, "applied": None})
        workspace.save_state(state.ran("pull_data", _checked_name(runner)))
    return pulled


def modify_data(
    settings: Settings, run_id: str, records: int = 1, change_file: Path | None = None, runner: str = "direct"
) -> ChangeSummary:
    """Produce the run's change (same run id, same change), validate it, apply it exactly once."""
    if not 1 <= records <= MAX_RECORDS_PER_RUN:
        raise ValueError(f"records must be between 1 and {MAX_RECORDS_PER_RUN}, got {records}")
    ctx = RunContext(settings, run_id)
    workspace = ctx.workspace
    with workspace.locked():
        state = workspace.load_state()
        pulled = state.pulled
        if pulled is None:
            raise WorkspaceError(f"pull_data has not run for run {run_id!r}; run it first")
        done = ctx.published("HEAD")
        if done is not None:
            return _summary_of_published(done, state)
        state = kept_change(ctx, state, records, change_file)
        current_md5 = ctx.dataset().facts().md5
        if state.applied is not None and current_md5 == state.applied.md5:
            return _summary(state)
        if current_md5 != pulled.md5:
            _restore_pulled_data(ctx, pulled)  # a step killed after writing the data, before recording it
        state = state.model_copy(update={"applied": apply_kept_change(ctx, state)})
        workspace.save_state(state.ran("modify_data", _checked_name(runner)))
    return _summary(state)


def run_declared_step(
    settings: Settings, run_id: str, step: str, params: Mapping[str, Any] | None = None, runner: str = "direct"
) -> StepOutput:
    """One of a declared pipeline's own steps: its output kept in the run's workspace, made once."""
    ctx = RunContext(settings, run_id)
    return run_team_step(ctx, settings.declared(), step, params or {}, _checked_name(runner))


def push_data(
    settings: Settings, run_id: str, orchestrator: str = "direct", runner: str | None = None
) -> PublishedVersion:
    """Publish the run's change: data to the DVC remote first, then the pointer to Git."""
    _checked_name(orchestrator)
    runner = _checked_name(runner or orchestrator)
    ctx = RunContext(settings, run_id)
    with ctx.workspace.locked():
        state = ctx.workspace.load_state()
        if state.applied is None and state.pulled is not None and settings.is_declared:
            ctx.git.fetch()
            done = ctx.published(ctx.git.origin_ref)
            if done is not None:
                return published_version(ctx, done, attempts=0, already=True)
            state = _apply_declared_output(ctx, state)
        if state.applied is None:
            if state.pulled is not None:
                ctx.git.fetch()
                done = ctx.published(ctx.git.origin_ref)
                if done is not None:
                    return published_version(ctx, done, attempts=0, already=True)
            raise WorkspaceError(f"modify_data has not run for run {run_id!r}; nothing to publish")
        ctx.workspace.save_state(state.ran("push_data", runner))
        return publish(ctx, orchestrator)


def _apply_declared_output(ctx: RunContext, state: RunState) -> RunState:
    """A declared pipeline's output applied to the pulled version by its strategy, exactly once."""
    pulled = state.pulled
    assert pulled is not None
    state = kept_output(ctx, state)
    if ctx.dataset().facts().md5 != pulled.md5:
        _restore_pulled_data(ctx, pulled)  # a publish killed after writing the data, before recording it
    state = state.model_copy(update={"applied": apply_kept_change(ctx, state)})
    ctx.workspace.save_state(state)
    return state


def _checked_name(orchestrator: str) -> str:
    if not _ORCHESTRATOR_NAME.match(orchestrator):
        raise ValueError(f"orchestrator must be a short lower-case name, got {orchestrator!r}")
    return orchestrator


def _restore_pulled_data(ctx: RunContext, pulled: PulledVersion) -> None:
    """Put the pulled version's data back in the workspace, from the pointer that still names it."""
    recorded = ctx.pointer_md5()
    if recorded != pulled.md5:
        raise WorkspaceError(
            f"the workspace of run {ctx.run_id!r} no longer holds the pulled version {pulled.md5} "
            f"(its pointer says {recorded}); rerun pull_data"
        )
    ctx.dvc.pull()
    restored = ctx.dataset().facts().md5
    if restored != pulled.md5:
        raise WorkspaceError(
            f"the pulled data of run {ctx.run_id!r} could not be restored (md5 {restored}); rerun pull_data"
        )


def _summary(state: RunState) -> ChangeSummary:
    assert state.pulled is not None and state.applied is not None
    applied = state.applied
    return ChangeSummary(
        run_id=state.run_id,
        base_commit=state.pulled.commit,
        rows_added=applied.rows_added,
        first_id=applied.first_id,
        last_id=applied.last_id,
        md5=applied.md5,
        rows=applied.rows,
    )


def _summary_of_published(version: VersionRecord, state: RunState) -> ChangeSummary:
    assert state.pulled is not None
    return ChangeSummary(
        run_id=state.run_id,
        base_commit=state.pulled.commit,
        rows_added=version.rows_added or 0,
        first_id=None,
        last_id=None,
        md5=version.md5,
        rows=version.rows,
        already_published=True,
    )
