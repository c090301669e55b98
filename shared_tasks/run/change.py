"""A run's change: made once (generated from the run id, or read from a file), kept beside the
workspace, validated, and applied to whichever version the run builds on.

Keeping the change outside the clone is what lets a retried modify find it applied, and a push
that lost a race re-apply the very same records on the origin's new head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared_tasks.project.records import AppliedChange, KeptChange
from shared_tasks.run.context import RunContext
from shared_tasks.run.strategies import apply_append, apply_output
from shared_tasks.run.workspace import RunState, WorkspaceError
from shared_tasks.storage.dataset import records_to_csv_bytes
from shared_tasks.validation.validate import read_change_file, validate_records

if TYPE_CHECKING:
    from pathlib import Path


def kept_change(ctx: RunContext, state: RunState, records: int, change_file: Path | None) -> RunState:
    """The state with the run's change made and kept; a change made before is checked and reused."""
    workspace = ctx.workspace
    if workspace.change_file.exists() and state.change is not None:
        if change_file is not None:
            if not read_change_file(change_file).equals(read_change_file(workspace.change_file)):
                raise WorkspaceError(f"run {state.run_id!r} already has a different change; use a new run id")
        elif state.change.source == "generated" and state.change.records != records:
            raise WorkspaceError(
                f"run {state.run_id!r} already generated {state.change.records} record(s), not {records}; "
                "use a new run id"
            )
        return state
    if change_file is not None:
        change = read_change_file(change_file)
        kept = KeptChange(source="file", assign_ids=False, records=len(change))
    else:
        from shared_tasks.run.generate import generate_run_records

        change = generate_run_records(state.run_id, records)
        validate_records(change, source=f"generated change of run {state.run_id!r}")
        kept = KeptChange(source="generated", assign_ids=True, records=records)
    workspace.write_durably(workspace.change_file, records_to_csv_bytes(change, header=True))
    return state.model_copy(update={"change": kept})


def kept_output(ctx: RunContext, state: RunState) -> RunState:
    """The state with a declared pipeline's change named: its output step's kept output."""
    pipeline = ctx.settings.declared()
    step = pipeline.output_step
    kept = state.outputs.get(step)
    if kept is None:
        raise WorkspaceError(f"step {step!r} has not run for run {state.run_id!r}; nothing to publish")
    change = KeptChange(
        source="step",
        step=step,
        assign_ids=ctx.rules.generated_key is not None,
        records=kept.rows,
        computed_from=state.pulled.commit if state.pulled is not None else None,
    )
    return state.model_copy(update={"change": change})


def apply_kept_change(ctx: RunContext, state: RunState) -> AppliedChange:
    """Apply the kept change to the workspace's dataset, exactly as it was made."""
    assert state.change is not None
    if state.change.source == "step":
        assert state.change.step is not None
        return apply_output(ctx, state.change.step, state.change.assign_ids)
    return apply_append(ctx, read_change_file(ctx.workspace.change_file, ctx.rules), state.change.assign_ids)
