"""How a run's records become the new version (dbt's incremental strategies): appended, with an
optional generated key; merged on the schema's primaryKey (inserted, updated, or deleted by a
declared marker column); or replacing the dataset.

Each applies to whichever version the run builds on, the pulled one or the origin's new head
after a lost publish race, from the same kept records; nothing is written until they are valid.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from shared_tasks.project.declared import Strategy
from shared_tasks.project.records import AppliedChange
from shared_tasks.run.context import RunContext
from shared_tasks.run.trust import remember_own_version
from shared_tasks.storage.keyed import KeyedChange
from shared_tasks.validation.validate import DataValidationError, Problem, validate_records

if TYPE_CHECKING:
    import pandas as pd

    from shared_tasks.storage.layout import Rewritten
    from shared_tasks.validation.table_fields import Field


def apply_output(ctx: RunContext, step: str, assign_ids: bool) -> AppliedChange:
    """A declared pipeline's kept output applied by the pipeline's strategy."""
    strategy = ctx.settings.declared().output.strategy
    if strategy is Strategy.MERGE:
        return apply_merge(ctx, step)
    if strategy is Strategy.REPLACE:
        return apply_replace(ctx, step)
    return apply_append(ctx, output_records(ctx, step), assign_ids)


def output_records(ctx: RunContext, step: str, marker: str | None = None) -> pd.DataFrame:
    """A step's kept output as records of the dataset: exactly the schema's fields, in its order
    (the generated key, which the product assigns, left out; a merge's delete marker kept last)."""
    from shared_tasks.run.team_steps import read_output

    frame = read_output(ctx, step)
    key = ctx.rules.generated_key
    wanted = [name for name in ctx.rules.table.names if name != key]
    problems = [Problem("missing: the schema declares it", column=name) for name in wanted if name not in frame]
    problems += [
        Problem(
            "the pipeline assigns this key; leave it out" if name == key else "not a field of the schema", column=name
        )
        for name in frame.columns
        if name not in wanted and name != marker
    ]
    if problems:
        raise DataValidationError(f"output of step {step!r} of run {ctx.run_id!r}", problems)
    return frame[wanted + ([marker] if marker is not None and marker in frame else [])]


def apply_append(ctx: RunContext, change: pd.DataFrame, assign_ids: bool) -> AppliedChange:
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
    _validate_whole_unless_vouched(ctx, source, vouched=(key,))
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


def apply_merge(ctx: RunContext, step: str) -> AppliedChange:
    """Upsert the output's rows by primaryKey; rows marked by the delete column delete their key."""
    marker = ctx.settings.declared().output.delete_column
    table = ctx.rules.table
    source = f"output of step {step!r} of run {ctx.run_id!r}"
    frame = output_records(ctx, step, marker)
    deleting = _delete_marks(frame, marker, source)
    names = list(table.names)
    upserts, deletes = frame.loc[~deleting, names], frame.loc[deleting, list(table.primary_key)]
    try:
        validate_records(upserts, source=source, rules=ctx.rules)
    except DataValidationError as error:  # its lines counted in the upserts alone: named as the output's
        lines = [position + 2 for position in upserts.index]
        moved = [
            dataclasses.replace(p, line=lines[p.line - 2]) if p.line is not None and 2 <= p.line < len(lines) + 2 else p
            for p in error.problems
        ]
        raise DataValidationError(source, moved, error.total) from None
    key_fields = [table.field(name) for name in table.primary_key]
    _check_delete_keys(deletes, key_fields, source)
    change = KeyedChange.of(key_fields, names, upserts, deletes)
    twice = len(upserts) + len(deletes) - len(change.rows)
    if twice:
        raise DataValidationError(source, [Problem(f"{twice} key(s) both written and deleted in one output")])
    rewritten = ctx.dataset().merge(change, ctx.settings.part_rows)
    _validate_whole_unless_vouched(ctx, source, vouched=table.primary_key)
    return _applied(ctx, rewritten)


def apply_replace(ctx: RunContext, step: str) -> AppliedChange:
    """The output is the whole new version: validated whole, then written in place of the old one."""
    records = output_records(ctx, step)
    validate_records(records, source=f"output of step {step!r} of run {ctx.run_id!r}", rules=ctx.rules)
    return _applied(ctx, ctx.dataset().replace(records, ctx.settings.part_rows))


def _applied(ctx: RunContext, rewritten: Rewritten) -> AppliedChange:
    facts, counts = rewritten.facts, rewritten.counts
    remember_own_version(ctx, facts.md5, *rewritten.written_md5s)
    return AppliedChange(
        md5=facts.md5,
        size=facts.size,
        rows=facts.rows,
        rows_added=counts.inserted,
        first_id=None,
        last_id=None,
        written=ctx.dataset().written(facts.md5),
        rows_updated=counts.updated,
        rows_deleted=counts.deleted,
    )


def _delete_marks(frame: pd.DataFrame, marker: str | None, source: str) -> pd.Series:
    import pandas as pd

    if marker is None or marker not in frame:
        return pd.Series(False, index=frame.index)
    marks = frame[marker]
    if not (pd.api.types.is_bool_dtype(marks) or marks.dropna().map(lambda v: isinstance(v, bool)).all()):
        raise DataValidationError(source, [Problem("the delete marker must be true or false", column=marker)])
    return marks.fillna(False).astype(bool)


def _check_delete_keys(deletes: pd.DataFrame, key_fields: list[Field], source: str) -> None:
    """A deleting row needs only its key, but that key must be a valid one."""
    problems: list[Problem] = []
    cells = deletes.astype(object).where(deletes.notna(), "").astype(str).values.tolist()
    for line, raw in zip((position + 2 for position in deletes.index), cells, strict=True):
        for key_field, value in zip(key_fields, raw, strict=True):
            logical, error = key_field.read(value)
            if error or logical is None:
                problems.append(Problem(error or "missing key", line=line, column=key_field.name, value=value))
    if problems:
        raise DataValidationError(f"{source} (rows deleting a key)", problems)


def _validate_whole_unless_vouched(ctx: RunContext, source: str, vouched: tuple[str | None, ...]) -> None:
    """The whole new version against the schema, before it is published, when a unique key is one
    the records alone cannot vouch for (they may repeat a value an earlier version holds)."""
    if all(names == vouched for names in ctx.rules.table.unique_keys):
        return
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where read

    try:
        validate_dataset(ctx.dataset().files(), "the new version", spill_dir=ctx.workspace.root, rules=ctx.rules)
    except DataValidationError as error:
        raise DataValidationError(f"{source} applied to its base", error.problems, error.total) from None
