"""Whole-dataset validation: every rule a change has (row_rules), and a whole dataset's own.

A whole dataset (one file, or part files read in order) is checked by every rule a change is,
plus its own: the header exactly the schema's fields in each file, each unique key (the Table
Schema's primaryKey, each field with `unique`) once across all files, and room left for the ids
the pipeline assigns. It streams in blocks cut after a newline, hashing each file's bytes (md5) in
the same pass, with memory independent of the dataset's size.

Unique keys: each key's values go to an IdLedger (bounded memory, spilled to disk) as the scan
reads them, and are checked for repeats once every file is read (unique_keys).

Tool: polars' CSV reader (Rust, multithreaded; the schema given, categories as enums so that any
other value fails the parse, numbers checked by vectorised expressions). Unlike pyarrow, whose mere
presence makes pandas 3 import it and store every string column in it, it leaves pandas alone.
It reads blocks this module cuts after a newline itself, so each block's first line is known
exactly. A block it cannot vouch for (a quote, a lone carriage return, a blank line, any bad
value) is halved down to PYTHON_BYTES and then checked row by row in Python by `check_row`, the
very rules a change file is checked by: a problem names the line (csv's physical line), column
and value either way.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared_tasks.validation.csv_blocks import BlockKeys, PolarsBlocks, key_ids
from shared_tasks.validation.csv_lines import LineReader, LineTooLong, Span, lines_are_newlines, split_in_halves
from shared_tasks.validation.field_values import Logical
from shared_tasks.validation.id_ledger import LINE_BITS, IdLedger
from shared_tasks.validation.row_rules import check_row, header_problems, undecodable
from shared_tasks.validation.schema import (
    CSV_ENCODING,
    MAX_REPORTED_PROBLEMS,
    DatasetRules,
    DataValidationError,
    Problem,
    employee_rules,
)
from shared_tasks.validation.unique_keys import repeated_key_problems, room_problem

PYTHON_BYTES = 64 << 10


@dataclass(frozen=True)
class FileVerdict:
    path: Path
    md5: str
    size: int
    records: int
    smallest_id: int | None = None  # the file's id range (None with no valid record)
    largest_id: int | None = None


@dataclass(frozen=True)
class DatasetVerdict:
    """A valid dataset: its files' md5s (of their bytes, as DVC hashes them) and record counts."""

    files: tuple[FileVerdict, ...]
    records: int
    largest_id: int  # of the generated key (0 without one)
    python_blocks: int  # spans checked row by row in Python rather than vouched for by polars


def validate_dataset(
    files: Sequence[Path], source: str, *, spill_dir: Path | None = None, rules: DatasetRules | None = None
) -> DatasetVerdict:
    """Validate the files that together form one dataset, read in order, in one pass each.

    Raises DataValidationError with the first MAX_REPORTED_PROBLEMS problems in file and line
    order (each naming the file when there are several) and the count of all of them. Past
    SPILL_ENTRIES records a key's values are spilled to a temporary folder in `spill_dir` (16 bytes
    a record and key; the system's temporary folder by default). `rules`: the employee dataset's
    by default.
    """
    if not files:
        raise DataValidationError(source, [Problem("has no files")])
    rules = rules or employee_rules()
    blocks = PolarsBlocks(rules)
    findings = _Findings()
    verdicts: list[FileVerdict] = []
    names = [path.name if len(files) > 1 else None for path in files]
    generated = next((i for i, key in enumerate(blocks.keys) if key.names == (rules.generated_key,)), None)
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(1) as hashing, ThreadPoolExecutor(1) as parsing:
        ledgers = [stack.enter_context(IdLedger(spill_dir)) for _ in blocks.keys]
        for index, path in enumerate(files):
            scan = _FileScan(index, names[index], blocks, findings, ledgers, generated)
            verdicts.append(scan.run(path, hashing, parsing))
        records = sum(verdict.records for verdict in verdicts)
        repeated, repeats = repeated_key_problems(blocks.keys, ledgers, files, names)
        if repeats:
            findings.add_sorted(repeated, repeats)
        if generated is not None and (room := room_problem(ledgers[generated], rules, names, records)) is not None:
            findings.add_sorted([room], 1)
    if findings.total:
        raise DataValidationError(source, findings.first(), findings.total)
    largest = ledgers[generated].largest if generated is not None else 0
    return DatasetVerdict(tuple(verdicts), records, largest, findings.python_blocks)


@dataclass
class _Findings:
    """The first problems in (file, line) order and the count of all; memory is bounded."""

    kept: list[tuple[tuple[int, int], Problem]] = field(default_factory=list)
    total: int = 0
    python_blocks: int = 0

    def add(self, file_index: int, problem: Problem) -> None:
        self.total += 1
        if len(self.kept) < MAX_REPORTED_PROBLEMS:
            self.kept.append(((file_index, problem.line or 0), problem))

    def add_sorted(self, found: list[tuple[int, Problem]], total: int) -> None:
        """Problems found after the pass (keyed by place), merged into the order by place."""
        self.total += total
        merged = self.kept + [((place >> LINE_BITS, place & ((1 << LINE_BITS) - 1)), p) for place, p in found]
        self.kept = sorted(merged, key=lambda item: item[0])[:MAX_REPORTED_PROBLEMS]

    def first(self) -> list[Problem]:
        return [problem for _, problem in self.kept]


class _FileScan:
    """One file of the dataset: its header, then its records, block by block."""

    def __init__(
        self,
        index: int,
        name: str | None,
        blocks: PolarsBlocks,
        findings: _Findings,
        ledgers: list[IdLedger],
        generated: int | None,
    ):
        self.index, self.name, self.blocks, self.findings, self.ledgers = index, name, blocks, findings, ledgers
        self.generated = generated
        self.header: list[str] | None = None
        self.line = 1
        self.records = 0
        self.reader: LineReader
        self.parsing: ThreadPoolExecutor
        self.ahead: tuple[Span, Future[BlockKeys | None]] | None = None

    def run(self, path: Path, hashing: ThreadPoolExecutor, parsing: ThreadPoolExecutor) -> FileVerdict:
        self.parsing = parsing
        try:
            with path.open("rb") as handle:
                self.reader = LineReader(handle, hashing)
                self._scan()
                ids = self.ledgers[self.generated].ranges.get(self.index) if self.generated is not None else None
                low, high = ids if ids is not None else (None, None)
                return FileVerdict(path, self.reader.md5(), self.reader.offset, self.records, low, high)
        except OSError as error:
            self._problem(Problem(f"cannot be read: {error.strerror}"))
            return FileVerdict(path, "", 0, 0)

    def _scan(self) -> None:
        try:
            first = self.reader.line()
            if not first.data.decode(CSV_ENCODING, "replace").strip() and self.reader.rest_is_blank():
                self._problem(Problem("file is empty"))
                return
            first.line = 1
            if not self._python(first) or self.header is None or not self._blocks():
                return
        except LineTooLong as too_long:
            message = f"a line is longer than {too_long.limit:,} bytes; no record of this schema is"
            self._problem(Problem(message, line=self.line))
            return
        if self.records == 0:
            self._problem(Problem("has a header but no records"))

    def _problem(self, problem: Problem) -> None:
        if self.name is not None:
            problem = Problem(problem.message, problem.line, problem.column, problem.value, self.name)
        self.findings.add(self.index, problem)

    def _blocks(self) -> bool:
        """The records after the header, each block parsed in another thread while the next is read.

        A block with a quote is checked before reading on: its last record may go on past it.
        """
        while (span := self._next_block()).data:
            if b'"' in span.data:
                if not self._settle():
                    return False
                span.line = self.line
                if not self._check(span):
                    return False
                continue
            parsed = self.parsing.submit(self.blocks.valid_keys, span.data, span.count)
            if not self._settle():
                return False
            self.ahead = (span, parsed)
        return self._settle()

    def _next_block(self) -> Span:
        try:
            return self.reader.block()
        except LineTooLong:
            self._settle()  # the line numbers so far
            raise

    def _settle(self) -> bool:
        """Check the block read ahead, if any; False when the rest of the file cannot be read."""
        if self.ahead is None:
            return True
        (span, parsed), self.ahead = self.ahead, None
        span.line = self.line
        return self._check(span, parsed.result())

    def _check(self, span: Span, keys: BlockKeys | bool | None = True) -> bool:
        """Check whole lines (`keys` when already vouched for, None when not; True: not yet tried).

        False when the rest of the file cannot be read (undecodable, malformed).
        """
        if keys is True:
            keys = self.blocks.valid_keys(span.data, span.count)
        if isinstance(keys, BlockKeys):
            first = (self.index << LINE_BITS) + span.line
            for ledger, (ids, offsets) in zip(self.ledgers, keys.keys, strict=True):
                rows = np.arange(len(ids), dtype=np.int64) if offsets is None else offsets
                ledger.add(ids, first + rows)
            self.records += keys.count
            self.line = span.line + keys.count
            return True
        halves = split_in_halves(span) if len(span.data) > PYTHON_BYTES and lines_are_newlines(span.data) else None
        if halves is None:
            self.findings.python_blocks += 1
            return self._python(span)
        return all(self._check(half) for half in halves)

    def _python(self, span: Span) -> bool:
        """Check whole lines row by row; the last record may go on past them (a quoted newline)."""
        try:
            block_lines = io.StringIO(span.data.decode(CSV_ENCODING), newline="").readlines()
        except UnicodeDecodeError as error:
            self._problem(undecodable(span.data, error, span.offset, span.newlines))
            return False
        if not block_lines:
            return True
        rows = csv.reader(self._lines(block_lines), strict=True)
        keys = _PythonKeys(len(self.ledgers))
        try:
            for fields in rows:
                line = span.line + rows.line_num - 1
                if not self._record(line, fields, keys):
                    return False
                if rows.line_num >= len(block_lines):
                    break
        except csv.Error as error:
            self._problem(Problem(f"malformed CSV: {error}", line=span.line + rows.line_num - 1))
            return False
        except _Undecodable as error:
            self._problem(error.problem)
            return False
        finally:
            for number, (ledger, key) in enumerate(zip(self.ledgers, self.blocks.keys, strict=True)):
                ids = key_ids(self.blocks.pl, key, keys.values[number])
                ledger.add(ids, np.array(keys.places[number], dtype=np.int64))
        self.line = span.line + rows.line_num
        return True

    def _lines(self, block_lines: list[str]) -> Iterator[str]:
        yield from block_lines
        while (span := self.reader.line()).data:
            try:
                text = span.data.decode(CSV_ENCODING)
            except UnicodeDecodeError as error:
                raise _Undecodable(undecodable(span.data, error, span.offset, span.newlines)) from None
            yield from io.StringIO(text, newline="")

    def _record(self, line: int, fields: list[str], keys: _PythonKeys) -> bool:
        if self.header is None:
            self.header = fields
            problems = header_problems(fields, self.blocks.rules)
            for problem in problems:
                self._problem(problem)
            return not problems
        self.records += 1
        problems = check_row(line, fields, self.blocks.rules)
        for problem in problems:
            self._problem(problem)
        if not problems:
            place = (self.index << LINE_BITS) + line
            for number, key in enumerate(self.blocks.keys):
                value = key.value(fields)
                if value is not None:
                    keys.values[number].append(value)
                    keys.places[number].append(place)
        return True


class _Undecodable(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


class _PythonKeys:
    """The keys of the valid rows of a span read in Python, and their places, key by key."""

    def __init__(self, count: int) -> None:
        self.values: list[list[tuple[Logical, ...]]] = [[] for _ in range(count)]
        self.places: list[list[int]] = [[] for _ in range(count)]
