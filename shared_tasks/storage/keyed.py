"""Merging keyed records into CSV files: rows whose primary key the change holds are updated in
place or deleted, every other row is kept as it was, and keys new to the dataset are inserted.

Keys compare by their logical value under the schema (`7` and `07` are one integer, `1.50` and
`1.5` one number), so a change written by pandas matches rows written by anything else: each
distinct raw value of a key column is read once by the field's own reader, and a row's key becomes
one canonical string that polars matches against the change's in a vectorised `is_in`. Files are
read as strings in batches, so the values of the rows a merge keeps are written back as they were
(an empty quoted value stays quoted) and memory stays bounded by the batch and the change.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from shared_tasks.validation.table_fields import Field

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

MERGE_BATCH_ROWS = 100_000
KEY_SEPARATOR = "\x1f"  # between a key's components in its canonical string; no repr holds it unescaped
KEY_COLUMN = "__merge_key__"


@dataclass
class MergeCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass
class KeyedChange:
    """A merge's records by canonical key: the row to write (strings, in the schema's order), or None to delete."""

    key_fields: tuple[Field, ...]
    names: tuple[str, ...]
    rows: dict[str, list[str | None] | None]
    found: set[str] = field(default_factory=set)

    @classmethod
    def of(
        cls, key_fields: Sequence[Field], names: Sequence[str], upserts: pd.DataFrame, deletes: pd.DataFrame
    ) -> KeyedChange:
        change = cls(tuple(key_fields), tuple(names), {})
        positions = [list(names).index(f.name) for f in key_fields]
        for values in _string_rows(upserts, names):
            change.rows[change.key_of([values[p] for p in positions])] = values
        for values in _string_rows(deletes, [f.name for f in key_fields]):
            change.rows[change.key_of(values)] = None
        return change

    def key_of(self, raw: Sequence[str | None]) -> str:
        return KEY_SEPARATOR.join(_canonical(f, value) for f, value in zip(self.key_fields, raw, strict=True))

    def keyed(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The batch with its rows' canonical keys in KEY_COLUMN."""
        import polars as pl

        parts = []
        for key_field in self.key_fields:
            distinct = batch.get_column(key_field.name).unique().to_list()
            canonical = [_canonical(key_field, value) for value in distinct]
            parts.append(pl.col(key_field.name).replace_strict(distinct, canonical, return_dtype=pl.String))
        return batch.with_columns(pl.concat_str(parts, separator=KEY_SEPARATOR).alias(KEY_COLUMN))

    @functools.cached_property
    def _wanted(self) -> pl.Expr:
        """The change's canonical keys, as the list `is_in` takes (made once for every file)."""
        import polars as pl

        return pl.lit(pl.Series(list(self.rows), dtype=pl.String).implode())

    def touches(self, file: Path) -> bool:
        """Whether the file holds a key of the change (reading only the key columns)."""
        import polars as pl

        held = pl.col(KEY_COLUMN).is_in(self._wanted).any()
        return any(self.keyed(batch).select(held).item() for batch in _batches(file, [f.name for f in self.key_fields]))

    def merge_file(self, source: Path, out: BinaryIO, counts: MergeCounts) -> int:
        """Write `source` with the change's keys updated or deleted; returns the records written."""
        import polars as pl

        written = 0
        with source.open("rb") as reader:
            out.write(reader.readline())  # the header, as it is
        for raw in _batches(source, None):
            batch = self.keyed(raw)
            hits = batch.with_row_index("__row__").filter(pl.col(KEY_COLUMN).is_in(self._wanted))
            if hits.height:
                raw = self._applied(raw, hits, counts)
            raw.write_csv(out, include_header=False, line_terminator="\n")
            written += raw.height
        return written

    def _applied(self, batch: pl.DataFrame, hits: pl.DataFrame, counts: MergeCounts) -> pl.DataFrame:
        import polars as pl

        updated: list[int] = []
        rows: list[list[str | None]] = []
        dropped: list[int] = []
        positions, keys = hits.get_column("__row__").to_list(), hits.get_column(KEY_COLUMN).to_list()
        for position, key in zip(positions, keys, strict=True):
            self.found.add(key)
            row = self.rows[key]
            if row is None:
                dropped.append(position)
            else:
                updated.append(position)
                rows.append(row)
        if updated:
            columns = []
            for index, name in enumerate(batch.columns):
                column = batch.get_column(name).clone()
                column.scatter(updated, [row[index] for row in rows])
                columns.append(column)
            batch = pl.DataFrame(columns)
        if dropped:
            batch = batch.with_row_index("__row__").filter(~pl.col("__row__").is_in(dropped)).drop("__row__")
        counts.updated += len(updated)
        counts.deleted += len(dropped)
        return batch

    def insert_frame(self) -> pd.DataFrame:
        """The rows whose keys no file held (call after every file is merged)."""
        import pandas as pd

        inserts = [row for key, row in self.rows.items() if row is not None and key not in self.found]
        return pd.DataFrame(inserts, columns=list(self.names), dtype=object)


def _canonical(key_field: Field, raw: str | None) -> str:
    return repr(key_field.logical("" if raw is None else raw))


def _string_rows(frame: pd.DataFrame, names: Sequence[str]) -> Iterator[list[str | None]]:
    """The frame's rows as the CSV strings the dataset would hold (None: an empty field)."""
    import io

    import polars as pl

    if frame.empty:
        return iter(())
    text = frame[list(names)].to_csv(index=False, lineterminator="\n")
    strings = pl.read_csv(io.StringIO(text), infer_schema=False)
    return iter([list(row) for row in strings.iter_rows()])


def _batches(file: Path, columns: list[str] | None) -> Iterator[pl.DataFrame]:
    import polars as pl

    scan = pl.scan_csv(file, infer_schema=False)
    if columns is not None:
        scan = scan.select(columns)
    yield from scan.collect_batches(chunk_size=MERGE_BATCH_ROWS)
