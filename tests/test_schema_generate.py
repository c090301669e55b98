"""The schema is data in one place; generated records are deterministic and in-domain."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_tasks.project.records import MAX_RECORDS_PER_RUN
from shared_tasks.run.generate import (
    SEED_DATASET_ROWS,
    generate_records,
    generate_run_records,
    seed_for_run,
    write_seed_dataset,
)
from shared_tasks.validation.schema import (
    COLUMN_NAMES,
    COLUMNS,
    COLUMNS_BY_NAME,
    FREE_ID_MAX,
    CategoryColumn,
    IntColumn,
    Problem,
)
from shared_tasks.validation.validate import validate_dataset_file, validate_records


def test_schema_has_the_25_columns_of_the_dataset_in_order() -> None:
    assert len(COLUMN_NAMES) == 25
    assert COLUMN_NAMES[0] == "Employee ID"
    assert COLUMN_NAMES[-2:] == ("Attrition", "dataset_type")
    assert len(set(COLUMN_NAMES)) == 25


def test_schema_value_sets_use_the_datasets_own_spelling() -> None:
    education = COLUMNS_BY_NAME["Education Level"]
    assert isinstance(education, CategoryColumn)
    assert "Bachelor\u2019s Degree" in education.values
    assert "Bachelor" not in education.values
    performance = COLUMNS_BY_NAME["Performance Rating"]
    assert isinstance(performance, CategoryColumn)
    assert performance.values == ("Low", "Below Average", "Average", "High")


def test_an_int_column_with_typical_range_outside_valid_range_is_refused() -> None:
    with pytest.raises(ValueError, match="typical range"):
        IntColumn("Age", 18, 60, 10, 70)


def test_same_run_id_gives_the_same_records() -> None:
    first = generate_run_records("manual__2026-11-24T00:00:00+00:00", 5)
    again = generate_run_records("manual__2026-11-24T00:00:00+00:00", 5)
    other = generate_run_records("manual__2026-11-25T00:00:00+00:00", 5)
    assert first.equals(again)
    assert not first.drop(columns="Employee ID").equals(other.drop(columns="Employee ID"))
    assert seed_for_run("a") != seed_for_run("b")


def test_every_generated_value_is_inside_its_domain() -> None:
    frame = generate_records(5_000, seed=7, first_id=100)
    validate_records(frame)  # raises on any out-of-domain value
    for column in COLUMNS:
        series = frame[column.name]
        if isinstance(column, IntColumn):
            assert series.between(column.valid_min, column.valid_max).all(), column.name
        else:
            assert set(series) <= set(column.values), column.name
    assert list(frame["Employee ID"]) == list(range(100, 5_100))
    assert (frame["Years at Company"] <= (frame["Age"] - 17).clip(lower=1)).all()


def test_seed_dataset_is_about_10_mb_and_74500_valid_rows(tmp_path: Path) -> None:
    path = tmp_path / "employee_attrition.csv"
    write_seed_dataset(path, seed=0)
    assert validate_dataset_file(path) == SEED_DATASET_ROWS == 74_500
    assert 9_000_000 < path.stat().st_size < 12_000_000
    again = tmp_path / "again.csv"
    write_seed_dataset(again, seed=0)
    assert again.read_bytes() == path.read_bytes()


def test_negative_record_count_is_refused() -> None:
    with pytest.raises(ValueError, match="record count"):
        generate_records(-1, seed=1)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("30", None),
        ("030", None),
        ("100", None),
        ("13", "out of range [14, 100]"),
        ("-30", "out of range [14, 100]"),
        ("1" + "0" * 5_000, "out of range [14, 100]"),
        ("0" * 5_000 + "30", None),
        ("\u0663\u0660", "not an integer (ASCII digits 0-9 only)"),
        ("\u00b2", "not an integer (ASCII digits 0-9 only)"),
        ("+30", "not an integer (ASCII digits 0-9 only)"),
        (" 30", "not an integer (ASCII digits 0-9 only)"),
        ("3_0", "not an integer (ASCII digits 0-9 only)"),
        ("-", "not an integer (ASCII digits 0-9 only)"),
    ],
)
def test_an_integer_is_ascii_digits_in_range(raw: str, problem: str | None) -> None:
    age = COLUMNS_BY_NAME["Age"]
    assert isinstance(age, IntColumn)
    assert age.problem(raw) == problem


def test_a_category_value_is_matched_exactly_and_a_formula_is_named() -> None:
    gender = COLUMNS_BY_NAME["Gender"]
    assert isinstance(gender, CategoryColumn)
    assert gender.problem("Female") is None
    assert gender.problem("female") == "not one of: Male, Female"
    assert gender.problem("Female ") == "not one of: Male, Female"
    assert gender.problem("=Female") == "looks like a spreadsheet formula; refusing it"


def test_ids_leave_the_pipeline_room_for_as_many_runs_as_it_can_ever_make() -> None:
    """Ids up to FREE_ID_MAX may be chosen; above it the pipeline assigns them, and has room."""
    employee_id = COLUMNS_BY_NAME["Employee ID"]
    assert isinstance(employee_id, IntColumn)
    assert employee_id.valid_max == 2**53  # exact in a float and in JSON
    assert employee_id.typical_max < FREE_ID_MAX < employee_id.valid_max
    assert (employee_id.valid_max - FREE_ID_MAX) // MAX_RECORDS_PER_RUN > 10**10  # runs of the largest size


def test_a_problem_names_its_file_line_column_and_value() -> None:
    problem = Problem("not an integer", line=3, column="Age", value="x" * 70, file="part-000002.csv")
    assert str(problem) == f"file part-000002.csv, line 3, column 'Age', value '{'x' * 57}...': not an integer"
    assert str(Problem("file is empty")) == "file is empty"
