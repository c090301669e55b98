"""The dataset on disk in either layout: one CSV file, or a directory of CSV part files.

A single file is the original system's layout: every version re-uploads the whole file. In
the partitioned layout a run writes its records into a new part file, so DVC uploads only
that part and a version costs O(change) bytes. Both layouts answer the same questions (facts,
header, ids, append, read), so the steps, history and verify never ask which one they hold.

A directory's md5 is DVC 3's: the md5 of its sorted JSON manifest of part md5s, plus ".dir".
Every part adds ~70 bytes to that manifest, and DVC uploads the manifest with every version, so
small parts are merged as they accumulate (size-tiered, as log-structured stores compact): the
last `MERGE_FAN_IN` small parts of one size tier become one part. The number of parts then grows
with the logarithm of the versions, not with the versions, and each record is rewritten once per
tier at most.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from shared_tasks.dataset import FileFacts, append_records, file_facts, records_to_csv_bytes, scan_ids
from shared_tasks.schema import ID_COLUMN
from shared_tasks.settings import Layout
from shared_tasks.validate import DataValidationError, Problem, read_header

PART_PATTERN = re.compile(r"^part-(\d{6})\.csv$")
DEFAULT_PART_ROWS = 100_000
MERGE_FAN_IN = 8


def part_name(number: int) -> str:
    return f"part-{number:06d}.csv"


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
    if not parts:
        raise DataValidationError(f"dataset {directory.name}", [Problem("holds no part files")])
    return parts


def directory_md5(entries: dict[str, str]) -> str:
    """DVC 3's hash of a directory from its files' md5s, keyed by relative path."""
    manifest = [{"md5": entries[relpath], "relpath": relpath} for relpath in sorted(entries)]
    text = json.dumps(manifest, sort_keys=True).encode("utf-8")
    return hashlib.md5(text, usedforsecurity=False).hexdigest() + ".dir"


@dataclass(frozen=True)
class ContentFacts:
    md5: str
    size: int
    rows: int
    largest_id: int


class FileCatalog:
    """What is known about data files by their content, so a run reads only the files it has not seen.

    A cached object is immutable and named by its md5: a workspace file (the single file or a
    part) that is a link to the cache object of the md5 its pointer or manifest records has that
    md5 (no need to hash it again), and an md5 names the file's row count and largest id for good
    (kept as small files under `memo_dir`, shared by all runs). Anything else is read and hashed.
    """

    def __init__(self, memo_dir: Path | None, cache_dir: Path | None) -> None:
        self.memo_dir = memo_dir
        self.cache_dir = cache_dir

    @classmethod
    def unremembered(cls) -> FileCatalog:
        """A catalog that knows nothing and keeps nothing: every file is read."""
        return cls(None, None)

    def _object(self, md5: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / "files" / "md5" / md5[:2] / md5[2:]

    def manifest(self, directory_md5_value: str | None) -> dict[str, str]:
        """The pointer's directory manifest from the cache: part name -> md5 (empty when unknown)."""
        if not directory_md5_value or self.cache_dir is None:
            return {}
        try:
            entries = json.loads(self._object(directory_md5_value).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(entry["relpath"]): str(entry["md5"]) for entry in entries}

    def facts(self, file: Path, recorded_md5: str | None) -> ContentFacts:
        size = file.stat().st_size
        if recorded_md5 and self._is_cached_object(file, recorded_md5):
            known = self._recall(recorded_md5)
            if known is not None:
                return ContentFacts(recorded_md5, size, *known)
        facts = file_facts(file)  # a new file, or one not linked to its cache object: read it
        known = self._recall(facts.md5)
        if known is None:
            known = (facts.rows, scan_ids(file)[0])
            self.remember(facts.md5, *known)
        return ContentFacts(facts.md5, facts.size, *known)

    def _recall(self, md5: str) -> tuple[int, int] | None:
        if self.memo_dir is None:
            return None
        try:
            known = json.loads((self.memo_dir / f"{md5}.json").read_text(encoding="utf-8"))
            return int(known["rows"]), int(known["largest_id"])
        except (OSError, ValueError, KeyError):
            return None

    def remember(self, md5: str, rows: int, largest_id: int) -> None:
        if self.memo_dir is None:
            return
        self.memo_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.memo_dir / f".{md5}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"rows": rows, "largest_id": largest_id}), encoding="utf-8")
        tmp.replace(self.memo_dir / f"{md5}.json")

    def _is_cached_object(self, part: Path, md5: str) -> bool:
        if self.cache_dir is None:
            return False
        try:
            return part.stat().st_ino == self._object(md5).stat().st_ino
        except OSError:
            return False

    def parts(self, directory: Path, pointer_md5: str | None) -> dict[str, ContentFacts]:
        recorded = self.manifest(pointer_md5)
        return {part.name: self.facts(part, recorded.get(part.name)) for part in part_files(directory)}


def data_facts(
    layout: Layout, path: Path, catalog: FileCatalog | None = None, pointer_md5: str | None = None
) -> FileFacts:
    """md5 (as the DVC pointer records it), size and record count of the dataset at `path`."""
    if layout is Layout.SINGLE_FILE:
        if catalog is None:
            return file_facts(path)
        known = catalog.facts(path, pointer_md5)
        return FileFacts(md5=known.md5, size=known.size, rows=known.rows)
    facts: dict[str, FileFacts | ContentFacts] = (
        dict(catalog.parts(path, pointer_md5))
        if catalog is not None
        else {part.name: file_facts(part) for part in part_files(path)}
    )
    return FileFacts(
        md5=directory_md5({name: f.md5 for name, f in facts.items()}),
        size=sum(f.size for f in facts.values()),
        rows=sum(f.rows for f in facts.values()),
    )


def check_header(layout: Layout, path: Path) -> None:
    for file in _files(layout, path):
        read_header(file)


def dataset_ids(
    layout: Layout,
    path: Path,
    wanted: Collection[int] = (),
    catalog: FileCatalog | None = None,
    pointer_md5: str | None = None,
) -> tuple[int, list[int]]:
    """The largest Employee ID in the dataset and which of `wanted` it already holds."""
    if catalog is not None and not wanted:
        if layout is Layout.SINGLE_FILE:
            return catalog.facts(path, pointer_md5).largest_id, []
        return max((facts.largest_id for facts in catalog.parts(path, pointer_md5).values()), default=0), []
    largest, taken = 0, set[int]()
    for file in _files(layout, path):
        file_largest, file_taken = scan_ids(file, wanted)
        largest = max(largest, file_largest)
        taken.update(file_taken)
    return largest, sorted(taken)


def append_change(
    layout: Layout,
    path: Path,
    records: pd.DataFrame,
    catalog: FileCatalog | None = None,
    pointer_md5: str | None = None,
    part_rows: int = DEFAULT_PART_ROWS,
) -> FileFacts:
    """Add records: appended to the file, or written as the next part file (then small parts merged)."""
    if layout is Layout.SINGLE_FILE:
        if catalog is None:
            return append_records(path, records)
        base = catalog.facts(path, pointer_md5)
        facts = append_records(path, records, base_rows=base.rows)
        catalog.remember(facts.md5, facts.rows, max(base.largest_id, int(records[ID_COLUMN].max())))
        return facts
    existing = part_files(path)
    _write_part(path / part_name(_part_number(existing[-1]) + 1), records)
    merger = catalog or FileCatalog.unremembered()
    while _merge_small_tail(path, merger, merger.manifest(pointer_md5), part_rows):
        pass
    return data_facts(layout, path, catalog, pointer_md5)


def _part_number(part: Path) -> int:
    match = PART_PATTERN.match(part.name)
    assert match is not None
    return int(match.group(1))


def _tier(rows: int) -> int:
    tier = 0
    while rows >= MERGE_FAN_IN:
        rows //= MERGE_FAN_IN
        tier += 1
    return tier


def _merge_small_tail(directory: Path, catalog: FileCatalog, recorded: dict[str, str], part_rows: int) -> bool:
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
    tmp = directory.parent / f".{directory.name}.{parts[0].name}.{os.getpid()}.merge.tmp"
    try:
        with tmp.open("wb") as out:
            _concatenate(parts, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(parts[0])
    finally:
        tmp.unlink(missing_ok=True)
    for part in parts[1:]:
        part.unlink()
    return True


def read_dataset(path: Path) -> pd.DataFrame:
    """The whole dataset as one DataFrame, from a file or a directory of parts."""
    files = part_files(path) if path.is_dir() else [path]
    return pd.concat((pd.read_csv(file) for file in files), ignore_index=True)


def write_dataset_csv(path: Path, target: Path) -> None:
    """The whole dataset as one CSV file (one header), streamed: memory stays flat."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            _concatenate(part_files(path) if path.is_dir() else [path], out)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _concatenate(files: list[Path], out: BinaryIO) -> None:
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


def split_into_parts(source: Path, directory: Path, part_rows: int = DEFAULT_PART_ROWS) -> int:
    """Write a single-file dataset as part files of `part_rows` records; returns how many."""
    if part_rows < 1:
        raise ValueError(f"part_rows must be at least 1, got {part_rows}")
    directory.mkdir(parents=True, exist_ok=False)
    count = 0
    for count, chunk in enumerate(_chunks(source, part_rows), start=1):
        _write_part(directory / part_name(count - 1), chunk)
    if count == 0:
        _write_part(directory / part_name(0), pd.read_csv(source, nrows=0))
        count = 1
    return count


def same_records(source: Path, directory: Path, part_rows: int) -> bool:
    """Whether the parts hold exactly the file's records, field by field, one part at a time."""
    parts = iter(part_files(directory))
    compared = 0
    for chunk in _chunks(source, part_rows):
        part = next(parts, None)
        if part is None or not chunk.reset_index(drop=True).equals(_read_text_fields(part)):
            return False
        compared += 1
    leftover = list(parts)
    return not leftover or (compared == 0 and len(leftover) == 1)  # an empty dataset: one header-only part


def _read_text_fields(file: Path) -> pd.DataFrame:
    return pd.read_csv(file, dtype=str, keep_default_na=False)


def _chunks(source: Path, rows: int) -> Iterator[pd.DataFrame]:
    yield from pd.read_csv(source, chunksize=rows, dtype=str, keep_default_na=False)


def _write_part(target: Path, records: pd.DataFrame) -> None:
    """Write beside the directory, then rename in: a crash never leaves a half part inside it."""
    tmp = target.parent.parent / f".{target.parent.name}.{target.name}.{os.getpid()}.tmp"
    try:
        tmp.write_bytes(records_to_csv_bytes(records, header=True))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _files(layout: Layout, path: Path) -> list[Path]:
    return [path] if layout is Layout.SINGLE_FILE else part_files(path)
