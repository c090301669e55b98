"""Validation of a change and of a dataset file against the schema.

Everything is checked field by field from the raw CSV text (not after pandas has guessed
types), so an error can name the line, the column and the offending value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shared_tasks.schema import (
    COLUMN_NAMES,
    COLUMNS,
    CSV_ENCODING,
    ID_COLUMN,
    CategoryColumn,
    IntColumn,
)

MAX_REPORTED_PROBLEMS = 20
# Cells starting with these are executed by spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            where.append(f"value {shown!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DataValidationError(ValueError):
    """Raised with every problem found (up to a limit), each naming where it is."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems[:MAX_REPORTED_PROBLEMS])
        more = len(problems) - MAX_REPORTED_PROBLEMS
        suffix = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source} is not valid ({len(problems)} problem(s)):\n{listed}{suffix}")


def header_problems(header: list[str]) -> list[Problem]:
    if header == list(COLUMN_NAMES):
        return []
    problems = []
    missing = [name for name in COLUMN_NAMES if name not in header]
    extra = [name for name in header if name not in COLUMN_NAMES]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    for name in missing:
        problems.append(Problem("missing column", line=1, column=name))
    for name in extra:
        problems.append(Problem("unexpected column (not in the schema)", line=1, column=name))
    for name in duplicated:
        problems.append(Problem("column appears more than once", line=1, column=name))
    if not problems:
        problems.append(Problem(f"columns are out of order; expected: {', '.join(COLUMN_NAMES)}", line=1))
    return problems


def _check_int(column: IntColumn, raw: str, line: int) -> Problem | None:
    text = raw.strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        return Problem("not an integer", line=line, column=column.name, value=raw)
    number = int(text)
    if not column.valid_min <= number <= column.valid_max:
        return Problem(
            f"out of range [{column.valid_min}, {column.valid_max}]",
            line=line,
            column=column.name,
            value=raw,
        )
    return None


def _check_category(column: CategoryColumn, raw: str, line: int) -> Problem | None:
    if raw.startswith(FORMULA_PREFIXES):
        return Problem("looks like a spreadsheet formula; refusing it", line=line, column=column.name, value=raw)
    if raw not in column.values:
        return Problem(f"not one of: {', '.join(column.values)}", line=line, column=column.name, value=raw)
    return None


def check_row(line: int, fields: list[str]) -> list[Problem]:
    if len(fields) != len(COLUMNS):
        hint = " (truncated line?)" if len(fields) < len(COLUMNS) else ""
        return [Problem(f"has {len(fields)} fields, expected {len(COLUMNS)}{hint}", line=line)]
    problems = []
    for column, raw in zip(COLUMNS, fields, strict=True):
        if raw == "":
            problems.append(Problem("empty value", line=line, column=column.name))
            continue
        problem = _check_int(column, raw, line) if isinstance(column, IntColumn) else _check_category(column, raw, line)
        if problem is not None:
            problems.append(problem)
    return problems


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode(CSV_ENCODING)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        raise DataValidationError(
            source,
            [Problem(f"not UTF-8 text: invalid byte 0x{byte} at offset {error.start}", line=line)],
        ) from None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for fields in reader:
            yield reader.line_num, fields
    except csv.Error as error:
        raise DataValidationError("CSV", [Problem(f"malformed CSV: {error}", line=reader.line_num)]) from None


def check_rows(rows: Iterable[tuple[int, list[str]]]) -> list[Problem]:
    """Problems in data rows, including an Employee ID used twice."""
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    for line, fields in rows:
        row_problems = check_row(line, fields)
        problems.extend(row_problems)
        if not row_problems:
            employee_id = fields[0].strip()
            if employee_id in seen_ids:
                problems.append(
                    Problem(
                        f"duplicate {ID_COLUMN} (first seen on line {seen_ids[employee_id]})",
                        line=line,
                        column=ID_COLUMN,
                        value=employee_id,
                    )
                )
            else:
                seen_ids[employee_id] = line
    return problems


def _valid_records(text: str, source: str) -> list[tuple[int, list[str]]]:
    if not text.strip():
        raise DataValidationError(source, [Problem("file is empty")])
    rows = _rows(text)
    try:
        _, header = next(rows)
        found = header_problems(header)
        if found:
            raise DataValidationError(source, found)
        records = list(rows)
    except DataValidationError as error:
        if error.source == "CSV":
            raise DataValidationError(source, error.problems) from None
        raise
    if not records:
        raise DataValidationError(source, [Problem("has a header but no records")])
    problems = check_rows(records)
    if problems:
        raise DataValidationError(source, problems)
    return records


def parse_csv_text(text: str, source: str) -> pd.DataFrame:
    """Validate a whole CSV text (header and records) and return it typed."""
    records = _valid_records(text, source)
    frame = pd.DataFrame([fields for _, fields in records], columns=list(COLUMN_NAMES))
    for column in COLUMNS:
        if isinstance(column, IntColumn):
            frame[column.name] = frame[column.name].str.strip().astype("int64")
    return frame


def read_change_file(path: Path) -> pd.DataFrame:
    """A change supplied by a person: every record must be valid before anything is applied."""
    source = f"change file {path.name}"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataValidationError(source, [Problem(f"cannot be read: {error.strerror}")]) from None
    return parse_csv_text(_decode(data, source), source)


def validate_records(frame: pd.DataFrame, source: str = "change") -> None:
    """Check records held in memory (e.g. generated ones) by the same rules as a file."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    parse_csv_text(buffer.getvalue(), source)


def read_header(path: Path) -> list[str]:
    """The dataset's header, checked against the schema; reads only the first line."""
    source = f"dataset {path.name}"
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise DataValidationError(source, [Problem("file is empty")])
    header = next(csv.reader([_decode(first, source).rstrip("\r\n")]))
    problems = header_problems(header)
    if problems:
        raise DataValidationError(source, problems)
    return header


def validate_dataset_file(path: Path) -> int:
    """Check every row of a dataset file; returns its number of records."""
    source = f"dataset {path.name}"
    text = _decode(path.read_bytes(), source)
    return len(_valid_records(text, source))
