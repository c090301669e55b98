"""Validation of a change and of a dataset file against the schema.

Everything is checked field by field from the raw CSV text (not after pandas has guessed
types), so an error can name the line, the column and the offending value. The rules of a
header, a row and a value live in shared_tasks.validation.dataset_check and shared_tasks.validation.schema, shared
with the whole-dataset validator there.
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

from shared_tasks.validation.row_rules import check_row, header_problems, undecodable
from shared_tasks.validation.schema import (
    COLUMN_NAMES,
    COLUMNS,
    CSV_ENCODING,
    FORMULA_PREFIXES,
    FREE_ID_MAX,
    ID_COLUMN,
    MAX_REPORTED_PROBLEMS,
    DataValidationError,
    IntColumn,
    Problem,
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


def check_rows(rows: Iterable[tuple[int, list[str]]], chosen_ids: bool = False) -> list[Problem]:
    """Problems in data rows, including an Employee ID used twice (as a number: 7 and 007 are one).

    With `chosen_ids` (a change file, whose ids a person chose) an id above FREE_ID_MAX is refused:
    the pipeline assigns those, one after another, and needs the room.
    """
    problems: list[Problem] = []
    seen_ids: dict[int, int] = {}
    for line, fields in rows:
        row_problems = check_row(line, fields)
        problems.extend(row_problems)
        if not row_problems:
            employee_id = int(fields[0])
            if chosen_ids and employee_id > FREE_ID_MAX:
                message = f"above {FREE_ID_MAX}: a change may not choose such an id (the pipeline assigns them in turn)"
                problems.append(Problem(message, line=line, column=ID_COLUMN, value=fields[0]))
            elif employee_id in seen_ids:
                problems.append(
                    Problem(
                        f"duplicate {ID_COLUMN} (first seen on line {seen_ids[employee_id]})",
                        line=line,
                        column=ID_COLUMN,
                        value=str(employee_id),
                    )
                )
            else:
                seen_ids[employee_id] = line
    return problems


def _valid_records(text: str, source: str, chosen_ids: bool = False) -> list[tuple[int, list[str]]]:
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
    problems = check_rows(records, chosen_ids)
    if problems:
        raise DataValidationError(source, problems)
    return records


def parse_csv_text(text: str, source: str, chosen_ids: bool = False) -> pd.DataFrame:
    """Validate a whole CSV text (header and records) and return it typed."""
    import pandas as pd  # only a change is read into a frame: pulling and pushing never import it

    records = _valid_records(text, source, chosen_ids)
    frame = pd.DataFrame([fields for _, fields in records], columns=list(COLUMN_NAMES))
    for column in COLUMNS:
        if isinstance(column, IntColumn):
            frame[column.name] = frame[column.name].astype("int64")
    return frame


def read_change_file(path: Path) -> pd.DataFrame:
    """A change supplied by a person: every record must be valid before anything is applied.

    A leading UTF-8 byte order mark (a spreadsheet's "CSV UTF-8") is accepted here: the records
    are written anew when applied, so it never reaches the dataset, whose files must not hold one.
    """
    source = f"change file {path.name}"
    data = _bounded_file_bytes(path, source, MAX_CHANGE_FILE_BYTES)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return parse_csv_text(_decode(data, source), source, chosen_ids=True)


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
    """Check every row of a dataset file (streaming; see dataset_check); returns its number of records."""
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where a dataset is read

    return validate_dataset([path], f"dataset {path.name}").records
