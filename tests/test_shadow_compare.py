"""Two outputs of a step compared (shared_tasks.run.shadow_compare): every kind of difference named.

A generated output of each column type (a compound key of text and date, numbers, integers,
booleans, optional text) is changed one way at a time, in every column where that way applies:
the comparison must find exactly that change, and the summary must name it with an example.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

import polars as pl
import pytest

from shared_tasks.run.shadow_compare import NON_DETERMINISTIC, canonical_md5, compare_outputs

KEY = ["station", "day"]
VALUE_COLUMNS = ["celsius", "count", "checked", "note"]


def airflows_output(rows: int = 40, seed: int = 3) -> pl.DataFrame:
    rng = random.Random(seed)
    stations = ["north", "south", "east", "west"]
    return pl.DataFrame(
        {
            "station": [stations[i % 4] for i in range(rows)],
            "day": [datetime.date(2026, 1, 1) + datetime.timedelta(days=i // 4) for i in range(rows)],
            "celsius": [round(rng.uniform(-20, 35), 1) for _ in range(rows)],
            "count": [rng.randint(0, 500) for _ in range(rows)],
            "checked": [rng.random() < 0.5 for _ in range(rows)],
            "note": [None if i % 7 == 3 else f"n{i}" for i in range(rows)],
        }
    )


def other_value(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, float):
        return value + 0.1
    if isinstance(value, int):
        return value + 1
    return "changed" if value is not None else "now set"


def test_the_same_rows_in_another_order_are_equal() -> None:
    expected = airflows_output()
    shuffled = expected.sample(fraction=1.0, shuffle=True, seed=9)
    assert not shuffled.equals(expected), "the order did change"
    compared = compare_outputs(expected, shuffled, KEY)
    assert compared.matched and compared.expected_md5 == compared.actual_md5
    assert compared.summary().startswith(f"equal: {expected.height} rows")


@pytest.mark.parametrize("column", VALUE_COLUMNS)
@pytest.mark.parametrize("row", [0, 3, 39])
def test_a_changed_cell_is_named_by_key_column_and_both_values(column: str, row: int) -> None:
    expected = airflows_output()
    before = expected[row, column]
    actual = expected.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(other_value(before))).otherwise(pl.col(column)).alias(column)
    )
    compared = compare_outputs(expected, actual, KEY)
    assert not compared.matched
    assert (compared.changed, compared.only_expected, compared.only_actual) == (1, 0, 0)
    assert compared.changed_columns == {column: 1}
    (example,) = compared.examples_changed
    assert example.key == {name: expected[row, name] for name in KEY}
    assert example.columns == {column: (before, actual[row, column])}
    assert f"in columns {column} (1)" in compared.summary() and repr(before) in compared.summary()


@pytest.mark.parametrize("row", [0, 17, 39])
def test_a_row_only_in_one_output_is_counted_on_its_side_with_its_key(row: int) -> None:
    expected = airflows_output()
    missing = expected.filter(pl.int_range(pl.len()) != row)
    key = {name: expected[row, name] for name in KEY}
    fewer = compare_outputs(expected, missing, KEY)
    assert (fewer.only_expected, fewer.only_actual, fewer.changed) == (1, 0, 0)
    assert fewer.examples_only_expected == [key] and "only in Airflow's" in fewer.summary()
    more = compare_outputs(missing, expected, KEY)
    assert (more.only_expected, more.only_actual) == (0, 1) and more.examples_only_actual == [key]


def test_without_a_key_rows_are_compared_as_a_multiset() -> None:
    expected = airflows_output()
    doubled = pl.concat([expected, expected.head(2)])
    compared = compare_outputs(expected, doubled)
    assert (compared.only_expected, compared.only_actual, compared.matched_on) == (0, 2, [])
    assert compared.examples_only_actual == expected.head(2).to_dicts()
    changed = expected.with_columns(pl.col("count") + (pl.int_range(pl.len()) == 5).cast(pl.Int64))
    both_ways = compare_outputs(expected, changed)
    assert (both_ways.only_expected, both_ways.only_actual) == (1, 1), "a changed row is one out and one in"


def test_a_key_that_is_not_unique_in_an_output_falls_back_to_whole_rows() -> None:
    expected = airflows_output()
    repeated = pl.concat([expected, expected.head(1).with_columns(pl.col("count") + 1)])
    compared = compare_outputs(expected, repeated, KEY)
    assert compared.matched_on == [] and (compared.only_expected, compared.only_actual) == (0, 1)


SCHEMA_CHANGES: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], str]] = {
    "a column dropped": (lambda frame: frame.drop("note"), "columns only in Airflow's: note"),
    "a column added": (lambda frame: frame.with_columns(pl.lit(1).alias("extra")), "columns only in Dagster's: extra"),
    "a type changed": (
        lambda frame: frame.with_columns(pl.col("count").cast(pl.Float64)),
        "column 'count': Int64 in Airflow's, Float64 in Dagster's",
    ),
    "a time zone on a date": (
        lambda frame: frame.with_columns(pl.col("day").cast(pl.Datetime("us", "UTC"))),
        "column 'day': Date in Airflow's, Datetime(time_unit='us', time_zone='UTC') in Dagster's",
    ),
}


@pytest.mark.parametrize("change", SCHEMA_CHANGES, ids=list(SCHEMA_CHANGES))
@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "non-deterministic"])
def test_a_schema_difference_is_named_deterministic_or_not(change: str, deterministic: bool) -> None:
    expected = airflows_output()
    make, said = SCHEMA_CHANGES[change]
    compared = compare_outputs(expected, make(expected), KEY, deterministic=deterministic)
    assert not compared.matched and said in compared.summary()
    assert compared.summary().startswith(NON_DETERMINISTIC) is (not deterministic)


def test_a_non_deterministic_step_is_compared_on_schema_and_row_count_only_and_says_so() -> None:
    expected = airflows_output(seed=1)
    other_draw = airflows_output(seed=2)
    assert canonical_md5(expected) != canonical_md5(other_draw)
    compared = compare_outputs(expected, other_draw, KEY, deterministic=False)
    assert compared.matched and compared.summary() == f"{NON_DETERMINISTIC}: equal (40 rows)"
    shorter = compare_outputs(expected, other_draw.head(39), KEY, deterministic=False)
    assert not shorter.matched and "rows: 40 in Airflow's, 39 in Dagster's" in shorter.summary()
    assert shorter.changed == 0, "no row is matched for a step that draws new rows"


def test_the_digest_covers_columns_types_and_every_row() -> None:
    frame = airflows_output()
    digests = {
        canonical_md5(frame),
        canonical_md5(frame.rename({"note": "remark"})),
        canonical_md5(frame.with_columns(pl.col("count").cast(pl.Int32))),
        canonical_md5(frame.head(39)),
        canonical_md5(pl.concat([frame, frame.head(1)])),
        canonical_md5(frame.head(0)),
    }
    assert len(digests) == 6
    assert canonical_md5(frame) == canonical_md5(frame.reverse())
