"""Each Employee ID once across a whole dataset, in memory bounded whatever its size."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from shared_tasks.validation.csv_blocks import Ids
from shared_tasks.validation.schema import MAX_REPORTED_PROBLEMS

SPILL_ENTRIES = 1 << 20
PARTITION_ENTRIES = 1 << 19
MAX_PARTITIONS = 256
LINE_BITS = 40  # a row's place: file index << LINE_BITS | line


class IdLedger:
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
        self._kept: list[tuple[Ids, Ids]] = []
        self._kept_count = 0
        self.count = 0
        self.rising = True
        self.largest = 0
        self.largest_place = 0
        self.ranges: dict[int, tuple[int, int]] = {}  # file index -> (smallest id, largest id)

    def __enter__(self) -> IdLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def add(self, ids: Ids, places: Ids) -> None:
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

    def places_of(self, wanted: Iterable[int]) -> dict[int, list[int]]:
        """The places of every row whose id is one of `wanted`, in place order: one pass over the ids
        kept and spilled (after `repeats`), memory the rows found. For ids that stand for a hash,
        whose rows are few unless their keys repeat."""
        targets = np.array(sorted(set(wanted)), dtype=np.int64)
        found: dict[int, list[int]] = {int(target): [] for target in targets}
        for ids, places in self._stored():
            hit = np.isin(ids, targets)
            for key_id, place in zip(ids[hit].tolist(), places[hit].tolist(), strict=True):
                found[key_id].append(place)
        return {key_id: sorted(places) for key_id, places in found.items()}

    def _stored(self) -> Iterator[tuple[Ids, Ids]]:
        yield from self._kept
        if self._folder is not None and (self._folder / "ids").exists():
            with (self._folder / "ids").open("rb") as ids_file, (self._folder / "places").open("rb") as places_file:
                while len(ids := np.fromfile(ids_file, dtype=np.int64, count=PARTITION_ENTRIES)):
                    yield ids, np.fromfile(places_file, dtype=np.int64, count=len(ids))

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


def _chunks(handle: IO[bytes], count: int) -> Iterator[Ids]:
    while len(chunk := np.fromfile(handle, dtype=np.int64, count=count)):
        yield chunk


def _repeats(chunks: Iterable[Ids]) -> tuple[int, list[tuple[int, int, int]]]:
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
