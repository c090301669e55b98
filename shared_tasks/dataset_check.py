"""The rules of a header and a row (shared with change files), and whole-dataset validation.

A whole dataset (one file, or part files read in order) is checked by every rule a change is,
plus its own: the header exactly the schema's in each file, each Employee ID once across all
files, and room left for the ids the pipeline assigns. It streams in blocks cut after a newline,
hashing each file's bytes (md5) in the same pass, with memory independent of the dataset's size.

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
import hashlib
import io
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from shared_tasks.schema import (
    COLUMN_NAMES,
    COLUMNS,
    CSV_ENCODING,
    FREE_ID_MAX,
    ID_COLUMN,
    MAX_REPORTED_PROBLEMS,
    DataValidationError,
    IntColumn,
    Problem,
)

BLOCK_BYTES = 4 << 20
PYTHON_BYTES = 64 << 10
# No record of this schema comes near this; a longer line is refused instead of held in memory.
LONGEST_LINE_BYTES = 16 << 20
SPILL_ENTRIES = 1 << 20
PARTITION_ENTRIES = 1 << 19
MAX_PARTITIONS = 256
LINE_BITS = 40  # a row's place: file index << LINE_BITS | line

_Ids = np.ndarray[Any, np.dtype[np.int64]]
INT_COLUMNS = tuple(column for column in COLUMNS if isinstance(column, IntColumn))


# --- The rules of a header and a row -----------------------------------------------------------


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


# --- Whole-dataset validation ------------------------------------------------------------------


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
    largest_id: int
    python_blocks: int  # spans checked row by row in Python rather than vouched for by polars


def validate_dataset(files: Sequence[Path], source: str, *, spill_dir: Path | None = None) -> DatasetVerdict:
    """Validate the files that together form one dataset, read in order, in one pass each.

    Raises DataValidationError with the first MAX_REPORTED_PROBLEMS problems in file and line
    order (each naming the file when there are several) and the count of all of them. Past
    SPILL_ENTRIES records the ids are spilled to a temporary folder in `spill_dir` (16 bytes a
    record; the system's temporary folder by default).
    """
    if not files:
        raise DataValidationError(source, [Problem("has no files")])
    blocks = _PolarsBlocks()
    findings = _Findings()
    verdicts: list[FileVerdict] = []
    names = [path.name if len(files) > 1 else None for path in files]
    with _IdLedger(spill_dir) as ledger, ThreadPoolExecutor(1) as hashing, ThreadPoolExecutor(1) as parsing:
        for index, path in enumerate(files):
            verdicts.append(_FileScan(index, names[index], blocks, findings, ledger).run(path, hashing, parsing))
        records = sum(verdict.records for verdict in verdicts)
        _report_ids(ledger, findings, names, records)
    if findings.total:
        raise DataValidationError(source, findings.first(), findings.total)
    return DatasetVerdict(tuple(verdicts), records, ledger.largest, findings.python_blocks)


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


@dataclass
class _Span:
    """Whole lines of a file: their bytes, and where they start."""

    data: bytes
    offset: int
    newlines: int  # b"\n" before it in the file (the line an undecodable byte is reported on)
    count: int  # b"\n" in it
    line: int = 0  # the physical line it starts on, as csv counts them (\r, \n and \r\n end one)


class _LineTooLong(Exception):
    pass


class _Reader:
    """A file's bytes in spans of whole lines, hashed (md5) in another thread as they are read."""

    def __init__(self, handle: IO[bytes], hashing: ThreadPoolExecutor) -> None:
        self._handle, self._hashing = handle, hashing
        self._digest = hashlib.md5(usedforsecurity=False)
        self._hashed: Future[None] | None = None
        self._pending = b""
        self.eof = False
        self.offset = 0
        self.newlines = 0

    def _read(self) -> bytes:
        chunk = self._handle.read(BLOCK_BYTES)
        if not chunk:
            self.eof = True
            return chunk
        if self._hashed is not None:
            self._hashed.result()  # in order, and at most one block waiting
        if len(chunk) < BLOCK_BYTES:  # a small file or the end of one: no thread to start
            self._digest.update(chunk)
            self._hashed = None
        else:
            self._hashed = self._hashing.submit(self._digest.update, chunk)
        return chunk

    def _hand_out(self, data: bytes) -> _Span:
        span = _Span(data, self.offset, self.newlines, _newlines(data))
        self.offset += len(data)
        self.newlines += span.count
        return span

    def _take(self, size: int) -> _Span:
        data, self._pending = self._pending[:size], self._pending[size:]
        return self._hand_out(data)

    def block(self) -> _Span:
        """About BLOCK_BYTES of whole lines (the rest of the file at its end; empty after it)."""
        if len(self._pending) < BLOCK_BYTES and not self.eof:
            chunk = self._read()
            cut = chunk.rfind(b"\n") + 1
            if cut:
                head, self._pending = self._pending, chunk[cut:]
                return self._hand_out(b"".join((head, memoryview(chunk)[:cut])))
            self._pending += chunk
        if self.eof:
            return self._take(len(self._pending))
        end = self._pending.rfind(b"\n")
        return self._take(end + 1) if end >= 0 else self.line()

    def line(self) -> _Span:
        """One line, with its newline (the rest of the file at its end)."""
        while (end := self._pending.find(b"\n")) < 0 and not self.eof:
            if len(self._pending) > LONGEST_LINE_BYTES:
                raise _LineTooLong
            self._pending += self._read()
        return self._take(end + 1 if end >= 0 else len(self._pending))

    def rest_is_blank(self) -> bool:
        """Whether nothing but whitespace follows (looked for in the next block only)."""
        if not self.eof:
            self._pending += self._read()
        return self.eof and not self._pending.decode(CSV_ENCODING, "replace").strip()

    def md5(self) -> str:
        if self._hashed is not None:
            self._hashed.result()
        return self._digest.hexdigest()


class _FileScan:
    """One file of the dataset: its header, then its records, block by block."""

    def __init__(self, index: int, name: str | None, blocks: _PolarsBlocks, findings: _Findings, ledger: _IdLedger):
        self.index, self.name, self.blocks, self.findings, self.ledger = index, name, blocks, findings, ledger
        self.header: list[str] | None = None
        self.line = 1
        self.records = 0
        self.reader: _Reader
        self.parsing: ThreadPoolExecutor
        self.ahead: tuple[_Span, Future[_Ids | None]] | None = None

    def run(self, path: Path, hashing: ThreadPoolExecutor, parsing: ThreadPoolExecutor) -> FileVerdict:
        self.parsing = parsing
        try:
            with path.open("rb") as handle:
                self.reader = _Reader(handle, hashing)
                self._scan()
                ids = self.ledger.ranges.get(self.index)
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
        except _LineTooLong:
            message = f"a line is longer than {LONGEST_LINE_BYTES:,} bytes; no record of this schema is"
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
            parsed = self.parsing.submit(self.blocks.valid_ids, span.data, span.count)
            if not self._settle():
                return False
            self.ahead = (span, parsed)
        return self._settle()

    def _next_block(self) -> _Span:
        try:
            return self.reader.block()
        except _LineTooLong:
            self._settle()  # the line numbers so far
            raise

    def _settle(self) -> bool:
        """Check the block read ahead, if any; False when the rest of the file cannot be read."""
        if self.ahead is None:
            return True
        (span, parsed), self.ahead = self.ahead, None
        span.line = self.line
        return self._check(span, parsed.result())

    def _check(self, span: _Span, ids: _Ids | bool | None = True) -> bool:
        """Check whole lines (`ids` when already vouched for, None when not; True: not yet tried).

        False when the rest of the file cannot be read (undecodable, malformed).
        """
        if ids is True:
            ids = self.blocks.valid_ids(span.data, span.count)
        if isinstance(ids, np.ndarray):
            places = (self.index << LINE_BITS) + span.line + np.arange(len(ids), dtype=np.int64)
            self.ledger.add(ids, places)
            self.records += len(ids)
            self.line = span.line + len(ids)
            return True
        halves = _halves(span) if len(span.data) > PYTHON_BYTES and _lines_are_newlines(span.data) else None
        if halves is None:
            self.findings.python_blocks += 1
            return self._python(span)
        return all(self._check(half) for half in halves)

    def _python(self, span: _Span) -> bool:
        """Check whole lines row by row; the last record may go on past them (a quoted newline)."""
        try:
            block_lines = io.StringIO(span.data.decode(CSV_ENCODING), newline="").readlines()
        except UnicodeDecodeError as error:
            self._problem(undecodable(span.data, error, span.offset, span.newlines))
            return False
        if not block_lines:
            return True
        rows = csv.reader(self._lines(block_lines), strict=True)
        ids: list[int] = []
        places: list[int] = []
        try:
            for fields in rows:
                line = span.line + rows.line_num - 1
                if not self._record(line, fields, ids, places):
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
            self.ledger.add(np.array(ids, dtype=np.int64), np.array(places, dtype=np.int64))
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

    def _record(self, line: int, fields: list[str], ids: list[int], places: list[int]) -> bool:
        if self.header is None:
            self.header = fields
            problems = header_problems(fields)
            for problem in problems:
                self._problem(problem)
            return not problems
        self.records += 1
        problems = check_row(line, fields)
        for problem in problems:
            self._problem(problem)
        if not problems:
            ids.append(int(fields[0]))
            places.append((self.index << LINE_BITS) + line)
        return True


class _Undecodable(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _newlines(data: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord("\n")))


def _lines_are_newlines(data: bytes) -> bool:
    """Whether each line ends in \\n (no quote can join lines, no lone \\r end one)."""
    return b'"' not in data and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))


def _halves(span: _Span) -> tuple[_Span, _Span] | None:
    cut = span.data.find(b"\n", len(span.data) // 2) + 1
    if cut <= 0 or cut >= len(span.data):
        return None
    first, second = span.data[:cut], span.data[cut:]
    count = _newlines(first)
    return (
        _Span(first, span.offset, span.newlines, count, span.line),
        _Span(second, span.offset + cut, span.newlines + count, span.count - count, span.line + count),
    )


class _PolarsBlocks:
    """Vouches for whole lines when every row is valid by `check_row`'s rules, or says it cannot."""

    def __init__(self) -> None:
        import polars as pl

        self.pl = pl
        # Categories as enums: polars refuses any other value while it parses, in its threads.
        self.schema = {c.name: pl.String if isinstance(c, IntColumn) else pl.Enum(c.values) for c in COLUMNS}
        # A number that fails to convert is null, as are empty values and missing fields (a short row).
        self.numbers = [pl.col(c.name).cast(pl.Int64, strict=False) for c in INT_COLUMNS]
        self.extremes = [pl.all().null_count().name.suffix(" nulls"), pl.all().min().name.suffix(" min")]
        self.extremes.append(pl.all().max().name.suffix(" max"))

    def valid_ids(self, data: bytes, newlines: int) -> _Ids | None:
        """The Employee IDs of `data`'s rows when every row is valid; None when it cannot tell.

        polars converts exactly [+-]?[0-9]+ within int64 to a number (no spaces, no other digits);
        no valid row holds a '+', so with none in the block a number converted is ASCII digits.
        """
        if not data or b"+" in data or not _lines_are_newlines(data):
            return None
        try:
            # No quoting: a block with a quote goes to Python; this splits an unquoted line as csv does.
            frame = self.pl.read_csv(
                data, has_header=False, schema=self.schema, quote_char=None, encoding="utf8", raise_if_empty=False
            )
        except self.pl.exceptions.PolarsError:  # a value not in its category, a long row, not UTF-8
            return None
        lines = newlines + (0 if data.endswith(b"\n") else 1)
        if frame.height != lines or any(frame.null_count().row(0)):  # a blank line, an empty value
            return None
        numbers = frame.select(self.numbers)
        found = numbers.select(self.extremes).row(0, named=True)
        for column in INT_COLUMNS:
            low, high = found[f"{column.name} min"], found[f"{column.name} max"]
            if found[f"{column.name} nulls"] or not column.valid_min <= low <= high <= column.valid_max:
                return None
        ids: _Ids = numbers.get_column(ID_COLUMN).to_numpy()
        return ids


# --- Each Employee ID once ---------------------------------------------------------------------


class _IdLedger:
    """The Employee IDs of the valid rows and their places, checked for repeats in bounded memory.

    While each block's ids rise and lie above all ids before them, as the pipeline writes them,
    none can repeat, and that is all that is checked. The ids are kept with their places (16 bytes
    an id) in memory up to SPILL_ENTRIES, beyond that in a spill file in a temporary folder. When
    the ids did not rise, that spill is split into hash partitions of about PARTITION_ENTRIES ids
    (at most MAX_PARTITIONS; a random multiplier spreads any pattern of ids) and each partition is
    read chunk by chunk against the distinct ids already seen in it: memory is one chunk plus one
    partition's distinct ids, whatever the dataset's size or its repeats.
    """

    def __init__(self, spill_dir: Path | None) -> None:
        self._spill_dir = spill_dir
        self._folder: Path | None = None
        self._kept: list[tuple[_Ids, _Ids]] = []
        self._kept_count = 0
        self.count = 0
        self.rising = True
        self.largest = 0
        self.largest_place = 0
        self.ranges: dict[int, tuple[int, int]] = {}  # file index -> (smallest id, largest id)

    def __enter__(self) -> _IdLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def add(self, ids: _Ids, places: _Ids) -> None:
        if not len(ids):
            return
        top = int(np.argmax(ids))
        file_index = int(places[0]) >> LINE_BITS  # a block lies within one file
        low, high = self.ranges.get(file_index, (int(ids.min()), int(ids[top])))
        self.ranges[file_index] = (min(low, int(ids.min())), max(high, int(ids[top])))
        if self.rising and (ids[0] <= self.largest or bool(np.any(ids[1:] <= ids[:-1]))):
            self.rising = False
        if int(ids[top]) > self.largest:
            self.largest, self.largest_place = int(ids[top]), int(places[top])
        self.count += len(ids)
        self._kept.append((ids, places))
        self._kept_count += len(ids)
        if self._kept_count > SPILL_ENTRIES:
            self._spill()

    def _spill(self) -> None:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="dataset-check-", dir=self._spill_dir))
        with (self._folder / "ids").open("ab") as ids_file, (self._folder / "places").open("ab") as places_file:
            for ids, places in self._kept:
                ids.tofile(ids_file)
                places.tofile(places_file)
        self._kept, self._kept_count = [], 0

    def repeats(self) -> tuple[int, list[tuple[int, int, int]]]:
        """How many rows repeat an earlier row's id, and the first of them: (place, id, first place)."""
        if self.rising:
            return 0, []
        if self._folder is None:  # all in memory
            ids = np.concatenate([ids for ids, _ in self._kept])
            places = np.concatenate([places for _, places in self._kept])
            return _repeats([np.column_stack((ids, places)).ravel()])
        self._spill()
        total, first = 0, list[tuple[int, int, int]]()
        for path in self._partition(self._folder):
            with path.open("rb") as handle:
                count, found = _repeats(_chunks(handle, 2 * PARTITION_ENTRIES))
            total += count
            first = sorted(first + found)[:MAX_REPORTED_PROBLEMS]
        return total, first

    def _partition(self, folder: Path) -> list[Path]:
        count = min(MAX_PARTITIONS, -(-self.count // PARTITION_ENTRIES))
        bits = max(count - 1, 0).bit_length()
        multiplier = np.uint64(secrets.randbits(64) | 1)
        paths = [folder / f"partition-{number}" for number in range(1 << bits)]
        with contextlib.ExitStack() as stack:
            outputs = [stack.enter_context(path.open("wb")) for path in paths]
            ids_file = stack.enter_context((folder / "ids").open("rb"))
            places_file = stack.enter_context((folder / "places").open("rb"))
            while len(ids := np.fromfile(ids_file, dtype=np.int64, count=PARTITION_ENTRIES)):
                places = np.fromfile(places_file, dtype=np.int64, count=len(ids))
                hashed = ids.view(np.uint64) * multiplier
                partition = (hashed >> np.uint64(64 - bits)) if bits else np.zeros(len(ids), np.uint64)
                order = np.argsort(partition, kind="stable")
                bounds = np.searchsorted(partition[order], np.arange(1, len(paths)), side="left")
                pairs = np.column_stack((ids[order], places[order]))
                for output, rows in zip(outputs, np.split(pairs, bounds), strict=True):
                    rows.tofile(output)
        return paths


def _chunks(handle: IO[bytes], count: int) -> Iterator[_Ids]:
    while len(chunk := np.fromfile(handle, dtype=np.int64, count=count)):
        yield chunk


def _repeats(chunks: Iterable[_Ids]) -> tuple[int, list[tuple[int, int, int]]]:
    """Repeats among (id, place) pairs (flat, in place order), chunk by chunk."""
    seen, seen_first = np.empty(0, np.int64), np.empty(0, np.int64)
    total, first = 0, list[tuple[int, int, int]]()
    for pairs in chunks:
        ids, places = pairs[0::2], pairs[1::2]
        order = np.argsort(ids, kind="stable")  # equal ids stay in place order
        ids, places = ids[order], places[order]
        starts = np.ones(len(ids), bool)
        starts[1:] = ids[1:] != ids[:-1]
        group_first = places[np.maximum.accumulate(np.where(starts, np.arange(len(ids)), 0))]
        at = np.minimum(np.searchsorted(seen, ids), max(len(seen) - 1, 0))
        known = (seen[at] == ids) if len(seen) else np.zeros(len(ids), bool)
        first_place = np.where(known, seen_first[at] if len(seen) else 0, group_first)
        repeated = known | ~starts
        total += int(repeated.sum())
        earliest = np.flatnonzero(repeated)[np.argsort(places[repeated], kind="stable")[:MAX_REPORTED_PROBLEMS]]
        found = [(int(places[i]), int(ids[i]), int(first_place[i])) for i in earliest]
        first = sorted(first + found)[:MAX_REPORTED_PROBLEMS]
        new = starts & ~known
        merged = np.concatenate((seen, ids[new]))
        keep = np.argsort(merged, kind="stable")
        seen, seen_first = merged[keep], np.concatenate((seen_first, places[new]))[keep]
    return total, first


def _report_ids(ledger: _IdLedger, findings: _Findings, names: list[str | None], records: int) -> None:
    """Repeated ids, and a largest id that leaves the pipeline no room, as problems by place."""

    def where(place: int) -> tuple[int, str | None]:
        return place & ((1 << LINE_BITS) - 1), names[place >> LINE_BITS]

    found: list[tuple[int, Problem]] = []
    total, repeats = ledger.repeats()
    for place, employee_id, first_place in repeats:
        line, name = where(place)
        first_line, first_name = where(first_place)
        of = f" of {first_name}" if first_name != name else ""
        message = f"duplicate {ID_COLUMN} (first seen on line {first_line}{of})"
        found.append((place, Problem(message, line=line, column=ID_COLUMN, value=str(employee_id), file=name)))
    if ledger.largest > FREE_ID_MAX + records:
        line, name = where(ledger.largest_place)
        message = (
            f"leaves no room for the ids the pipeline assigns: above {FREE_ID_MAX} ids may only follow one "
            f"another, so the largest may be at most {FREE_ID_MAX} + the {records} record(s)"
        )
        found.append((ledger.largest_place, Problem(message, line, ID_COLUMN, str(ledger.largest), name)))
        total += 1
    if total:
        findings.add_sorted(found, total)
