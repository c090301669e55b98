"""Polars' word on whether a block of whole lines (csv_lines) is valid, and the keys of its rows.

Polars reads a block with the Table Schema given (enums and booleans as polars enums, so that any
other value fails the parse; integers and numbers converted and checked by vectorised expressions;
dates, datetimes and patterns by reading each distinct value with the very reader a row is checked
by) and vouches for it only when every row is valid by `check_row`'s rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared_tasks.validation.csv_lines import lines_are_newlines
from shared_tasks.validation.field_values import FORMULA_PREFIXES, Logical
from shared_tasks.validation.row_rules import UniqueKey, unique_keys
from shared_tasks.validation.schema import DatasetRules
from shared_tasks.validation.table_fields import Field

if TYPE_CHECKING:
    import polars as pl

Ids = np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class BlockKeys:
    """A valid block's records, and for each unique key the keys of the rows that have one."""

    count: int
    keys: list[tuple[Ids, Ids | None]]  # (keys, their rows' offsets in the block; None: every row)


# The seed of the 64-bit hash that stands for a key of text or of several columns (see unique_keys).
KEY_SEED = 0x5EED_0F_7AB1E
NUMBER_SHAPE = r"^(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[nN][aA][nN]|-?[iI][nN][fF])$"
FORMULA_START = "^[" + "".join("\\" + prefix if prefix in "-\\^]" else prefix for prefix in FORMULA_PREFIXES) + "]"


class PolarsBlocks:
    """Vouches for whole lines when every row is valid by `check_row`'s rules, or says it cannot."""

    def __init__(self, rules: DatasetRules) -> None:
        import polars as pl

        self.pl = pl
        self.rules = rules
        self.fields = rules.table.fields
        self.keys = unique_keys(rules.table)
        # The missing values that are a valid null of each field (a required field has none).
        self.nulls = {f.name: [v for v in f.missing_values if f.read(v)[1] is None] for f in self.fields}
        self.categories = {f.name: _categories(f) for f in self.fields}
        self.schema = {f.name: self._read_dtype(f) for f in self.fields}
        # A '+' is in no valid cell of most schemas: then a block with one goes to Python at once.
        self.plus_free = all(_plus_free(f, self.categories[f.name]) for f in self.fields)
        self.typed = [expr for f in self.fields if (expr := self._typed(f)) is not None]
        self.flags = [expr for f in self.fields if (expr := self._invalid(f)) is not None]
        self.by_values = [f for f in self.fields if self._read_one_by_one(f)]

    def _read_dtype(self, field: Field) -> Any:
        """A polars enum of the values a cell may hold, or text. polars reads an empty cell of an enum
        as null, as it reads a field a short row lacks: a field whose empty value is valid is text."""
        import polars as pl

        categories = self.categories[field.name]
        return pl.Enum(categories) if categories is not None and "" not in categories else pl.String()

    def _read_one_by_one(self, field: Field) -> bool:
        """Dates, datetimes and patterns: each distinct value read in Python, exactly as a row's is."""
        return field.type in ("date", "datetime") or (
            isinstance(self.schema[field.name], self.pl.String)
            and field.type in ("string", "any")
            and field.constraints.pattern is not None
        )

    def _typed(self, field: Field) -> pl.Expr | None:
        import polars as pl

        if field.type == "integer":
            return pl.col(field.name).cast(pl.Int64, strict=False).alias(_typed_name(field))
        if field.type == "number":
            return pl.col(field.name).cast(pl.Float64, strict=False).alias(_typed_name(field))
        return None

    def _invalid(self, field: Field) -> pl.Expr | None:
        """Whether any cell of the field is invalid (vectorised), or None when the parse or the
        one-by-one reading says it all."""
        import polars as pl

        if not isinstance(self.schema[field.name], pl.String) or self._read_one_by_one(field):
            return None
        raw = pl.col(field.name)
        categories = self.categories[field.name]
        if categories is not None:
            return (~raw.is_in(categories)).any().alias(field.name)
        numeric = field.type in ("integer", "number")
        bad = self._invalid_numbers(field, raw) if numeric else self._invalid_text(field, raw)
        invalid = pl.any_horizontal(bad) if bad else pl.lit(False)
        # Missing values: those that are a valid null, and those the type would take for a value.
        nulls = self.nulls[field.name]
        if nulls:
            invalid = invalid & ~raw.is_in(nulls)
        wrongly_valid = [v for v in field.missing_values if v not in nulls and field.reader.read(v)[1] is None]
        if wrongly_valid:
            invalid = invalid | raw.is_in(wrongly_valid)
        return invalid.any().alias(field.name)

    def _invalid_numbers(self, field: Field, raw: pl.Expr) -> list[pl.Expr]:
        value = self.pl.col(_typed_name(field))
        bad = [value.is_null()]
        if field.type == "integer" and not self.plus_free:
            bad.append(raw.str.starts_with("+"))
        if field.type == "number":
            bad.append(~raw.str.contains(NUMBER_SHAPE))
        bad += self._out_of_range(field, value)
        if field.constraints.enum is not None:
            bad.append(~value.is_in(list(field.constraints.enum)))
        return bad

    def _invalid_text(self, field: Field, raw: pl.Expr) -> list[pl.Expr]:
        """Text without an enum or a pattern: our formula rule, and its lengths."""
        bad = []
        if getattr(field.reader, "formulas_refused", False):
            bad.append(raw.str.contains(FORMULA_START))
        if field.constraints.min_length is not None:
            bad.append(raw.str.len_chars() < field.constraints.min_length)
        if field.constraints.max_length is not None:
            bad.append(raw.str.len_chars() > field.constraints.max_length)
        return bad

    def _out_of_range(self, field: Field, value: pl.Expr) -> list[pl.Expr]:
        constraints = field.constraints
        bad = []
        if constraints.minimum is not None:
            bad.append(value < constraints.minimum)
        if constraints.exclusive_minimum is not None:
            bad.append(value <= constraints.exclusive_minimum)
        if constraints.maximum is not None:
            bad.append(value > constraints.maximum)
        if constraints.exclusive_maximum is not None:
            bad.append(value >= constraints.exclusive_maximum)
        if bad and field.type == "number":
            bad.append(value.is_nan())
        return bad

    def valid_keys(self, data: bytes, newlines: int) -> BlockKeys | None:
        """The records of `data` and their keys when every row is valid; None when it cannot tell.

        polars converts exactly [+-]?[0-9]+ within int64 to an integer (no spaces, no other digits);
        a '+' is refused by a block-wide look for one, or per integer column when a valid cell may
        hold one.
        """
        import polars as pl

        if not data or (self.plus_free and b"+" in data) or not lines_are_newlines(data):
            return None
        try:
            # No quoting: a block with a quote goes to Python; this splits an unquoted line as csv does.
            frame = pl.read_csv(
                data,
                has_header=False,
                schema=self.schema,
                quote_char=None,
                encoding="utf8",
                raise_if_empty=False,
                empty_string_is_null=False,
            )
        except pl.exceptions.PolarsError:  # a value not in its enum, a long row, not UTF-8
            return None
        lines = newlines + (0 if data.endswith(b"\n") else 1)
        if frame.height != lines or any(frame.null_count().row(0)):  # a blank line, a short row
            return None
        if self.typed:
            frame = frame.with_columns(self.typed)
        if self.flags and any(frame.select(self.flags).row(0)):
            return None
        logical: dict[str, pl.Series] = {}
        for field in self.by_values:
            read = {raw: field.read(raw) for raw in frame.get_column(field.name).unique().to_list()}
            if any(problem is not None for _, problem in read.values()):
                return None
            if field.type in ("date", "datetime"):
                mapped = [value for value, _ in read.values()]
                logical[field.name] = frame.get_column(field.name).replace_strict(
                    list(read), mapped, return_dtype=pl.Int64
                )
        return BlockKeys(frame.height, [self._keys(key, frame, logical) for key in self.keys])

    def _keys(self, key: UniqueKey, frame: pl.DataFrame, logical: dict[str, pl.Series]) -> tuple[Ids, Ids | None]:
        import polars as pl

        components = {f.name: self._component(f, frame, logical, exact=key.exact) for f in key.columns}
        present = [component.is_not_null() for component in components.values()]
        rows = pl.DataFrame(components)
        if all(series.null_count() == 0 for series in components.values()):
            offsets = None
        else:
            keep = np.logical_and.reduce([mask.to_numpy() for mask in present])
            offsets = np.flatnonzero(keep).astype(np.int64)
            rows = rows.filter(pl.Series(keep))
        if key.exact:
            ids: Ids = rows.to_series(0).to_numpy().astype(np.int64, copy=False)
            return ids, offsets
        return _hashed_ids(rows), offsets

    def _component(self, field: Field, frame: pl.DataFrame, logical: dict[str, pl.Series], exact: bool) -> pl.Series:
        """A key column's logical values (null for a missing value), as key_ids builds them from Python's."""
        import polars as pl

        raw = frame.get_column(field.name).cast(pl.String)
        if field.type == "integer":
            value = frame.get_column(_typed_name(field))
            value = value if exact else value.cast(pl.String)
        elif field.type == "number":
            value = _canonical_bits(frame.get_column(_typed_name(field)))
        elif field.type == "boolean":
            value = raw.is_in(list(field.true_values)).cast(pl.Int64)
        elif field.type in ("date", "datetime"):
            value = logical[field.name]
        else:
            value = raw
        if self.nulls[field.name]:
            missing = raw.is_in(self.nulls[field.name])
            value = pl.select(pl.when(missing).then(None).otherwise(value)).to_series().alias(field.name)
        return value.alias(field.name)


def key_ids(pl: Any, key: UniqueKey, values: Sequence[tuple[Logical, ...]]) -> Ids:
    """Keys from logical values (UniqueKey.value): the same int64 for the same logical key, whichever
    path read the row."""
    if key.exact:
        column = key.columns[0]
        if column.type == "number":
            return _canonical_bits(pl.Series([value[0] for value in values], dtype=pl.Float64)).to_numpy()
        return np.array([int(value[0]) for value in values], dtype=np.int64)
    components = {}
    for position, column in enumerate(key.columns):
        items = [value[position] for value in values]
        if column.type == "integer":
            components[column.name] = pl.Series(column.name, [str(item) for item in items], dtype=pl.String)
        elif column.type == "number":
            components[column.name] = _canonical_bits(pl.Series(column.name, items, dtype=pl.Float64))
        elif column.type in ("boolean", "date", "datetime"):
            components[column.name] = pl.Series(column.name, [int(item) for item in items], dtype=pl.Int64)
        else:
            components[column.name] = pl.Series(column.name, items, dtype=pl.String)
    return _hashed_ids(pl.DataFrame(components, schema={name: s.dtype for name, s in components.items()}))


def _canonical_bits(values: pl.Series) -> pl.Series:
    """A number's float64 bits as an int64, one for 0.0 and -0.0 and one for every NaN."""
    import polars as pl

    floats = values.to_numpy().astype(np.float64, copy=True)
    floats[floats == 0] = 0.0
    floats[np.isnan(floats)] = math.nan
    return pl.Series(values.name, floats.view(np.int64))


def _hashed_ids(rows: pl.DataFrame) -> Ids:
    """polars' 64-bit hash of each row: equal keys, equal ids; unequal keys share one rarely, and a
    repeat is confirmed on the rows' values before it is reported (unique_keys)."""
    ids: Ids = rows.hash_rows(seed=KEY_SEED).to_numpy().view(np.int64)
    return ids


def _typed_name(field: Field) -> str:
    return f"\x00typed {field.index}"


def _categories(field: Field) -> list[str] | None:
    """Every value a cell of a boolean, or of text with an enum, may hold (missing ones too), each
    read by the field's reader; None for other fields."""
    if field.type == "boolean" or (field.type in ("string", "any") and field.constraints.enum is not None):
        written = field.enum_shown if field.type != "boolean" else field.true_values + field.false_values
        candidates = dict.fromkeys([*written, *field.missing_values])
        return [value for value in candidates if field.read(value)[1] is None]
    return None


def _plus_free(field: Field, categories: list[str] | None) -> bool:
    """Whether no valid cell of the field holds a '+'."""
    if categories is not None:
        return not any("+" in value for value in categories)
    nulls_plus = any("+" in value for value in field.missing_values if field.read(value)[1] is None)
    if field.type == "integer":
        return not nulls_plus
    if field.type == "date" and field.format == "default":
        return not nulls_plus
    return False
