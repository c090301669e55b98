"""A Table Schema guessed from a CSV, streamed in batches: each field's type, whether a value may be
missing, an enum for low-cardinality text, the smallest and largest value seen, and a primary key
when a column, or a pair of columns, holds each value once.

The guesses follow how the validator reads values (shared_tasks.validation.field_values), so the
file a schema was inferred from keeps it: an integer is ASCII digits with an optional '-', and one
written with a leading zero (`007`, a code rather than a number) is text; a number is the
validator's NUMBER; a date is `YYYY-MM-DD`, a datetime ISO 8601. Memory stays flat in the file's
size: a batch of rows, each text column's first few distinct values, and the candidate keys'
hashes in IdLedgers (spilled to disk past a bound). A key made of numbers or datetimes is never
guessed: `1.5` and `1.50`, or one instant in two offsets, are one key to the validator.
Each guess carries the reason it rests on, for the schema's comments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared_tasks.validation.field_values import DATE, DATETIME, NUMBER
from shared_tasks.validation.id_ledger import LINE_BITS
from shared_tasks.validation.infer_keys import KeyLedgers

BATCH_ROWS = 100_000
ENUM_MOST_VALUES = 10  # text with at most this many distinct values (and fewer than half the rows) is an enum
ENUM_LEAST_ROWS = 20  # below this many values an enum says nothing a reader could not see at a glance
BOOLEAN_WORDS = {"true", "True", "TRUE", "false", "False", "FALSE"}
INTEGER = r"^-?(?:0|[1-9][0-9]*)$"
LEADING_ZERO_INTEGER = r"^-?0[0-9]+$"
SPECIAL_NUMBERS = r"^(?:NaN|NAN|nan|INF|inf|-INF|-inf)$"
TYPES = ("boolean", "integer", "number", "date", "datetime", "string")
UNKEYED = ("number", "datetime", "boolean")  # `1.5` and `1.50` are one number to the validator: no guessed key


class InferenceError(ValueError):
    """A file no schema can be guessed from (no header, a repeated or empty column name)."""


@dataclass
class ColumnStats:
    """What the batches showed of one column, merged batch by batch."""

    name: str
    values: int = 0  # non-missing
    missing: int = 0
    kinds: set[str] = field(default_factory=lambda: set(TYPES))  # the types every value so far fits
    leading_zero: bool = False
    distinct: set[str] | None = field(default_factory=set)  # None once past ENUM_MOST_VALUES
    bounds: dict[str, list[Any]] = field(default_factory=dict)  # "int", "float", "text" -> [low, high]
    unreadable: set[str] = field(default_factory=set)  # bounds that cannot be had: past int64, NaN/INF

    def widen(self, reading: str, low: Any, high: Any) -> None:
        if low is None:
            return
        seen = self.bounds.get(reading)
        self.bounds[reading] = [low, high] if seen is None else [min(seen[0], low), max(seen[1], high)]

    @property
    def range(self) -> tuple[Any, Any] | None:
        """The smallest and largest value seen, as the field's type reads them; None if unknown."""
        reading = {"integer": "int", "number": "float", "date": "text"}.get(self.kind)
        if reading is None or reading in self.unreadable or reading not in self.bounds:
            return None
        low, high = self.bounds[reading]
        return (
            (int(low), int(high))
            if reading == "int"
            else (float(low), float(high))
            if reading == "float"
            else (low, high)
        )

    @property
    def kind(self) -> str:
        if not self.values:
            return "string"
        return next(kind for kind in TYPES if kind in self.kinds)


@dataclass(frozen=True)
class InferredField:
    name: str
    type: str
    constraints: dict[str, Any]
    reasons: dict[str, str]  # type and each constraint -> what it rests on


@dataclass(frozen=True)
class InferredSchema:
    source: str
    rows: int
    fields: list[InferredField]
    primary_key: list[str]
    key_reason: str

    def descriptor(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "fields": [
                {"name": f.name, "type": f.type, **({"constraints": f.constraints} if f.constraints else {})}
                for f in self.fields
            ],
            "missingValues": [""],
        }
        if self.primary_key:
            schema["primaryKey"] = self.primary_key
        return schema

    def to_yaml(self) -> str:
        """The schema as YAML, every guess commented with what it rests on (JSON scalars are YAML too)."""
        lines = [
            f"# A Table Schema inferred from {self.source}: {self.rows:,} rows read.",
            "# Each guess says what it rests on; the data seen is all it knows. Edit what you know better:",
            "# a range the data may leave, an enum that will grow, a key that is not one.",
            "fields:",
        ]
        for inferred in self.fields:
            lines.append(f"  - name: {json.dumps(inferred.name)}")
            lines.append(f"    type: {inferred.type}  # {inferred.reasons['type']}")
            if inferred.constraints:
                lines.append("    constraints:")
                for key, value in inferred.constraints.items():
                    lines.append(f"      {key}: {json.dumps(value)}  # {inferred.reasons[key]}")
        lines.append('missingValues: [""]  # an empty cell is a missing value')
        if self.primary_key:
            lines.append(f"primaryKey: {json.dumps(self.primary_key)}  # {self.key_reason}")
        else:
            lines.append(f"# no primaryKey: {self.key_reason}")
        return "\n".join(lines) + "\n"


def infer_schema(path: Path, batch_rows: int = BATCH_ROWS, spill_dir: Path | None = None) -> InferredSchema:
    import polars as pl

    header = _header(path)
    stats = [ColumnStats(name) for name in header]
    rows = 0
    with KeyLedgers(spill_dir) as ledgers:
        for batch in _batches(pl, path, batch_rows):
            batch.columns = header  # the names as the csv module reads them (polars may keep a quote doubled)
            places = (np.arange(rows, rows + batch.height, dtype=np.int64) + 2) & ((1 << LINE_BITS) - 1)
            _observe(pl, batch, stats)
            ledgers.observe(pl, batch, header, {c.name for c in stats if c.missing or c.kind in UNKEYED}, places)
            rows += batch.height
        fields = [_field(column, rows) for column in stats]
        key, why = ledgers.key(header, rows)
    return InferredSchema(str(path), rows, fields, key, why)


def _header(path: Path) -> list[str]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise InferenceError(f"{path}: no header line: a CSV's first line names its columns")
    blank = [str(position) for position, name in enumerate(header, start=1) if not name.strip()]
    if blank:
        raise InferenceError(f"{path}: column {', '.join(blank)} has no name")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InferenceError(f"{path}: column {', '.join(map(repr, repeated))} is named more than once")
    return header


def _batches(pl: Any, path: Path, batch_rows: int) -> Iterator[Any]:
    scan = pl.scan_csv(path, infer_schema=False)
    yield from scan.collect_batches(chunk_size=batch_rows)


def _observe(pl: Any, batch: Any, stats: list[ColumnStats]) -> None:
    """Merge one batch into every column's stats, its checks in one polars select (run in parallel)."""
    wanted: list[Any] = []
    for index, column in enumerate(stats):
        wanted += [expression.alias(f"{index}|{what}") for what, expression in _checks(pl, column).items()]
    found = batch.select(wanted).row(0, named=True)
    for index, column in enumerate(stats):
        seen = {key.split("|", 1)[1]: value for key, value in found.items() if key.startswith(f"{index}|")}
        _merge(column, seen, batch.height)


def _merge(column: ColumnStats, seen: dict[str, Any], rows: int) -> None:
    present = rows - seen["missing"]
    column.missing += seen["missing"]
    column.values += present
    if not present:
        return
    if seen.get("leading_zero"):
        column.leading_zero = True  # `007`: a code, not a number
        column.kinds -= {"integer", "number"}
    column.kinds -= {kind for kind in TYPES[:-1] if seen.get(kind) is False}
    if seen.get("int_unreadable") and "integer" in column.kinds:
        column.unreadable.add("int")  # whole numbers past int64
    if seen.get("special"):
        column.unreadable.add("float")
    for reading in ("int", "float", "text"):
        if f"{reading}_low" in seen:
            column.widen(reading, seen[f"{reading}_low"], seen[f"{reading}_high"])
    if column.distinct is not None and "distinct" in seen:
        column.distinct.update(seen["distinct"])
        if len(column.distinct) > ENUM_MOST_VALUES:
            column.distinct = None


def _checks(pl: Any, stats: ColumnStats) -> dict[str, Any]:
    """The column's expressions for one batch: what is missing, which types every value still fits
    (the validator's reading, as regexes), the bounds each reading gives, the first distinct values."""
    raw = pl.col(stats.name)
    present = raw.is_not_null() & (raw != "")
    values = raw.filter(present)
    checks: dict[str, Any] = {"missing": (~present).sum()}
    fits = {
        "boolean": raw.is_in(list(BOOLEAN_WORDS)),
        "integer": raw.str.contains(INTEGER),
        "number": raw.str.contains(f"^{NUMBER.pattern}$") | raw.str.contains(SPECIAL_NUMBERS),
        "date": raw.str.contains(f"^{DATE.pattern}$") & raw.str.to_date("%Y-%m-%d", strict=False).is_not_null(),
        "datetime": raw.str.contains(f"^{DATETIME.pattern}$"),
    }
    for kind, fit in fits.items():
        if kind in stats.kinds:
            checks[kind] = (fit | ~present).all()
    if {"integer", "number"} & stats.kinds:
        checks["leading_zero"] = (present & raw.str.contains(LEADING_ZERO_INTEGER)).any()
    if "integer" in stats.kinds:
        whole = values.cast(pl.Int64, strict=False)
        checks |= {"int_low": whole.min(), "int_high": whole.max(), "int_unreadable": whole.is_null().any()}
    if "number" in stats.kinds:
        special = raw.str.contains(SPECIAL_NUMBERS)
        real = raw.filter(present & ~special).cast(pl.Float64, strict=False)
        checks |= {"float_low": real.min(), "float_high": real.max(), "special": (present & special).any()}
    if "date" in stats.kinds:
        checks |= {"text_low": values.min(), "text_high": values.max()}  # ISO dates order as text
    if stats.distinct is not None:
        checks["distinct"] = values.unique().head(ENUM_MOST_VALUES + 1).implode()
    return checks


def _field(stats: ColumnStats, rows: int) -> InferredField:
    kind = stats.kind
    reasons = {"type": _type_reason(stats, kind)}
    constraints: dict[str, Any] = {}
    if stats.values and not stats.missing:
        constraints["required"] = True
        reasons["required"] = f"no value missing in {rows:,} rows"
    few = stats.distinct is not None and len(stats.distinct) <= min(ENUM_MOST_VALUES, stats.values // 2)
    if kind == "string" and stats.distinct is not None and stats.values >= ENUM_LEAST_ROWS and few:
        constraints["enum"] = sorted(stats.distinct)
        reasons["enum"] = f"{len(stats.distinct)} distinct values in {stats.values:,}"
    if stats.range is not None:
        constraints["minimum"], constraints["maximum"] = stats.range
        reasons["minimum"] = "the smallest seen"
        reasons["maximum"] = "the largest seen"
    return InferredField(stats.name, kind, constraints, reasons)


def _type_reason(stats: ColumnStats, kind: str) -> str:
    if not stats.values:
        return "every value missing: nothing to tell its type by"
    said = {
        "boolean": "every value true or false",
        "integer": "every value a whole number",
        "number": "every value a number",
        "date": "every value a date, YYYY-MM-DD",
        "datetime": "every value an ISO 8601 datetime",
        "string": "text: no other type fits every value",
    }[kind]
    if kind == "string" and stats.leading_zero:
        said = "whole numbers written with leading zeros: codes, kept as text"
    return said
