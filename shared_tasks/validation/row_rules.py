"""The rules of a header and a row: one change file's and a whole dataset's, the same messages."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared_tasks.validation.field_values import Logical
from shared_tasks.validation.schema import DatasetRules, Problem, employee_rules
from shared_tasks.validation.table_fields import Field, TableSchema


def header_problems(header: Sequence[str], rules: DatasetRules | None = None) -> list[Problem]:
    """What is wrong with a header (in time linear in its length), or nothing."""
    names = (rules or employee_rules()).table.names
    if list(header) == list(names):
        return []
    if header and header[0].startswith("\ufeff"):
        bom = Problem(
            "starts with a byte order mark (U+FEFF, as spreadsheets save 'CSV UTF-8'); "
            "the dataset's files are UTF-8 without one",
            line=1,
        )
        return [bom, *header_problems([header[0][1:], *header[1:]], rules)]
    counts = Counter(header)
    known = set(names)
    problems = [Problem("missing column", line=1, column=name) for name in names if name not in counts]
    unexpected = [name for name in header if name not in known]
    problems += [Problem("unexpected column (not in the schema)", line=1, column=name) for name in unexpected]
    twice = sorted(name for name, count in counts.items() if count > 1)
    problems += [Problem("column appears more than once", line=1, column=name) for name in twice]
    if not problems:
        problems.append(Problem(f"columns are out of order; expected: {', '.join(names)}", line=1))
    return problems


def check_row(line: int, fields: list[str], rules: DatasetRules | None = None) -> list[Problem]:
    checks = (rules or employee_rules()).table.checks
    if len(fields) != len(checks):
        hint = " (truncated line?)" if len(fields) < len(checks) else ""
        return [Problem(f"has {len(fields)} fields, expected {len(checks)}{hint}", line=line)]
    problems = []
    for (name, missing, read_present, read), raw in zip(checks, fields, strict=True):
        # Field.read; its reader called at once for a value present (most cells: this loop is hot).
        message = (read(raw) if not raw or raw in missing else read_present(raw))[1]
        if message is not None:
            shown = None if raw == "" else raw
            problems.append(Problem(message, line=line, column=name, value=shown))
    return problems


def undecodable(data: bytes, error: UnicodeDecodeError, offset: int = 0, newlines: int = 0) -> Problem:
    """The problem of bytes that are not UTF-8; `offset` and `newlines` are those before `data`."""
    at = offset + error.start
    byte = data[error.start : error.start + 1].hex()
    utf16 = at == 0 and data[:2] in (b"\xff\xfe", b"\xfe\xff")
    hint = " (a UTF-16 byte order mark: save the file as UTF-8)" if utf16 else ""
    line = newlines + data[: error.start].count(b"\n") + 1
    return Problem(f"not UTF-8 text: invalid byte 0x{byte} at offset {at}{hint}", line=line)


@dataclass(frozen=True)
class UniqueKey:
    """Columns whose values no two rows may share: the primaryKey, or a field with `unique`.

    A row with a missing value in it is not checked (a null is unique, as in SQL). Logical values
    are compared: 7 and 007 are one integer, 1.0 and 1 one number.
    """

    columns: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def label(self) -> str:
        """How a duplicate names the key: the column, or for several "primary key (a, b)"."""
        return self.names[0] if len(self.columns) == 1 else f"primary key ({', '.join(self.names)})"

    @property
    def column(self) -> str:
        return ", ".join(self.names)

    @functools.cached_property
    def exact(self) -> bool:
        """Whether one int64 holds the key's logical value exactly (else the streaming check hashes it)."""
        if len(self.columns) != 1:
            return False
        column = self.columns[0]
        return column.int64 or column.type in ("number", "boolean", "date", "datetime")

    @property
    def integer(self) -> bool:
        """Whether a duplicate shows the key as its integer (7 for 007), not as written."""
        return self.exact and self.columns[0].type == "integer"

    def value(self, fields: Sequence[str]) -> tuple[Logical, ...] | None:
        """The logical key of a valid row (None when a value of it is missing)."""
        if self.integer:  # a valid integer's text is what int() reads; quickly, for every row of a change
            raw = fields[self.columns[0].index]
            return None if raw in self.columns[0].missing_values else (int(raw),)
        values = tuple(column.logical(fields[column.index]) for column in self.columns)
        return None if any(value is None for value in values) else values  # type: ignore[return-value]

    def shown(self, fields: Sequence[str]) -> str:
        if self.integer:
            return str(self.columns[0].logical(fields[self.columns[0].index]))
        return ", ".join(fields[column.index] for column in self.columns)


@functools.cache
def unique_keys(table: TableSchema) -> tuple[UniqueKey, ...]:
    return tuple(UniqueKey(tuple(table.field(name) for name in key)) for key in table.unique_keys)
