"""The dataset on disk in either layout: one CSV file, or a directory of CSV part files.

A single file is the original system's layout: every version re-uploads the whole file. In the
partitioned layout a run writes its records into a new part file, so DVC uploads only that part
and a version costs O(change) bytes. Both layouts answer the same questions (facts, header, ids,
append), so the steps, history and verify never ask which one they hold: `for_layout` is the one
place that does.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shared_tasks.files import atomic_file, write_atomically
from shared_tasks.project.records import WrittenFile
from shared_tasks.project.settings import Layout
from shared_tasks.storage.catalog import FileCatalog
from shared_tasks.storage.dataset import FileFacts, append_records, file_facts, records_to_csv_bytes, scan_ids
from shared_tasks.storage.keyed import KeyedChange, MergeCounts
from shared_tasks.storage.parts import concatenate, merge_small_tail, part_files, part_name, part_number, write_part
from shared_tasks.storage.pointer import directory_md5
from shared_tasks.validation.schema import DatasetRules, employee_rules
from shared_tasks.validation.validate import read_header

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Appended:
    """The dataset after an append, and the content of the file that now holds the records."""

    facts: FileFacts
    holder_md5: str


@dataclass(frozen=True)
class Rewritten:
    """The dataset after a merge or a replace: its facts, what the merge did, and the md5s of the files written."""

    facts: FileFacts
    counts: MergeCounts
    written_md5s: tuple[str, ...]


class DatasetLayout(Protocol):
    """The dataset at `path`, known through `catalog`, as its DVC pointer (`pointer_md5`) records it."""

    @property
    def path(self) -> Path: ...

    def files(self) -> list[Path]:
        """The CSV files in reading order."""
        ...

    def facts(self) -> FileFacts:
        """md5 (as the DVC pointer records it), size and record count."""
        ...

    def check_header(self) -> None:
        """Raise DataValidationError when a file's header is not the schema's."""
        ...

    def largest_id(self) -> int: ...

    def ids_taken(self, wanted: Collection[int]) -> list[int]:
        """Which of `wanted` the dataset already holds."""
        ...

    def append(self, records: pd.DataFrame, part_rows: int) -> Appended:
        """Add the records without writing any existing file in place."""
        ...

    def merge(self, change: KeyedChange, part_rows: int) -> Rewritten:
        """Update and delete the change's keys where they are, insert the rest; no file written in place."""
        ...

    def replace(self, records: pd.DataFrame, part_rows: int) -> Rewritten:
        """The records become the whole dataset."""
        ...

    def written(self, md5: str) -> WrittenFile | None:
        """What identifies the written data for DVC's state database (a single file only)."""
        ...


@dataclass(frozen=True)
class _Layout:
    path: Path
    catalog: FileCatalog = field(default_factory=FileCatalog.unremembered)
    pointer_md5: str | None = None
    rules: DatasetRules = field(default_factory=employee_rules)

    @property
    def key(self) -> str:
        """The generated key's column: the ids an append assigns, and those a change may not take."""
        if self.rules.generated_key is None:
            raise ValueError(f"{self.rules.table.source} has no generated key")
        return self.rules.generated_key

    def check_header(self) -> None:
        for file in self.files():
            read_header(file, self.rules)

    def ids_taken(self, wanted: Collection[int]) -> list[int]:
        taken: set[int] = set()
        for file in self.files():
            taken.update(scan_ids(file, wanted, self.key)[1])
        return sorted(taken)

    def _largest_of(self, records: pd.DataFrame) -> dict[str, int]:
        """The catalog fact an append leaves: the largest id it holds (nothing with no generated key)."""
        if self.rules.generated_key is None:
            return {}
        return {"largest_id": int(records[self.key].max())}

    def files(self) -> list[Path]:
        raise NotImplementedError


class SingleFile(_Layout):
    """One CSV file, appended to by writing a new file and renaming it over the old one."""

    def files(self) -> list[Path]:
        return [self.path]

    def facts(self) -> FileFacts:
        return self.catalog.facts(self.path, self.pointer_md5)

    def largest_id(self) -> int:
        return self.catalog.largest_id(self.path, self.facts().md5, self.key)

    def append(self, records: pd.DataFrame, part_rows: int) -> Appended:
        base = self.facts()
        largest = self._largest_of(records)
        if largest:
            largest["largest_id"] = max(self.catalog.largest_id(self.path, base.md5, self.key), largest["largest_id"])
        facts = append_records(self.path, records, base_rows=base.rows)
        self.catalog.remember(facts.md5, rows=facts.rows, **largest)
        return Appended(facts, facts.md5)

    def merge(self, change: KeyedChange, part_rows: int) -> Rewritten:
        counts = MergeCounts()
        with atomic_file(self.path, fsync=True) as out:
            change.merge_file(self.path, out, counts)
            inserts = change.insert_frame()
            out.write(records_to_csv_bytes(inserts))
        counts.inserted = len(inserts)
        facts = self._remembered(file_facts(self.path))
        return Rewritten(facts, counts, (facts.md5,))

    def replace(self, records: pd.DataFrame, part_rows: int) -> Rewritten:
        write_atomically(self.path, records_to_csv_bytes(records, header=True), fsync=True)
        facts = self._remembered(file_facts(self.path))
        return Rewritten(facts, MergeCounts(inserted=len(records)), (facts.md5,))

    def _remembered(self, facts: FileFacts) -> FileFacts:
        self.catalog.remember(facts.md5, rows=facts.rows)
        return facts

    def written(self, md5: str) -> WrittenFile | None:
        return WrittenFile.of(self.path, md5)


class Partitioned(_Layout):
    """A directory of part files; a change is a new part, and small parts merge by size tier."""

    def files(self) -> list[Path]:
        return part_files(self.path)

    def part_facts(self) -> dict[str, FileFacts]:
        recorded = self.catalog.manifest(self.pointer_md5)
        return {part.name: self.catalog.facts(part, recorded.get(part.name)) for part in self.files()}

    def facts(self) -> FileFacts:
        return _directory_facts(self.part_facts())

    def largest_id(self) -> int:
        parts = self.part_facts()
        key = self.key
        return max(
            (self.catalog.largest_id(self.path / name, facts.md5, key) for name, facts in parts.items()), default=0
        )

    def append(self, records: pd.DataFrame, part_rows: int) -> Appended:
        new_part = part_name(part_number(self.files()[-1]) + 1)
        write_part(self.path / new_part, records)
        recorded = self.catalog.manifest(self.pointer_md5)
        while merge_small_tail(self.path, self.catalog, recorded, part_rows):
            pass
        parts = self.part_facts()
        if new_part in parts:  # not merged away: its largest id is the change's
            self.catalog.remember(parts[new_part].md5, **self._largest_of(records))
        return Appended(_directory_facts(parts), parts[max(parts)].md5)

    def merge(self, change: KeyedChange, part_rows: int) -> Rewritten:
        """Rewrite only the parts holding a key of the change (each read once for its key columns, the
        touched ones again to rewrite them); the inserts become a new part, as an append's records do."""
        counts = MergeCounts()
        touched = [part for part in self.files() if change.touches(part)]
        emptied: list[Path] = []
        for part in touched:
            with atomic_file(part, fsync=True, temp_dir=self.path.parent) as out:
                kept = change.merge_file(part, out, counts)
            if kept == 0:
                emptied.append(part)
        inserts = change.insert_frame()
        counts.inserted = len(inserts)
        keep_one = len(emptied) == len(self.files()) and inserts.empty  # the directory keeps a part, if empty
        for part in emptied[:-1] if keep_one else emptied:
            part.unlink()  # a part whose records were all deleted
        written = [part for part in touched if part.exists()]
        if not inserts.empty:
            self.append(inserts, part_rows)
            written.append(self.files()[-1])
        parts = self.part_facts()
        return Rewritten(_directory_facts(parts), counts, tuple(parts[p.name].md5 for p in written if p.name in parts))

    def replace(self, records: pd.DataFrame, part_rows: int) -> Rewritten:
        """New parts of at most `part_rows` records each, numbered after the old ones, which then go."""
        old = self.files()
        number = part_number(old[-1]) + 1
        new: list[Path] = []
        for start in range(0, max(len(records), 1), max(part_rows, 1)):
            new.append(self.path / part_name(number + len(new)))
            write_part(new[-1], records.iloc[start : start + part_rows])
        for part in old:
            part.unlink()
        parts = self.part_facts()
        return Rewritten(
            _directory_facts(parts), MergeCounts(inserted=len(records)), tuple(parts[p.name].md5 for p in new)
        )

    def written(self, md5: str) -> WrittenFile | None:
        return None


def _directory_facts(parts: dict[str, FileFacts]) -> FileFacts:
    return FileFacts(
        md5=directory_md5({name: facts.md5 for name, facts in parts.items()}),
        size=sum(facts.size for facts in parts.values()),
        rows=sum(facts.rows for facts in parts.values()),
    )


def for_layout(
    layout: Layout,
    path: Path,
    catalog: FileCatalog | None = None,
    pointer_md5: str | None = None,
    rules: DatasetRules | None = None,
) -> DatasetLayout:
    kind = SingleFile if layout is Layout.SINGLE_FILE else Partitioned
    return kind(path, catalog or FileCatalog.unremembered(), pointer_md5, rules or employee_rules())


def found_at(path: Path) -> DatasetLayout:
    """The dataset at `path` in whichever layout it is stored."""
    return for_layout(Layout.PARTITIONED if path.is_dir() else Layout.SINGLE_FILE, path)


def read_dataset(path: Path) -> pd.DataFrame:
    """The whole dataset as one DataFrame, from a file or a directory of parts."""
    import pandas as pd

    return pd.concat((pd.read_csv(file) for file in found_at(path).files()), ignore_index=True)


def write_dataset_csv(path: Path, target: Path) -> None:
    """The whole dataset as one CSV file (one header), streamed: memory stays flat."""
    with atomic_file(target) as out:
        concatenate(found_at(path).files(), out)
