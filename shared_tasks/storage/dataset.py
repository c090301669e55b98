"""Streaming operations on the dataset file: facts, id scan, and an atomic append.

Memory stays bounded by the chunk size, not the file size; the appended file is written
beside the original and renamed over it, so a crash mid-append leaves the old version
whole, and the original (often a read-only link to a DVC cache object) is never written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared_tasks.files import atomic_path
from shared_tasks.validation.schema import ID_COLUMN

if TYPE_CHECKING:
    import pandas as pd

CHUNK_BYTES = 1 << 20
HASH_CHUNK_BYTES = 4 << 20
ID_SCAN_CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class FileFacts:
    md5: str
    size: int
    rows: int


class _Tally:
    """md5, size and line count of a byte stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self.digest = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.newlines = 0
        self.last_byte = b"\n"

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self.digest.update(chunk)
            self.size += len(chunk)
            self.newlines += chunk.count(b"\n")
            self.last_byte = chunk[-1:]

    def facts(self) -> FileFacts:
        lines = self.newlines + (0 if self.last_byte == b"\n" or self.size == 0 else 1)
        return FileFacts(md5=self.digest.hexdigest(), size=self.size, rows=max(lines - 1, 0))


def file_facts(path: Path) -> FileFacts:
    tally = _Tally()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            tally.feed(chunk)
    return tally.facts()


def scan_ids(path: Path, wanted: Collection[int] = (), column: str = ID_COLUMN) -> tuple[int, list[int]]:
    """The largest id (in the generated key `column`) in the file and which of `wanted` it already holds."""
    import pandas as pd

    largest = 0
    found: set[int] = set()
    wanted_series = pd.Series(sorted(set(wanted)), dtype="int64")
    for chunk in pd.read_csv(path, usecols=[column], dtype={column: "int64"}, chunksize=ID_SCAN_CHUNK_ROWS):
        ids = chunk[column]
        if len(ids):
            largest = max(largest, int(ids.max()))
        if len(wanted_series):
            found.update(int(value) for value in wanted_series[wanted_series.isin(ids)])
    return largest, sorted(found)


def id_range(path: Path, column: str = ID_COLUMN) -> tuple[int, int] | None:
    """The smallest and largest id (generated key `column`) in the file (None with no records), reading only it."""
    import pandas as pd

    low: int | None = None
    high: int | None = None
    for chunk in pd.read_csv(path, usecols=[column], dtype={column: "int64"}, chunksize=ID_SCAN_CHUNK_ROWS):
        ids = chunk[column]
        if len(ids):
            low = int(ids.min()) if low is None else min(low, int(ids.min()))
            high = int(ids.max()) if high is None else max(high, int(ids.max()))
    return None if low is None or high is None else (low, high)


def records_to_csv_bytes(records: pd.DataFrame, header: bool = False) -> bytes:
    return records.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")


def append_records(path: Path, records: pd.DataFrame, base_rows: int | None = None) -> FileFacts:
    """Write `path` + records to a new file and rename it over `path`.

    With `base_rows` (the record count of `path`, already known) the copy runs in the kernel
    while this thread hashes the same bytes, so an append costs about one md5 pass of the file.
    """
    body = records_to_csv_bytes(records)
    with atomic_path(path) as tmp:
        if base_rows is None or path.stat().st_size == 0:
            facts = _copy_and_count(path, tmp, body)
        else:
            facts = _copy_while_hashing(path, tmp, body, base_rows)
    return facts


def _copy_and_count(source: Path, target: Path, body: bytes) -> FileFacts:
    tally = _Tally()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(CHUNK_BYTES):
            writer.write(chunk)
            tally.feed(chunk)
        tail = (b"" if tally.last_byte == b"\n" else b"\n") + body
        writer.write(tail)
        tally.feed(tail)
        writer.flush()
        os.fsync(writer.fileno())
    return tally.facts()


def _copy_while_hashing(source: Path, target: Path, body: bytes, base_rows: int) -> FileFacts:
    digest = hashlib.md5(usedforsecurity=False)
    size, last_byte = 0, b"\n"
    with ThreadPoolExecutor(max_workers=1) as copier:
        copied = copier.submit(shutil.copyfile, source, target)
        with source.open("rb") as reader:
            while chunk := reader.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                last_byte = chunk[-1:]
        copied.result()
    if target.stat().st_size != size:
        raise OSError(f"{source.name} changed while it was being copied; nothing was written")
    tail = (b"" if last_byte == b"\n" else b"\n") + body
    with target.open("ab") as writer:
        writer.write(tail)
        writer.flush()
        os.fsync(writer.fileno())
    digest.update(tail)
    return FileFacts(md5=digest.hexdigest(), size=size + len(tail), rows=base_rows + body.count(b"\n"))
