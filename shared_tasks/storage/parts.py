"""Part files of the partitioned layout: their names, how one is written, and how small ones merge.

A directory's md5 is DVC 3's: the md5 of its sorted JSON manifest of part md5s, plus ".dir".
Every part adds ~70 bytes to that manifest, and DVC uploads the manifest with every version, so
small parts are merged as they accumulate (size-tiered, as log-structured stores compact): the
last `MERGE_FAN_IN` small parts of one size tier become one part. The number of parts then grows
with the logarithm of the versions, not with the versions, and each record is rewritten once per
tier at most.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from shared_tasks.files import atomic_file, write_atomically
from shared_tasks.storage.catalog import FileCatalog
from shared_tasks.storage.dataset import records_to_csv_bytes
from shared_tasks.validation.validate import DataValidationError, Problem

if TYPE_CHECKING:
    import pandas as pd

PART_PATTERN = re.compile(r"^part-(\d{6})\.csv$")
MERGE_FAN_IN = 8
LAST_PART_NUMBER = 999_999  # the largest number six digits hold
# Each run names its part one above the last; a version whose parts go beyond this (a foreign
# part-999999.csv) would leave the pipeline no name for its next part, so it is refused.
PART_NUMBER_LIMIT = 899_999


def part_name(number: int) -> str:
    if not 0 <= number <= LAST_PART_NUMBER:
        raise ValueError(f"no part name for number {number}: parts are part-000000.csv to part-{LAST_PART_NUMBER}.csv")
    return f"part-{number:06d}.csv"


def part_number(part: Path) -> int:
    match = PART_PATTERN.match(part.name)
    assert match is not None
    return int(match.group(1))


def part_files(directory: Path) -> list[Path]:
    """The part files in reading order; anything else in the directory is an error."""
    if not directory.is_dir():
        raise DataValidationError(f"dataset {directory.name}", [Problem("not a directory of part files")])
    parts: list[Path] = []
    strays: list[Path] = []
    for entry in sorted(directory.iterdir()):
        (parts if entry.is_file() and PART_PATTERN.match(entry.name) else strays).append(entry)
    if strays:
        problems = [Problem(f"unexpected entry {entry.name!r} (parts are named part-NNNNNN.csv)") for entry in strays]
        raise DataValidationError(f"dataset {directory.name}", problems)
    beyond = [part for part in parts if part_number(part) > PART_NUMBER_LIMIT]
    if beyond:
        problems = [
            Problem(f"part {part.name!r} is numbered above {PART_NUMBER_LIMIT}: it leaves no names for the next parts")
            for part in beyond
        ]
        raise DataValidationError(f"dataset {directory.name}", problems)
    if not parts:
        raise DataValidationError(f"dataset {directory.name}", [Problem("holds no part files")])
    return parts


def write_part(target: Path, records: pd.DataFrame) -> None:
    """Write beside the directory, then rename in: a crash never leaves a half part inside it."""
    write_atomically(target, records_to_csv_bytes(records, header=True), fsync=True, temp_dir=target.parent.parent)


def concatenate(files: Iterable[Path], out: BinaryIO) -> None:
    """The files' bytes one after another, with the first one's header only."""
    for index, file in enumerate(files):
        with file.open("rb") as source:
            if index:
                source.readline()  # the header, already written once
            shutil.copyfileobj(source, out)
            if source.tell() == 0:
                continue
            source.seek(-1, os.SEEK_END)
            if source.read(1) != b"\n":
                out.write(b"\n")  # so the next file's first record starts on a line of its own


def _tier(rows: int) -> int:
    tier = 0
    while rows >= MERGE_FAN_IN:
        rows //= MERGE_FAN_IN
        tier += 1
    return tier


def merge_small_tail(directory: Path, catalog: FileCatalog, recorded: dict[str, str], part_rows: int) -> bool:
    """Merge the last `MERGE_FAN_IN` parts when all are small and of one tier; True if it did.

    The merged part takes the first one's name, so reading order is kept. A part is replaced by
    a rename and the rest unlinked: the cache objects behind the old parts are never written.
    """
    parts = part_files(directory)[-MERGE_FAN_IN:]
    if len(parts) < MERGE_FAN_IN:
        return False
    rows = [catalog.facts(part, recorded.get(part.name)).rows for part in parts]
    if any(count >= part_rows for count in rows) or len({_tier(count) for count in rows}) != 1:
        return False
    with atomic_file(parts[0], fsync=True, temp_dir=directory.parent) as out:
        concatenate(parts, out)
    for part in parts[1:]:
        part.unlink()
    return True
