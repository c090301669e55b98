"""Each unique key once across a whole dataset, and room left for the ids the pipeline assigns:
read from the keys' IdLedgers after the streaming scan (dataset_check) has filled them.

Each key's values go to an IdLedger (bounded memory, spilled to disk), as int64s. An integer,
number, boolean, date or datetime key is its exact logical value; a text key or one of several
columns is a 64-bit hash of its logical values (csv_blocks.key_ids). Two different keys share a
hash with probability about n**2 / 2**65 over n rows (1 in 37 million for a million rows). A repeat
listed is confirmed on the rows' values, read again (a second pass over the files that hold them,
made only when a key other than an integer repeats); a hash shared by different keys is then
resolved by reading each row of it. Past the MAX_REPORTED_PROBLEMS repeats listed, the count of
repeats is the hashes': a valid dataset is refused only if more than that many pairs of its keys
collide.

A row's place is its file's index << LINE_BITS | its line; problems come back keyed by place.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence
from pathlib import Path

from shared_tasks.validation.field_values import Logical
from shared_tasks.validation.id_ledger import LINE_BITS, IdLedger
from shared_tasks.validation.row_rules import UniqueKey
from shared_tasks.validation.schema import CSV_ENCODING, MAX_REPORTED_PROBLEMS, DatasetRules, Problem


def repeated_key_problems(
    keys: Sequence[UniqueKey], ledgers: Sequence[IdLedger], files: Sequence[Path], names: Sequence[str | None]
) -> tuple[list[tuple[int, Problem]], int]:
    """Repeated keys as problems by place, in place order, and the count of all repeats; a hashed
    key's repeats confirmed on the rows' values."""
    found: list[tuple[int, Problem]] = []
    total = 0
    for key, ledger in zip(keys, ledgers, strict=True):
        count, repeats = ledger.repeats()
        if not count:
            continue
        if key.integer:
            listed = [(place, first_place, str(key_id)) for place, key_id, first_place in repeats]
        else:
            count, listed = _confirmed(key, ledger, files, count, repeats)
        for place, first_place, shown in listed:
            line, name = _where(place, names)
            first_line, first_name = _where(first_place, names)
            of = f" of {first_name}" if first_name != name else ""
            message = f"duplicate {key.label} (first seen on line {first_line}{of})"
            found.append((place, Problem(message, line=line, column=key.column, value=shown, file=name)))
        total += count
    return sorted(found, key=lambda item: item[0]), total


def room_problem(
    ledger: IdLedger, rules: DatasetRules, names: Sequence[str | None], records: int
) -> tuple[int, Problem] | None:
    """The problem of a largest generated key that leaves the pipeline no room, by place (None when
    it leaves room)."""
    if ledger.largest <= rules.free_key_max + records:
        return None
    line, name = _where(ledger.largest_place, names)
    message = (
        f"leaves no room for the ids the pipeline assigns: above {rules.free_key_max} ids may only follow one "
        f"another, so the largest may be at most {rules.free_key_max} + the {records} record(s)"
    )
    return ledger.largest_place, Problem(message, line, rules.generated_key, str(ledger.largest), name)


def _where(place: int, names: Sequence[str | None]) -> tuple[int, str | None]:
    """A place's line, and its file's name (None when the dataset is one file)."""
    return place & ((1 << LINE_BITS) - 1), names[place >> LINE_BITS]


def _confirmed(
    key: UniqueKey, ledger: IdLedger, files: Sequence[Path], count: int, repeats: list[tuple[int, int, int]]
) -> tuple[int, list[tuple[int, int, str]]]:
    """The repeats listed, each shown as written, and their count, with the rows read again.

    A hashed key's repeat whose values differ from the first row of its hash is a collision: every
    row of that hash is then read and compared by value (groups of rows sharing a hash are small
    unless their keys repeat), and the count corrected by what that finds.
    """
    rows = _rows_at(files, {place for repeat in repeats for place in (repeat[0], repeat[2])})
    widest = max(column.index for column in key.columns)

    def value(place: int, rows: dict[int, list[str]]) -> tuple[Logical, ...] | None:
        fields = rows.get(place)  # None if the file changed since it was read: then no repeat is claimed
        return key.value(fields) if fields is not None and len(fields) > widest else None

    colliding = {
        key_id
        for place, key_id, first in repeats
        if (found := value(place, rows)) is None or found != value(first, rows)
    }
    listed = [(place, first, key.shown(rows[place])) for place, key_id, first in repeats if key_id not in colliding]
    if colliding:
        groups = ledger.places_of(colliding)
        group_rows = _rows_at(files, {place for places in groups.values() for place in places})
        for places in groups.values():
            first_of: dict[tuple[Logical, ...], int] = {}
            count -= len(places) - 1
            for place in places:
                found = value(place, group_rows)
                if found is None:
                    continue
                if found in first_of:
                    listed.append((place, first_of[found], key.shown(group_rows[place])))
                    count += 1
                else:
                    first_of[found] = place
    return count, sorted(listed)[:MAX_REPORTED_PROBLEMS]


def _rows_at(files: Sequence[Path], places: set[int]) -> dict[int, list[str]]:
    """The fields of the records at `places` (file index << LINE_BITS | line), read again: a second
    pass over the files that hold them, only as far as the last one."""
    rows: dict[int, list[str]] = {}
    for index, path in enumerate(files):
        wanted = {place & ((1 << LINE_BITS) - 1) for place in places if place >> LINE_BITS == index}
        if not wanted:
            continue
        last = max(wanted)
        # Rows found valid read again as they were; bytes past them need not decode or parse.
        with path.open(encoding=CSV_ENCODING, errors="replace", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            with contextlib.suppress(csv.Error):
                for fields in reader:
                    if reader.line_num in wanted:
                        rows[(index << LINE_BITS) + reader.line_num] = fields
                    if reader.line_num >= last:
                        break
    return rows
