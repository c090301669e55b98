"""Deterministic synthetic records with the dataset's schema.

A run's records are seeded by its run id, so a retried modify step produces the very same
change; the seed dataset (for local and test origins) is seeded by a number.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from shared_tasks.files import atomic_text_file
from shared_tasks.validation.schema import COLUMN_NAMES, COLUMNS, ID_COLUMN, CategoryColumn, IntColumn

SEED_DATASET_ROWS = 74_500
TEST_SHARE = 0.2
SEED_CHUNK_ROWS = 500_000


def seed_for_run(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:8], "big")


def generate_records(count: int, seed: int, first_id: int = 1) -> pd.DataFrame:
    """`count` records with ids first_id.. and every value inside its column's domain."""
    if count < 0:
        raise ValueError(f"record count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for column in COLUMNS:
        if column.name == ID_COLUMN:
            data[column.name] = np.arange(first_id, first_id + count, dtype=np.int64)
        elif isinstance(column, IntColumn):
            data[column.name] = rng.integers(column.typical_min, column.typical_max + 1, size=count, dtype=np.int64)
        elif column.name == "dataset_type":
            data[column.name] = np.where(rng.random(count) < TEST_SHARE, "test", "train")
        else:
            assert isinstance(column, CategoryColumn)
            data[column.name] = rng.choice(np.array(column.values, dtype=object), size=count)
    # Nobody has been at the company longer than they have been of working age.
    data["Years at Company"] = np.minimum(data["Years at Company"], np.maximum(data["Age"] - 17, 1))
    return pd.DataFrame(data, columns=list(COLUMN_NAMES))


def generate_run_records(run_id: str, count: int) -> pd.DataFrame:
    """The change a run makes: same run id, same records (ids are assigned when applied)."""
    return generate_records(count, seed_for_run(run_id), first_id=1)


def write_seed_dataset(path: Path, rows: int = SEED_DATASET_ROWS, seed: int = 0) -> None:
    """Written in chunks, so a 1 GB seed for the benchmarks needs no more memory than a small one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_text_file(path, newline="") as handle:
        for index, first in enumerate(range(0, max(rows, 1), SEED_CHUNK_ROWS)):
            count = min(SEED_CHUNK_ROWS, rows - first)
            frame = generate_records(count, seed if index == 0 else seed_for_run(f"{seed}/{index}"), first_id=first + 1)
            frame.to_csv(handle, index=False, header=index == 0, lineterminator="\n")
