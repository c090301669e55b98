"""The bad-input corpus: each error names the problem, its line, column and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_tasks.generate import generate_records
from shared_tasks.schema import COLUMN_NAMES
from shared_tasks.validate import (
    DataValidationError,
    read_change_file,
    read_header,
    validate_dataset_file,
)

HEADER = ",".join(COLUMN_NAMES)


def good_csv(rows: int = 2) -> str:
    return generate_records(rows, seed=3, first_id=90_000).to_csv(index=False, lineterminator="\n")


def with_cell(text: str, line: int, column: str, value: str) -> str:
    lines = text.splitlines()
    fields = lines[line - 1].split(",")
    fields[COLUMN_NAMES.index(column)] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


def bad_input_corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, text the error must contain)."""
    good = good_csv()
    lines = good.splitlines()
    no_age = "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != 1) for line in lines) + "\n"
    return {
        "missing column": (no_age.encode(), "column 'Age': missing column"),
        "extra column": (
            ("\n".join([lines[0] + ",Bonus", *(line + ",1" for line in lines[1:])]) + "\n").encode(),
            "column 'Bonus': unexpected column",
        ),
        "wrong dtype": (
            with_cell(good, 2, "Age", "thirty").encode(),
            "line 2, column 'Age', value 'thirty': not an integer",
        ),
        "out-of-domain value": (
            with_cell(good, 3, "Education Level", "Bachelor").encode(),
            "line 3, column 'Education Level', value 'Bachelor': not one of",
        ),
        "out-of-range integer": (with_cell(good, 2, "Age", "430").encode(), "value '430': out of range"),
        "empty file": (b"", "file is empty"),
        "header only": ((HEADER + "\n").encode(), "has a header but no records"),
        "non-UTF-8 bytes": (good.encode().replace(b"Male", b"M\xe4le", 1), "not UTF-8 text: invalid byte 0xe4"),
        "truncated last line": (good.rstrip("\n")[:-40].encode(), "line 3: has "),
        "spreadsheet formula": (
            with_cell(good, 2, "Job Role", '=HYPERLINK("http://example.invalid")').encode(),
            "column 'Job Role', value '=HYPERLINK",
        ),
        "duplicate id": (
            with_cell(good, 3, "Employee ID", good.splitlines()[1].split(",")[0]).encode(),
            "duplicate Employee ID",
        ),
        "empty value": (with_cell(good, 2, "Gender", "").encode(), "line 2, column 'Gender': empty value"),
    }


@pytest.mark.parametrize("case", sorted(bad_input_corpus()))
def test_bad_change_file_gets_an_error_naming_the_problem(tmp_path: Path, case: str) -> None:
    data, expected = bad_input_corpus()[case]
    path = tmp_path / "change.csv"
    path.write_bytes(data)
    with pytest.raises(DataValidationError) as caught:
        read_change_file(path)
    assert expected in str(caught.value)
    assert "change file change.csv is not valid" in str(caught.value)


def test_formula_error_says_it_is_a_formula(tmp_path: Path) -> None:
    path = tmp_path / "change.csv"
    path.write_text(with_cell(good_csv(), 2, "Attrition", "=1+1"))
    with pytest.raises(DataValidationError, match="spreadsheet formula"):
        read_change_file(path)


def test_a_good_change_file_is_read_typed(tmp_path: Path) -> None:
    path = tmp_path / "change.csv"
    path.write_text(good_csv(3))
    frame = read_change_file(path)
    assert list(frame.columns) == list(COLUMN_NAMES)
    assert frame["Employee ID"].tolist() == [90_000, 90_001, 90_002]
    assert frame["Age"].dtype == "int64"


def test_columns_out_of_order_are_named(tmp_path: Path) -> None:
    lines = good_csv().splitlines()
    swapped = []
    for line in lines:
        fields = line.split(",")
        fields[1], fields[2] = fields[2], fields[1]
        swapped.append(",".join(fields))
    path = tmp_path / "change.csv"
    path.write_text("\n".join(swapped) + "\n")
    with pytest.raises(DataValidationError, match="out of order"):
        read_change_file(path)


def test_many_problems_are_all_counted_and_the_list_is_capped(tmp_path: Path) -> None:
    text = good_csv(40)
    for line in range(2, 42):
        text = with_cell(text, line, "Age", "x")
    path = tmp_path / "change.csv"
    path.write_text(text)
    with pytest.raises(DataValidationError) as caught:
        read_change_file(path)
    assert len(caught.value.problems) == 40
    assert "(40 problem(s))" in str(caught.value)
    assert "... and 20 more" in str(caught.value)


def test_dataset_header_check_reads_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "employee_attrition.csv"
    path.write_text(good_csv())
    assert read_header(path) == list(COLUMN_NAMES)
    path.write_text(good_csv().replace("Monthly Income", "Income", 1))
    with pytest.raises(DataValidationError, match="column 'Monthly Income': missing column"):
        read_header(path)
    path.write_bytes(b"")
    with pytest.raises(DataValidationError, match="file is empty"):
        read_header(path)


def test_whole_dataset_validation_counts_records(tmp_path: Path) -> None:
    path = tmp_path / "employee_attrition.csv"
    path.write_text(good_csv(5))
    assert validate_dataset_file(path) == 5
    path.write_text(with_cell(good_csv(5), 4, "Overtime", "Maybe"))
    with pytest.raises(DataValidationError, match="line 4, column 'Overtime', value 'Maybe'"):
        validate_dataset_file(path)
