"""A run's change: made once (generated from the run id, or read from a file), kept beside the
workspace, validated, and applied to whichever version the run builds on.

Keeping the change outside the clone is what lets a retried modify find it applied, and a push
that lost a race re-apply the very same records on the origin's new head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared_tasks.project.records import AppliedChange, KeptChange
from shared_tasks.run.context import RunContext
from shared_tasks.run.trust import remember_own_version
from shared_tasks.run.workspace import RunState, WorkspaceError
from shared_tasks.storage.dataset import records_to_csv_bytes
from shared_tasks.validation.validate import DataValidationError, Problem, read_change_file, validate_records

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


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
    change = KeptChange(source="step", step=step, assign_ids=ctx.rules.generated_key is not None, records=kept.rows)
    return state.model_copy(update={"change": change})


def apply_kept_change(ctx: RunContext, state: RunState) -> AppliedChange:
    """Apply the kept change to the workspace's dataset, exactly as it was made."""
    assert state.change is not None
    if state.change.source == "step":
        assert state.change.step is not None
        return apply_change(ctx, output_records(ctx, state.change.step), state.change.assign_ids)
    return apply_change(ctx, read_change_file(ctx.workspace.change_file, ctx.rules), state.change.assign_ids)


def output_records(ctx: RunContext, step: str) -> pd.DataFrame:
    """A step's kept output as records of the dataset: exactly the schema's fields, in its order
    (the generated key, which the product assigns, left out)."""
    from shared_tasks.run.team_steps import read_output

    frame = read_output(ctx, step)
    key = ctx.rules.generated_key
    wanted = [name for name in ctx.rules.table.names if name != key]
    source = f"output of step {step!r} of run {ctx.run_id!r}"
    problems = [Problem("missing: the schema declares it", column=name) for name in wanted if name not in frame]
    problems += [
        Problem(
            "the pipeline assigns this key; leave it out" if name == key else "not a field of the schema", column=name
        )
        for name in frame.columns
        if name not in wanted
    ]
    if problems:
        raise DataValidationError(source, problems)
    return frame[wanted]


def apply_change(ctx: RunContext, change: pd.DataFrame, assign_ids: bool) -> AppliedChange:
    dataset = ctx.dataset()
    key = ctx.rules.generated_key
    source = f"change of run {ctx.run_id!r}"
    if key is not None and assign_ids:
        first = dataset.largest_id() + 1
        change = change.assign(**{key: range(first, first + len(change))})[list(ctx.rules.table.names)]
    elif key is not None:
        taken = dataset.ids_taken([int(value) for value in change[key]])
        if taken:
            raise DataValidationError(
                source, [Problem("already in the dataset", column=key, value=str(v)) for v in taken]
            )
    validate_records(change, source=source, rules=ctx.rules)
    appended = dataset.append(change, ctx.settings.part_rows)
    facts = appended.facts
    if _keys_beyond_the_generated(ctx):
        _validate_whole(ctx, source)  # a unique key the change alone cannot vouch for
    remember_own_version(ctx, facts.md5, appended.holder_md5)
    ids = change[key] if key is not None else None
    return AppliedChange(
        md5=facts.md5,
        size=facts.size,
        rows=facts.rows,
        rows_added=len(change),
        first_id=None if ids is None else int(ids.min()),
        last_id=None if ids is None else int(ids.max()),
        written=dataset.written(facts.md5),
    )


def _keys_beyond_the_generated(ctx: RunContext) -> bool:
    keys = ctx.rules.table.unique_keys
    return any(names != (ctx.rules.generated_key,) for names in keys)


def _validate_whole(ctx: RunContext, source: str) -> None:
    """The whole new version against the schema, before it is published (the change's rows may
    repeat a unique value an earlier version holds)."""
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where read

    try:
        validate_dataset(ctx.dataset().files(), "the new version", spill_dir=ctx.workspace.root, rules=ctx.rules)
    except DataValidationError as error:
        raise DataValidationError(f"{source} applied to its base", error.problems, error.total) from None
