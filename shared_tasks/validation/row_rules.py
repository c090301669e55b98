"""The rules of a header and a row: one change file's and a whole dataset's, the same messages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from shared_tasks.validation.schema import COLUMN_NAMES, COLUMNS, IntColumn, Problem

INT_COLUMNS = tuple(column for column in COLUMNS if isinstance(column, IntColumn))


def header_problems(header: Sequence[str]) -> list[Problem]:
    """What is wrong with a header (in time linear in its length), or nothing."""
    if list(header) == list(COLUMN_NAMES):
        return []
    if header and header[0].startswith("\ufeff"):
        bom = Problem(
            "starts with a byte order mark (U+FEFF, as spreadsheets save 'CSV UTF-8'); "
            "the dataset's files are UTF-8 without one",
            line=1,
        )
        return [bom, *header_problems([header[0][1:], *header[1:]])]
    counts = Counter(header)
    known = set(COLUMN_NAMES)
    problems = [Problem("missing column", line=1, column=name) for name in COLUMN_NAMES if name not in counts]
    unexpected = [name for name in header if name not in known]
    problems += [Problem("unexpected column (not in the schema)", line=1, column=name) for name in unexpected]
    twice = sorted(name for name, count in counts.items() if count > 1)
    problems += [Problem("column appears more than once", line=1, column=name) for name in twice]
    if not problems:
        problems.append(Problem(f"columns are out of order; expected: {', '.join(COLUMN_NAMES)}", line=1))
    return problems


def check_row(line: int, fields: list[str]) -> list[Problem]:
    if len(fields) != len(COLUMNS):
        hint = " (truncated line?)" if len(fields) < len(COLUMNS) else ""
        return [Problem(f"has {len(fields)} fields, expected {len(COLUMNS)}{hint}", line=line)]
    problems = []
    for column, raw in zip(COLUMNS, fields, strict=True):
        message = "empty value" if raw == "" else column.problem(raw)
        if message is not None:
            shown = None if raw == "" else raw
            problems.append(Problem(message, line=line, column=column.name, value=shown))
    return problems


def undecodable(data: bytes, error: UnicodeDecodeError, offset: int = 0, newlines: int = 0) -> Problem:
    """The problem of bytes that are not UTF-8; `offset` and `newlines` are those before `data`."""
    at = offset + error.start
    byte = data[error.start : error.start + 1].hex()
    utf16 = at == 0 and data[:2] in (b"\xff\xfe", b"\xfe\xff")
    hint = " (a UTF-16 byte order mark: save the file as UTF-8)" if utf16 else ""
    line = newlines + data[: error.start].count(b"\n") + 1
    return Problem(f"not UTF-8 text: invalid byte 0x{byte} at offset {at}{hint}", line=line)
