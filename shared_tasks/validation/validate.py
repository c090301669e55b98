"""Validation of a change and of a dataset file against the schema.

Everything is checked field by field from the raw CSV text (not after pandas has guessed
types), so an error can name the line, the column and the offending value. The rules of a
header, a row and a value live in shared_tasks.validation.row_rules and the Table Schema's field
readers (table_fields, field_values), shared with the whole-dataset validator (dataset_check).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared_tasks.validation.field_values import Logical
from shared_tasks.validation.row_rules import check_row, header_problems, undecodable, unique_keys
from shared_tasks.validation.schema import (
    CSV_ENCODING,
    FORMULA_PREFIXES,
    MAX_REPORTED_PROBLEMS,
    DatasetRules,
    DataValidationError,
    Problem,
    employee_rules,
)

if TYPE_CHECKING:
    import pandas as pd

# A run adds at most MAX_RECORDS_PER_RUN records of a few hundred bytes each.
MAX_CHANGE_FILE_BYTES = 64 * 1024 * 1024

__all__ = [
    "FORMULA_PREFIXES",
    "MAX_REPORTED_PROBLEMS",
    "DataValidationError",
    "Problem",
    "check_row",
    "check_rows",
    "header_problems",
    "parse_csv_text",
    "read_change_file",
    "read_header",
    "validate_dataset_file",
    "validate_records",
]


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode(CSV_ENCODING)
    except UnicodeDecodeError as error:
        raise DataValidationError(source, [undecodable(data, error)]) from None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for fields in reader:
            yield reader.line_num, fields
    except csv.Error as error:
        raise DataValidationError("CSV", [Problem(f"malformed CSV: {error}", line=reader.line_num)]) from None


def check_rows(
    rows: Iterable[tuple[int, list[str]]], chosen_ids: bool = False, rules: DatasetRules | None = None
) -> list[Problem]:
    """Problems in data rows, including a unique key used twice (the primaryKey, each field with
    `unique`; logical values compared: 7 and 007 are one integer).

    With `chosen_ids` (a change file, whose ids a person chose) a generated key above its free
    range (FREE_ID_MAX) is refused: the pipeline assigns those, one after another, and needs the room.
    """
    rules = rules or employee_rules()
    keys = unique_keys(rules.table)
    problems: list[Problem] = []
    first_lines: list[dict[tuple[Logical, ...], int]] = [{} for _ in keys]
    chosen = [chosen_ids and key.names == (rules.generated_key,) for key in keys]
    for line, fields in rows:
        row_problems = check_row(line, fields, rules)
        problems.extend(row_problems)
        if row_problems:
            continue
        for key, seen, generated in zip(keys, first_lines, chosen, strict=True):
            value = key.value(fields)
            if value is None:
                continue
            if generated and int(value[0]) > rules.free_key_max:
                free = rules.free_key_max
                message = f"above {free}: a change may not choose such an id (the pipeline assigns them in turn)"
                problems.append(Problem(message, line=line, column=key.column, value=fields[key.columns[0].index]))
            elif value in seen:
                message = f"duplicate {key.label} (first seen on line {seen[value]})"
                problems.append(Problem(message, line=line, column=key.column, value=key.shown(fields)))
            else:
                seen[value] = line
    return problems


def _valid_records(
    text: str, source: str, chosen_ids: bool = False, rules: DatasetRules | None = None
) -> list[tuple[int, list[str]]]:
    if not text.strip():
        raise DataValidationError(source, [Problem("file is empty")])
    rows = _rows(text)
    try:
        _, header = next(rows)
        found = header_problems(header, rules)
        if found:
            raise DataValidationError(source, found)
        records = list(rows)
    except DataValidationError as error:
        if error.source == "CSV":
            raise DataValidationError(source, error.problems) from None
        raise
    if not records:
        raise DataValidationError(source, [Problem("has a header but no records")])
    problems = check_rows(records, chosen_ids, rules)
    if problems:
        raise DataValidationError(source, problems)
    return records


def parse_csv_text(text: str, source: str, chosen_ids: bool = False, rules: DatasetRules | None = None) -> pd.DataFrame:
    """Validate a whole CSV text (header and records) and return it typed: integers as int64,
    numbers as float64, booleans as bool (nullable types where a value may be missing), the rest
    as written (a missing value None)."""
    import pandas as pd  # only a change is read into a frame: pulling and pushing never import it

    rules = rules or employee_rules()
    records = _valid_records(text, source, chosen_ids, rules)
    frame = pd.DataFrame([fields for _, fields in records], columns=list(rules.table.names))
    for column in rules.table.fields:
        values = frame[column.name]
        missing = values.isin(column.missing_values)
        nullable = bool(missing.any())
        if column.type == "integer" and not nullable and column.int64:
            frame[column.name] = values.astype("int64")
        elif column.type in ("integer", "number", "boolean"):
            logical = [column.logical(raw) for raw in values]
            dtype = {"integer": ("int64", "Int64"), "number": ("float64", "Float64"), "boolean": ("bool", "boolean")}
            frame[column.name] = pd.Series(logical, index=frame.index, dtype=dtype[column.type][nullable])
        elif nullable:
            frame[column.name] = values.where(~missing, None)
    return frame


def read_change_file(path: Path, rules: DatasetRules | None = None) -> pd.DataFrame:
    """A change supplied by a person: every record must be valid before anything is applied.

    A leading UTF-8 byte order mark (a spreadsheet's "CSV UTF-8") is accepted here: the records
    are written anew when applied, so it never reaches the dataset, whose files must not hold one.
    """
    source = f"change file {path.name}"
    data = _bounded_file_bytes(path, source, MAX_CHANGE_FILE_BYTES)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return parse_csv_text(_decode(data, source), source, chosen_ids=True, rules=rules)


def _bounded_file_bytes(path: Path, source: str, limit: int) -> bytes:
    """A regular file's bytes, at most `limit` of them read: a FIFO, a device or a huge file is
    refused before it can block the step or fill its memory."""
    try:
        # Non-blocking: opening a FIFO no one writes to returns at once instead of waiting.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise DataValidationError(source, [Problem(f"cannot be read: {error.strerror}")]) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise DataValidationError(source, [Problem("is not a regular file (a FIFO, a device or a directory)")])
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DataValidationError(source, [Problem(f"is larger than {limit} bytes, more than a run may add")])
    return data


def validate_records(frame: pd.DataFrame, source: str = "change", rules: DatasetRules | None = None) -> None:
    """Check records held in memory (e.g. generated ones) by the same rules as a file."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    parse_csv_text(buffer.getvalue(), source, rules=rules)


def read_header(path: Path, rules: DatasetRules | None = None) -> list[str]:
    """The dataset's header, checked against the schema; reads only the first line."""
    source = f"dataset {path.name}"
    with path.open("rb") as handle:
        first = handle.readline()
    if not first.strip():
        raise DataValidationError(source, [Problem("file is empty")])
    header = next(csv.reader([_decode(first, source).rstrip("\r\n")]))
    problems = header_problems(header, rules)
    if problems:
        raise DataValidationError(source, problems)
    return header


def validate_dataset_file(path: Path, rules: DatasetRules | None = None) -> int:
    """Check every row of a dataset file (streaming; see dataset_check); returns its number of records."""
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where a dataset is read

    return validate_dataset([path], f"dataset {path.name}", rules=rules).records
