"""The bad-input corpus: each error names the problem, its line, column and value."""

from __future__ import annotations

import codecs
import pickle
import re
from pathlib import Path

import pytest

from shared_tasks.run.generate import generate_records
from shared_tasks.validation.schema import COLUMN_NAMES, FREE_ID_MAX
from shared_tasks.validation.validate import (
    DataValidationError,
    Problem,
    header_problems,
    read_change_file,
    read_header,
    validate_dataset_file,
    validate_records,
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


# --- Found while probing the validator (each failed before its fix) -------------------------------


@pytest.mark.parametrize("digits", ["\u0663\u0660", "\u00b2", "\uff13\uff10", "\u096a\u0968"])
def test_integers_are_ascii_digits_only(tmp_path: Path, digits: str) -> None:
    path = tmp_path / "change.csv"
    path.write_text(with_cell(good_csv(), 3, "Age", digits), encoding="utf-8")
    for check in (read_change_file, validate_dataset_file):
        with pytest.raises(DataValidationError) as caught:
            check(path)
        expected = f"line 3, column 'Age', value {digits!r}: not an integer (ASCII digits 0-9 only)"
        assert str(caught.value.problems[0]) == expected


def test_a_number_too_long_to_convert_is_out_of_range_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "change.csv"
    path.write_text(with_cell(good_csv(), 2, "Monthly Income", "9" * 5_000))
    for check in (read_change_file, validate_dataset_file):
        with pytest.raises(DataValidationError) as caught:
            check(path)
        problem = caught.value.problems[0]
        assert (problem.line, problem.column, problem.message) == (2, "Monthly Income", "out of range [0, 1000000]")


@pytest.mark.parametrize("raw", [" 30", "30 ", "+30", "3_0"])
def test_an_integer_with_spaces_or_a_sign_is_refused_not_read_leniently(tmp_path: Path, raw: str) -> None:
    path = tmp_path / "change.csv"
    path.write_text(with_cell(good_csv(), 2, "Age", raw))
    with pytest.raises(DataValidationError, match=re.escape(f"line 2, column 'Age', value '{raw}': not an integer")):
        read_change_file(path)


def test_the_same_id_written_with_leading_zeros_is_a_duplicate(tmp_path: Path) -> None:
    """Ids are numbers (as every reader of the dataset takes them); a repeat is named by its number."""
    text = good_csv(3)
    first_id = text.splitlines()[1].split(",")[0]
    path = tmp_path / "change.csv"
    path.write_text(with_cell(text, 4, "Employee ID", "00" + first_id))
    for check in (read_change_file, validate_dataset_file):
        with pytest.raises(DataValidationError, match=f"line 4, column 'Employee ID', value '{first_id}': duplicate"):
            check(path)


def test_a_change_may_not_choose_an_id_that_leaves_the_generator_no_room(tmp_path: Path) -> None:
    path = tmp_path / "change.csv"
    path.write_text(with_cell(good_csv(), 2, "Employee ID", str(2**53)))
    with pytest.raises(DataValidationError) as caught:
        read_change_file(path)
    assert "line 2, column 'Employee ID', value '9007199254740992': above 4503599627370496" in str(caught.value)


def test_a_dataset_whose_ids_leave_the_generator_no_room_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "employee_attrition.csv"
    path.write_text(with_cell(good_csv(), 3, "Employee ID", str(2**53)))
    expected = "line 3, column 'Employee ID', value '9007199254740992': leaves no room"
    with pytest.raises(DataValidationError, match=expected):
        validate_dataset_file(path)


def test_after_the_highest_id_a_change_may_choose_runs_can_go_on_and_stay_valid(tmp_path: Path) -> None:
    """The worst a change can do (the largest id it may choose) still leaves every later run room."""
    records = generate_records(2, seed=3, first_id=1).assign(**{"Employee ID": [1, FREE_ID_MAX]})
    path = tmp_path / "change.csv"
    path.write_text(records.to_csv(index=False, lineterminator="\n"))
    read_change_file(path)
    dataset = path.read_text()
    for run in range(3):  # each run appends MAX_RECORDS_PER_RUN-style consecutive ids after the largest
        largest = FREE_ID_MAX + run * 5
        assigned = generate_records(5, seed=run, first_id=largest + 1)
        validate_records(assigned)
        dataset += assigned.to_csv(index=False, header=False, lineterminator="\n")
        path.write_text(dataset)
        assert validate_dataset_file(path) == 2 + 5 * (run + 1)


def test_a_40000_column_header_is_checked_in_linear_time(tmp_path: Path) -> None:
    """The timing is in bench/bench_validate.py; the timeout only catches a quadratic check (17.6 s)."""
    header = [f"column {number}" for number in range(40_000)] + ["Age", "Age"]
    problems = header_problems(header)
    assert len(problems) == 24 + 40_000 + 1
    assert str(problems[-1]) == "line 1, column 'Age': column appears more than once"
    path = tmp_path / "wide.csv"
    path.write_text(",".join(header) + "\n" + ",".join("1" for _ in header) + "\n")
    with pytest.raises(DataValidationError) as caught:
        validate_dataset_file(path)
    assert caught.value.total == len(problems)
    assert "... and 40005 more" in str(caught.value)


test_a_40000_column_header_is_checked_in_linear_time = pytest.mark.timeout(10)(
    test_a_40000_column_header_is_checked_in_linear_time
)


def test_a_dataset_saved_with_a_byte_order_mark_says_so(tmp_path: Path) -> None:
    path = tmp_path / "employee_attrition.csv"
    path.write_bytes(codecs.BOM_UTF8 + good_csv().encode())
    for check in (validate_dataset_file, read_header):
        with pytest.raises(DataValidationError) as caught:
            check(path)
        assert [str(problem) for problem in caught.value.problems] == [
            "line 1: starts with a byte order mark (U+FEFF, as spreadsheets save 'CSV UTF-8'); "
            "the dataset's files are UTF-8 without one"
        ]


def test_a_change_file_saved_as_csv_utf8_by_a_spreadsheet_is_accepted(tmp_path: Path) -> None:
    """Its records are written anew when applied, so the byte order mark never reaches the dataset."""
    path = tmp_path / "change.csv"
    path.write_bytes(codecs.BOM_UTF8 + good_csv(3).encode())
    frame = read_change_file(path)
    assert list(frame.columns) == list(COLUMN_NAMES)
    assert frame["Employee ID"].tolist() == [90_000, 90_001, 90_002]


def test_utf16_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "change.csv"
    path.write_bytes(good_csv().encode("utf-16"))
    with pytest.raises(DataValidationError, match=r"line 1: not UTF-8 text: invalid byte 0xff at offset 0 \(a UTF-16"):
        read_change_file(path)


def test_a_validation_error_survives_pickling() -> None:
    """Orchestrators carry a step's exception between processes."""
    error = DataValidationError("dataset x.csv", [Problem("empty value", line=2, column="Age")])
    again = pickle.loads(pickle.dumps(error))
    assert (again.source, again.problems, str(again)) == (error.source, error.problems, str(error))


def test_a_validation_error_counts_problems_past_those_it_lists() -> None:
    error = DataValidationError("dataset x.csv", [Problem("empty value", line=2, column="Age")], total=30)
    assert (error.total, len(error.problems)) == (30, 1)
    assert str(error).endswith("(30 problem(s)):\n  - line 2, column 'Age': empty value\n  ... and 29 more")
    assert pickle.loads(pickle.dumps(error)).total == 30
