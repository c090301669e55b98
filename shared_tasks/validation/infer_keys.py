"""Which column, or pair of columns, holds each value once in a CSV read in batches: the key a
schema is guessed to have (shared_tasks.validation.infer).

Each candidate's values are hashed into an IdLedger (bounded memory, spilled to disk past a
bound). Two different values share a hash with a tiny probability, which can only make a unique
candidate look repeated, never the reverse: a guessed key is unique.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from shared_tasks.validation.id_ledger import IdLedger

KEY_PAIR_COLUMNS = 10  # pairs are tried among the first this many key-able columns
PAIRS_SETTLE_ROWS = 10_000
# A unique column named so is the key before any pair; another unique column only when no pair is.
IDENTIFIER_NAME = re.compile(r"(?:^|[^a-z])(?:id|key|code|uuid)(?:$|[^a-z])", re.IGNORECASE)


class KeyLedgers:
    """Each candidate key's hashes (a column, or a pair of columns), checked for repeats in bounded
    memory. A candidate with a repeat inside a batch is dropped at once (most columns are, in their
    first batch), so only those unique so far keep a ledger; past PAIRS_SETTLE_ROWS rows, a pair
    with a column still unique alone is dropped (that column is the key; the pair adds nothing)."""

    def __init__(self, spill_dir: Path | None) -> None:
        self.spill_dir = spill_dir
        self.singles: dict[str, IdLedger] = {}
        self.pairs: dict[tuple[str, str], IdLedger] = {}
        self.unfit: set[str] = set()  # a value missing, or a type no key is guessed of
        self.repeated: set[str | tuple[str, str]] = set()
        self.rows = 0

    def __enter__(self) -> KeyLedgers:
        return self

    def __exit__(self, *exc: object) -> None:
        for ledger in [*self.singles.values(), *self.pairs.values()]:
            ledger.__exit__(*exc)

    def observe(self, pl: Any, batch: Any, columns: list[str], unfit: set[str], places: Any) -> None:
        """One batch of `columns` (in the file's order); `unfit`: those no key is guessed of so far
        (a value missing, or numbers, datetimes or booleans): they stay out for good."""
        self.unfit |= unfit
        keyable = [name for name in columns if name not in self.unfit]
        singles = [name for name in keyable if name not in self.repeated]
        pairs = [pair for pair in itertools.combinations(keyable[:KEY_PAIR_COLUMNS], 2) if pair not in self.repeated]
        if self.rows:  # a pair starts in the first batch or never: it must see every row
            pairs = [pair for pair in pairs if pair in self.pairs]
        self.rows += batch.height
        candidates: list[str | tuple[str, str]] = [*singles, *pairs]
        if not candidates:
            return
        counted = batch.select(
            [pl.struct(_columns(candidate)).n_unique().alias(f"c{i}") for i, candidate in enumerate(candidates)]
        ).row(0)
        for candidate, distinct in zip(candidates, counted, strict=True):
            if distinct < batch.height:
                self._drop(candidate)
                continue
            hashes = batch.select(_columns(candidate)).hash_rows().reinterpret(signed=True).to_numpy()
            ledgers: dict[Any, IdLedger] = self.singles if isinstance(candidate, str) else self.pairs
            ledgers.setdefault(candidate, IdLedger(self.spill_dir)).add(hashes, places)
        if self.rows >= PAIRS_SETTLE_ROWS:  # a column unique over this many rows is the key, not a pair with it
            for pair in [pair for pair in self.pairs if set(pair) & (set(singles) - self.repeated)]:
                self._drop(pair)

    def _drop(self, candidate: str | tuple[str, str]) -> None:
        self.repeated.add(candidate)
        ledger = self.singles.pop(candidate, None) if isinstance(candidate, str) else self.pairs.pop(candidate, None)
        if ledger is not None:
            ledger.__exit__(None, None, None)

    def key(self, columns: list[str], rows: int) -> tuple[list[str], str]:
        if rows < 2:
            return [], "too few rows to tell a key by"
        unique = [
            name
            for name in columns
            if name in self.singles and name not in self.unfit and not self.singles[name].repeats()[0]
        ]
        named_like_an_id = [name for name in unique if IDENTIFIER_NAME.search(name)]
        if named_like_an_id:
            name = named_like_an_id[0]
            return [name], f"each {name!r} once in {rows:,} rows, and named like an identifier"
        for (first, second), ledger in self.pairs.items():
            if first in unique or second in unique:
                continue  # unique by that column alone
            if first not in self.unfit and second not in self.unfit and not ledger.repeats()[0]:
                return [first, second], f"each ({first!r}, {second!r}) pair once in {rows:,} rows"
        if unique:
            return [unique[0]], f"each {unique[0]!r} once in {rows:,} rows"
        return [], "no column, nor pair of columns, holds each value once"


def _columns(candidate: str | tuple[str, str]) -> list[str]:
    return [candidate] if isinstance(candidate, str) else list(candidate)
