"""`schema infer`: a Table Schema guessed from a CSV that the CSV keeps and that refuses what breaks it."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared_tasks.validation.dataset_check import validate_dataset
from shared_tasks.validation.infer import InferenceError, InferredSchema, infer_schema
from shared_tasks.validation.schema import DatasetRules, DataValidationError
from shared_tasks.validation.table_schema import load_table_schema

STATIONS = ["north", "south", "east", "west"]
DAYS = 30
KINDS_PER_TYPE = 10  # columns of each type


def generated_rows(seed: int = 7) -> tuple[list[str], list[list[str]], dict[str, dict[str, Any]]]:
    """A CSV keyed by (station, day) with several columns of every type, some with missing values;
    and what the schema should say of each column."""
    rng = random.Random(seed)
    header = ["station", "day"]
    expected: dict[str, dict[str, Any]] = {
        "station": {"type": "string", "required": True, "enum": sorted(STATIONS)},
        "day": {"type": "date", "required": True},
    }
    makers: dict[str, Callable[[int], str]] = {}
    for n in range(KINDS_PER_TYPE):
        makers[f"count_{n}"] = lambda i, n=n: str(rng.randint(-50, 5000 + n))
        makers[f"reading_{n}"] = lambda i: f"{rng.uniform(-40, 45):.2f}"
        makers[f"flag_{n}"] = lambda i: rng.choice(["true", "false"])
        makers[f"seen_{n}"] = lambda i: f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:15:00Z"
        makers[f"grade_{n}"] = lambda i: rng.choice(["low", "mid", "high"])
        makers[f"remark_{n}"] = lambda i: f"reading {i} by {rng.choice(STATIONS)}"
        makers[f"zip_{n}"] = lambda i: f"0{rng.randint(1000, 9999)}"
    types = {"count": "integer", "reading": "number", "flag": "boolean", "seen": "datetime"}
    types |= {"grade": "string", "remark": "string", "zip": "string"}
    optional = {"count_1", "reading_2", "grade_1", "remark_0", "flag_2"}
    header += list(makers)
    rows = []
    for index, (station, day) in enumerate((s, d) for s in STATIONS for d in range(DAYS)):
        row = [station, (date(2026, 1, 1) + timedelta(days=day)).isoformat()]
        for name, make in makers.items():
            row.append("" if name in optional and index % 9 == 4 else make(index))
        rows.append(row)
    for name in makers:
        expected[name] = {"type": types[name.split("_")[0]], "required": name not in optional}
    for n in range(KINDS_PER_TYPE):
        expected[f"grade_{n}"]["enum"] = ["high", "low", "mid"]
    return header, rows, expected


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rules_from(inferred: InferredSchema, folder: Path) -> DatasetRules:
    """The rules of the schema as a team would read it: the YAML written, comments and all, loaded back."""
    path = folder / "inferred.schema.yaml"
    path.write_text(inferred.to_yaml(), encoding="utf-8")
    return DatasetRules(load_table_schema(path))


@pytest.fixture
def generated(tmp_path: Path) -> tuple[Path, list[str], list[list[str]], dict[str, dict[str, Any]]]:
    header, rows, expected = generated_rows()
    return write_csv(tmp_path / "readings.csv", header, rows), header, rows, expected


def test_each_column_gets_its_type_required_enum_and_range_and_the_pair_that_is_unique_is_the_key(
    generated: Any, tmp_path: Path
) -> None:
    path, header, rows, expected = generated
    inferred = infer_schema(path)
    assert inferred.rows == len(rows) == len(STATIONS) * DAYS
    by_name = {field.name: field for field in inferred.fields}
    assert list(by_name) == header
    for name, wanted in expected.items():
        field = by_name[name]
        assert field.type == wanted["type"], (name, field.reasons)
        assert field.constraints.get("required", False) == wanted["required"], name
        assert field.constraints.get("enum") == wanted.get("enum"), name
        values = [row[header.index(name)] for row in rows if row[header.index(name)]]
        if field.type in ("integer", "number"):
            cast = int if field.type == "integer" else float
            assert (field.constraints["minimum"], field.constraints["maximum"]) == (
                min(map(cast, values)),
                max(map(cast, values)),
            ), name
        if field.type == "date":
            assert (field.constraints["minimum"], field.constraints["maximum"]) == (min(values), max(values))
    assert by_name["zip_0"].reasons["type"].startswith("whole numbers written with leading zeros")
    assert inferred.primary_key == ["station", "day"], inferred.key_reason
    verdict = validate_dataset([path], "readings.csv", rules=rules_from(inferred, tmp_path))
    assert verdict.records == len(rows), "the file keeps the schema inferred from it"


@pytest.mark.parametrize("batch_rows", [1, 7, 50, 10_000])
def test_batches_of_any_size_infer_the_same_schema(generated: Any, batch_rows: int) -> None:
    path, *_ = generated
    assert infer_schema(path, batch_rows=batch_rows).to_yaml() == infer_schema(path).to_yaml()


def breakages(header: list[str]) -> dict[str, tuple[str, str, str]]:
    """kind of breakage -> (column, the value written on line 3, what the refusal says)."""
    return {
        "a text in an integer": ("count_0", "many", "count_0"),
        "an integer below the least seen": ("count_0", "-9999", "out of range"),
        "a number above the largest seen": ("reading_0", "99.5", "out of range"),
        "a missing required value": ("reading_0", "", "empty value"),
        "a value outside the enum": ("grade_0", "extreme", "extreme"),
        "a date that is no date": ("day", "2026-02-30", "2026-02-30"),
        "a day before the first": ("day", "2025-12-31", "out of range"),
        "a boolean that is neither": ("flag_0", "maybe", "maybe"),
        "a datetime that is a date": ("seen_0", "2026-03-01", "2026-03-01"),
        "a repeated key": ("day", "2026-01-01", "2026-01-01"),  # line 2's (north, 2026-01-01) again
    }


@pytest.mark.parametrize("kind", sorted(breakages([])))
def test_the_inferred_schema_refuses_each_kind_of_breakage_naming_line_column_and_value(
    generated: Any, tmp_path: Path, kind: str
) -> None:
    path, header, rows, _ = generated
    rules = rules_from(infer_schema(path), tmp_path)
    column, value, says = breakages(header)[kind]
    broken = [list(row) for row in rows]
    broken[1][header.index(column)] = value  # line 3 of the file
    bad = write_csv(tmp_path / "broken.csv", header, broken)
    with pytest.raises(DataValidationError) as refused:
        validate_dataset([bad], "broken.csv", rules=rules)
    problems = refused.value.problems
    assert any(problem.line == 3 and says in str(problem) for problem in problems), [str(p) for p in problems]
    assert any(problem.column in (column, None) or column in str(problem) for problem in problems)


def test_no_key_is_guessed_where_none_is_unique_and_a_unique_id_column_comes_first(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "plain.csv", ["a", "b"], [["1", "x"], ["1", "x"], ["2", "y"]])
    assert infer_schema(plain).primary_key == []
    assert "no column, nor pair of columns" in infer_schema(plain).to_yaml()
    rows = [[str(i), f"note {i}", STATIONS[i % 4], str(i // 4)] for i in range(40)]
    ided = write_csv(tmp_path / "ided.csv", ["Reading ID", "note", "station", "day"], rows)
    assert infer_schema(ided).primary_key == ["Reading ID"]
    unnamed = write_csv(tmp_path / "unnamed.csv", ["note", "station", "day"], [row[1:] for row in rows])
    assert infer_schema(unnamed).primary_key == ["station", "day"], "a pair before a unique free text"
    floats = write_csv(tmp_path / "floats.csv", ["x"], [["1.5"], ["1.50"]])
    assert infer_schema(floats).primary_key == [], "1.5 and 1.50 are one number: never a guessed key"


def test_names_that_need_quoting_survive_the_yaml_and_the_validator(tmp_path: Path) -> None:
    names = ['a: "b" # c', "- dash", "ünï", "x,y"]
    path = write_csv(tmp_path / "odd.csv", names, [["1", "2", "3", "4"], ["5", "6", "7", "8"]])
    inferred = infer_schema(path)
    table = load_table_schema(_written(tmp_path, inferred))
    assert list(table.names) == names
    assert validate_dataset([path], "odd.csv", rules=DatasetRules(table)).records == 2


def _written(folder: Path, inferred: InferredSchema) -> Path:
    path = folder / "schema.yaml"
    path.write_text(inferred.to_yaml(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no header line"),
        ("a,b,a\n1,2,3\n", "'a' is named more than once"),
        ("a,,c\n1,2,3\n", "column 2 has no name"),
    ],
)
def test_a_file_no_schema_can_be_guessed_from_is_an_error_naming_why(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InferenceError, match=says):
        infer_schema(path)


def test_a_header_alone_gives_every_field_as_text_and_no_key(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n", encoding="utf-8")
    inferred = infer_schema(path)
    assert (inferred.rows, [f.type for f in inferred.fields], inferred.primary_key) == (0, ["string"] * 2, [])


def test_the_cli_prints_or_writes_the_schema_and_says_what_of_the_file_it_would_refuse(
    generated: Any, tmp_path: Path
) -> None:
    from dataset_pipeline.cli import app

    path, header, rows, _ = generated
    runner = CliRunner()
    printed = runner.invoke(app, ["schema", "infer", str(path)])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == infer_schema(path).to_yaml()
    out = tmp_path / "schemas" / "readings.schema.yaml"
    out.parent.mkdir()
    written = runner.invoke(app, ["schema", "infer", str(path), "--out", str(out)])
    assert written.exit_code == 0 and out.read_text() == printed.stdout
    assert json.dumps(load_table_schema(out).primary_key) == '["station", "day"]'

    formula = [list(row) for row in rows]
    formula[4][header.index("remark_1")] = "=HYPERLINK(0)"  # a cell a spreadsheet would run
    flagged = write_csv(tmp_path / "formula.csv", header, formula)
    refused = runner.invoke(app, ["schema", "infer", str(flagged)])
    assert refused.exit_code == 1 and "line 6" in refused.output and "formula" in refused.output
    missing = runner.invoke(app, ["schema", "infer", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output
