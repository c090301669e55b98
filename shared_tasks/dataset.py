"""Streaming operations on the dataset file: facts, id scan, and an atomic append.

Memory stays bounded by the chunk size, not the file size; the appended file is written
beside the original and renamed over it, so a crash mid-append leaves the old version
whole and nothing in the DVC cache can be touched through a link.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shared_tasks.schema import ID_COLUMN

CHUNK_BYTES = 1 << 20
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


def scan_ids(path: Path, wanted: Collection[int] = ()) -> tuple[int, list[int]]:
    """The largest Employee ID in the file and which of `wanted` it already holds."""
    largest = 0
    found: set[int] = set()
    wanted_series = pd.Series(sorted(set(wanted)), dtype="int64")
    for chunk in pd.read_csv(path, usecols=[ID_COLUMN], dtype={ID_COLUMN: "int64"}, chunksize=ID_SCAN_CHUNK_ROWS):
        ids = chunk[ID_COLUMN]
        if len(ids):
            largest = max(largest, int(ids.max()))
        if len(wanted_series):
            found.update(int(value) for value in wanted_series[wanted_series.isin(ids)])
    return largest, sorted(found)


def records_to_csv_bytes(records: pd.DataFrame, header: bool = False) -> bytes:
    return records.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")


def append_records(path: Path, records: pd.DataFrame) -> FileFacts:
    """Write `path` + records to a new file and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.append.tmp")
    tally = _Tally()
    try:
        with path.open("rb") as source, tmp.open("wb") as target:
            while chunk := source.read(CHUNK_BYTES):
                target.write(chunk)
                tally.feed(chunk)
            if tally.last_byte != b"\n":
                target.write(b"\n")
                tally.feed(b"\n")
            body = records_to_csv_bytes(records)
            target.write(body)
            tally.feed(body)
            target.flush()
            os.fsync(target.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return tally.facts()
