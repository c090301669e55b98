"""Two runs' outputs of one step compared: equal, or different in ways a person can act on.

Before a step moves from Airflow to Dagster, Dagster runs it in the shadow of Airflow's run, on the
same inputs, and the two outputs are compared (the porting issue's shadow mode). Equal means the
same digest of the canonical form: the same columns with the same types, and the same rows in any
order. When they differ, the summary says how: columns only in one, types that differ, and the
rows: matched on the schema's primary key when the step's output holds it (rows only in one, rows
whose other columns changed, with the columns and the first examples), else as whole rows (each
row counted on both sides). A step declared non-deterministic (it draws new rows each run) is
compared on its columns, types and row count only, and the summary says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

EXAMPLES = 3  # rows shown of each kind of difference
NON_DETERMINISTIC = "a non-deterministic step, compared on its columns, types and row count only"


@dataclass(frozen=True)
class ChangedRow:
    key: dict[str, Any]
    columns: dict[str, tuple[Any, Any]]  # column -> (Airflow's value, Dagster's value)


@dataclass(frozen=True)
class OutputComparison:
    """What differs between Airflow's output of a step (`expected`) and Dagster's (`actual`)."""

    expected_md5: str
    actual_md5: str
    deterministic: bool
    expected_rows: int
    actual_rows: int
    only_expected_columns: list[str] = field(default_factory=list)
    only_actual_columns: list[str] = field(default_factory=list)
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    matched_on: list[str] = field(default_factory=list)  # the key rows were matched on; empty: whole rows
    only_expected: int = 0  # rows (or keys) only in Airflow's output
    only_actual: int = 0
    changed: int = 0  # keys in both whose other columns differ
    changed_columns: dict[str, int] = field(default_factory=dict)  # column -> rows in which it differs
    examples_only_expected: list[dict[str, Any]] = field(default_factory=list)
    examples_only_actual: list[dict[str, Any]] = field(default_factory=list)
    examples_changed: list[ChangedRow] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        if self.deterministic:
            return self.expected_md5 == self.actual_md5
        return not (self.only_expected_columns or self.only_actual_columns or self.type_changes) and (
            self.expected_rows == self.actual_rows
        )

    def summary(self) -> str:
        if self.matched:
            if self.deterministic:
                return f"equal: {self.expected_rows} rows, md5 {self.expected_md5}"
            return f"{NON_DETERMINISTIC}: equal ({self.expected_rows} rows)"
        lines = ["Airflow's output and Dagster's differ:"]
        if not self.deterministic:
            lines[0] = f"{NON_DETERMINISTIC}: they differ:"
        if self.only_expected_columns:
            lines.append(f"- columns only in Airflow's: {', '.join(self.only_expected_columns)}")
        if self.only_actual_columns:
            lines.append(f"- columns only in Dagster's: {', '.join(self.only_actual_columns)}")
        for column, (airflows, dagsters) in self.type_changes.items():
            lines.append(f"- column {column!r}: {airflows} in Airflow's, {dagsters} in Dagster's")
        if self.expected_rows != self.actual_rows:
            lines.append(f"- rows: {self.expected_rows} in Airflow's, {self.actual_rows} in Dagster's")
        if self.deterministic:
            lines += self._row_lines()
        return "\n".join(lines)

    def _row_lines(self) -> list[str]:
        lines, unit = [], f"key(s) ({', '.join(self.matched_on)})" if self.matched_on else "row(s)"
        if self.only_expected:
            lines.append(f"- {self.only_expected} {unit} only in Airflow's, e.g. {self.examples_only_expected}")
        if self.only_actual:
            lines.append(f"- {self.only_actual} {unit} only in Dagster's, e.g. {self.examples_only_actual}")
        if self.changed:
            columns = ", ".join(f"{name} ({count})" for name, count in self.changed_columns.items())
            lines.append(f"- {self.changed} row(s) changed, in columns {columns}; e.g.:")
            for row in self.examples_changed:
                cells = "; ".join(f"{c}: {a!r} -> {d!r}" for c, (a, d) in row.columns.items())
                lines.append(f"  {row.key}: {cells} (Airflow's -> Dagster's)")
        return lines


def canonical_md5(frame: pl.DataFrame) -> str:
    """A digest of a frame's columns, their types and its rows in any order."""
    import polars as pl

    digest = hashlib.md5(usedforsecurity=False)
    digest.update(repr([(name, str(dtype)) for name, dtype in frame.schema.items()]).encode())
    if frame.width:
        ordered = frame.sort(frame.columns, nulls_last=True) if frame.height else frame
        digest.update(ordered.hash_rows(seed=0).cast(pl.UInt64).to_numpy().tobytes())
        digest.update(str(frame.height).encode())
    return digest.hexdigest()


def compare_outputs(
    expected: pl.DataFrame, actual: pl.DataFrame, key: Sequence[str] = (), deterministic: bool = True
) -> OutputComparison:
    """Airflow's output (`expected`) beside Dagster's (`actual`); `key`: the schema's primary key."""
    shared = [name for name in expected.columns if name in actual.columns]
    types = {
        name: (str(expected.schema[name]), str(actual.schema[name]))
        for name in shared
        if expected.schema[name] != actual.schema[name]
    }
    comparison = OutputComparison(
        expected_md5=canonical_md5(expected),
        actual_md5=canonical_md5(actual),
        deterministic=deterministic,
        expected_rows=expected.height,
        actual_rows=actual.height,
        only_expected_columns=[name for name in expected.columns if name not in actual.columns],
        only_actual_columns=[name for name in actual.columns if name not in expected.columns],
        type_changes=types,
    )
    if not deterministic or comparison.matched:
        return comparison
    comparable = [name for name in shared if name not in types]
    usable_key = [name for name in key if name in comparable]
    if usable_key and len(usable_key) == len(key) and _unique(expected, key) and _unique(actual, key):
        return _by_key(comparison, expected.select(comparable), actual.select(comparable), list(key))
    return _by_whole_rows(comparison, expected.select(comparable), actual.select(comparable))


def _unique(frame: pl.DataFrame, key: Sequence[str]) -> bool:
    return frame.select(key).is_duplicated().sum() == 0


def _by_key(
    comparison: OutputComparison, expected: pl.DataFrame, actual: pl.DataFrame, key: list[str]
) -> OutputComparison:
    import polars as pl

    only_expected = expected.join(actual.select(key), on=key, how="anti", nulls_equal=True).sort(key)
    only_actual = actual.join(expected.select(key), on=key, how="anti", nulls_equal=True).sort(key)
    others = [name for name in expected.columns if name not in key]
    both = expected.join(actual, on=key, how="inner", suffix="__dagster", nulls_equal=True).sort(key)
    differs = {name: ~pl.col(name).eq_missing(pl.col(f"{name}__dagster")) for name in others}
    flagged = both.with_columns(**{f"{name}__differs": test for name, test in differs.items()})
    changed = flagged.filter(pl.any_horizontal([f"{name}__differs" for name in others])) if others else flagged.head(0)
    counts = {name: int(changed[f"{name}__differs"].sum()) for name in others}
    examples = [
        ChangedRow(
            key={name: row[name] for name in key},
            columns={name: (row[name], row[f"{name}__dagster"]) for name in others if row[f"{name}__differs"]},
        )
        for row in changed.head(EXAMPLES).iter_rows(named=True)
    ]
    return _with(
        comparison,
        matched_on=key,
        only_expected=only_expected.height,
        only_actual=only_actual.height,
        changed=changed.height,
        changed_columns={name: count for name, count in counts.items() if count},
        examples_only_expected=only_expected.select(key).head(EXAMPLES).to_dicts(),
        examples_only_actual=only_actual.select(key).head(EXAMPLES).to_dicts(),
        examples_changed=examples,
    )


def _by_whole_rows(comparison: OutputComparison, expected: pl.DataFrame, actual: pl.DataFrame) -> OutputComparison:
    """Rows as a multiset: a row twice in one output and once in the other is one row only in the first."""
    import polars as pl

    columns = expected.columns
    if not columns:
        return comparison
    count_a = expected.group_by(columns).len("n_expected")
    count_b = actual.group_by(columns).len("n_actual")
    joined = count_a.join(count_b, on=columns, how="full", coalesce=True, nulls_equal=True)
    joined = joined.with_columns(
        pl.col("n_expected").fill_null(0).cast(pl.Int64), pl.col("n_actual").fill_null(0).cast(pl.Int64)
    )
    joined = joined.sort(columns, nulls_last=True)  # the same examples every time
    surplus_expected = joined.filter(pl.col("n_expected") > pl.col("n_actual"))
    surplus_actual = joined.filter(pl.col("n_actual") > pl.col("n_expected"))
    extra = (pl.col("n_expected") - pl.col("n_actual")).abs().sum()
    return _with(
        comparison,
        only_expected=int(surplus_expected.select(extra).item()) if surplus_expected.height else 0,
        only_actual=int(surplus_actual.select(extra).item()) if surplus_actual.height else 0,
        examples_only_expected=surplus_expected.select(columns).head(EXAMPLES).to_dicts(),
        examples_only_actual=surplus_actual.select(columns).head(EXAMPLES).to_dicts(),
    )


def _with(comparison: OutputComparison, **changes: Any) -> OutputComparison:
    return replace(comparison, **changes)
