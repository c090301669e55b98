"""Any Table Schema's data: each type and each constraint, accepted when kept and refused when broken.

The cases are generated: for each type (a Domain: valid values, values that are none, bounds, an
enum, another spelling of a value) and each constraint the standard allows on it, a schema with
that field between two others, a valid dataset drawn from it, and each way of breaking the
constraint written into one row. Both validators (the change check and the streaming one, the
latter also with tiny blocks and with quoted values so that polars and Python each read part of
it) must accept the valid dataset, and refuse each broken one with the same problems, the first
naming its line, column and value.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared_tasks.validation import csv_blocks, csv_lines, dataset_check, id_ledger
from shared_tasks.validation.dataset_check import validate_dataset
from shared_tasks.validation.field_values import DEFAULT_FALSE, DEFAULT_TRUE, FORMULA, NOT_A_NUMBER, NOT_AN_INTEGER
from shared_tasks.validation.schema import DatasetRules, DataValidationError, Problem
from shared_tasks.validation.table_fields import CONSTRAINTS_OF, EMPTY, READ_TYPES, REQUIRED_MISSING
from shared_tasks.validation.table_schema import read_table_schema
from shared_tasks.validation.validate import read_change_file

ROWS = 40
Draw = Callable[[random.Random], str]


@dataclass(frozen=True)
class Domain:
    """A field type's values as a test needs them (raw CSV text throughout)."""

    name: str
    field: dict[str, Any]
    draw: Draw  # any valid value
    not_values: dict[str, tuple[str, str]]  # kind: (raw, message)
    respell: Callable[[str], str]  # another spelling of the same logical value
    low: str = ""  # bounds, and values just outside them, for ordered types
    high: str = ""
    below: str = ""
    above: str = ""
    draw_between: Draw | None = None  # a value in [low, high]
    enum: tuple[str, ...] = ()  # allowed raw values (as the enum's message lists them)
    enum_json: tuple[Any, ...] = ()
    not_in_enum: str = ""
    bound: Callable[[str], Any] = str  # a bound as the descriptor writes it

    def shown(self, raw: str) -> str:
        value = self.bound(raw)
        return value if isinstance(value, str) else str(value)


def iso_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def iso_moment(rng: random.Random, first: dt.datetime, last: dt.datetime) -> dt.datetime:
    return first + dt.timedelta(seconds=rng.randint(0, int((last - first).total_seconds())))


def word(rng: random.Random, low: int = 3, high: int = 8) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(low, high)))


def respell_integer(raw: str) -> str:
    return "-00" + raw[1:] if raw.startswith("-") else "00" + raw


def respell_moment(raw: str) -> str:
    moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.isoformat(timespec="microseconds")
    return moment.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()


TRUE_FALSE = DEFAULT_TRUE + DEFAULT_FALSE
DAY_FORMAT, MINUTE_FORMAT = "%d/%m/%Y", "%Y-%m-%d %H:%M"
MOMENT_SUFFIXES = ("", "Z", "+02:00", "-05:30", ".250", ".123456Z")
D2000, D2020 = dt.date(2000, 1, 1), dt.date(2020, 12, 31)
T2000, T2020 = dt.datetime(2000, 1, 1), dt.datetime(2020, 12, 31, 23, 59, 59)
NOT_A_DATE = "not a date (YYYY-MM-DD)"
NOT_A_DATETIME = "not a datetime (YYYY-MM-DDThh:mm:ss, an optional fraction, and Z or +hh:mm)"

DOMAINS = [
    Domain(
        "integer",
        {"type": "integer"},
        draw=lambda rng: str(rng.randint(-999, 999)),
        not_values={
            "a word": ("ten", NOT_AN_INTEGER),
            "a decimal point": ("1.5", NOT_AN_INTEGER),
            "a plus sign": ("+5", NOT_AN_INTEGER),
            "Arabic-Indic digits": ("\u0663", NOT_AN_INTEGER),
            "a leading space": (" 5", NOT_AN_INTEGER),
            "an exponent": ("1e3", NOT_AN_INTEGER),
        },
        respell=respell_integer,
        low="-100",
        high="100",
        below="-101",
        above="101",
        draw_between=lambda rng: str(rng.randint(-100, 100)),
        enum=("2", "3", "5", "7"),
        enum_json=(2, 3, 5, 7),
        not_in_enum="4",
        bound=int,
    ),
    Domain(
        "number",
        {"type": "number"},
        draw=lambda rng: rng.choice(
            [f"{rng.uniform(-999, 999):.3f}", f"{rng.uniform(-1e9, 1e9):.6e}", "NaN", "INF", "-inf", ".5", "5."]
        ),
        not_values={
            "two points": ("1.2.3", NOT_A_NUMBER),
            "hexadecimal": ("0x1A", NOT_A_NUMBER),
            "Infinity spelled out": ("Infinity", NOT_A_NUMBER),
            "a bare exponent": ("1e", NOT_A_NUMBER),
            "Arabic-Indic digits": ("\u0663.\u0665", NOT_A_NUMBER),
            "a leading space": (" 1.5", NOT_A_NUMBER),
            "an underscore": ("1_000", NOT_A_NUMBER),
        },
        respell=lambda raw: repr(float(raw)).replace("inf", "INF").replace("nan", "NAN"),
        low="-100.5",
        high="100.25",
        below="-100.51",
        above="100.26",
        draw_between=lambda rng: f"{rng.uniform(-100.5, 100.25):.3f}".replace("-0.000", "0.000"),
        enum=("0.5", "1", "2.5"),
        enum_json=(0.5, 1, 2.5),
        not_in_enum="2",
        bound=float,
    ),
    Domain(
        "boolean",
        {"type": "boolean"},
        draw=lambda rng: rng.choice(TRUE_FALSE),
        not_values={
            "yes": ("yes", f"not one of: {', '.join(TRUE_FALSE)}"),
            "mixed case": ("tRUE", f"not one of: {', '.join(TRUE_FALSE)}"),
            "a trailing space": ("true ", f"not one of: {', '.join(TRUE_FALSE)}"),
        },
        respell=lambda raw: "1" if raw in DEFAULT_TRUE else "FALSE",
        enum=DEFAULT_TRUE,
        enum_json=(True,),
        not_in_enum="false",
    ),
    Domain(
        "boolean of its own values",
        {"type": "boolean", "trueValues": ["Y", "yes"], "falseValues": ["N", "no"]},
        draw=lambda rng: rng.choice(["Y", "yes", "N", "no"]),
        not_values={"a default true": ("true", "not one of: Y, yes, N, no")},
        respell=lambda raw: {"Y": "yes", "yes": "Y", "N": "no", "no": "N"}[raw],
        enum=("N", "no"),
        enum_json=(False,),
        not_in_enum="Y",
    ),
    Domain(
        "date",
        {"type": "date"},
        draw=lambda rng: iso_date(rng, dt.date(1990, 1, 1), dt.date(2030, 12, 31)).isoformat(),
        not_values={
            "February 30": ("2024-02-30", NOT_A_DATE),
            "a one-digit month": ("2024-2-03", NOT_A_DATE),
            "no dashes": ("20240203", NOT_A_DATE),
            "fullwidth digits": ("\uff12\uff10\uff12\uff14-01-01", NOT_A_DATE),
            "a time": ("2024-01-01T00:00:00", NOT_A_DATE),
            "a week date": ("2024-W01-1", NOT_A_DATE),
        },
        respell=lambda raw: raw,
        low="2000-01-01",
        high="2020-12-31",
        below="1999-12-31",
        above="2021-01-01",
        draw_between=lambda rng: iso_date(rng, D2000, D2020).isoformat(),
        enum=("2024-01-01", "2024-07-04"),
        enum_json=("2024-01-01", "2024-07-04"),
        not_in_enum="2024-01-02",
    ),
    Domain(
        "date in a format",
        {"type": "date", "format": DAY_FORMAT},
        draw=lambda rng: iso_date(rng, dt.date(1990, 1, 1), dt.date(2030, 12, 31)).strftime(DAY_FORMAT),
        not_values={
            "the ISO form": ("2024-01-05", f"not a date in the format {DAY_FORMAT!r}"),
            "31 February": ("31/02/2024", f"not a date in the format {DAY_FORMAT!r}"),
            "a word": ("today", f"not a date in the format {DAY_FORMAT!r}"),
        },
        respell=lambda raw: raw.lstrip("0"),
        low=D2000.strftime(DAY_FORMAT),
        high=D2020.strftime(DAY_FORMAT),
        below="31/12/1999",
        above="01/01/2021",
        draw_between=lambda rng: iso_date(rng, D2000, D2020).strftime(DAY_FORMAT),
        enum=("01/01/2024", "04/07/2024"),
        enum_json=("01/01/2024", "04/07/2024"),
        not_in_enum="02/01/2024",
    ),
    Domain(
        "datetime",
        {"type": "datetime"},
        draw=lambda rng: (
            iso_moment(rng, dt.datetime(1990, 1, 1), dt.datetime(2030, 1, 1)).isoformat() + rng.choice(MOMENT_SUFFIXES)
        ),
        not_values={
            "a space for the T": ("2024-01-01 10:00:00", NOT_A_DATETIME),
            "hour 24": ("2024-01-01T24:00:00", NOT_A_DATETIME),
            "no seconds": ("2024-01-01T10:00", NOT_A_DATETIME),
            "an offset without minutes": ("2024-01-01T10:00:00+02", NOT_A_DATETIME),
            "a date only": ("2024-01-01", NOT_A_DATETIME),
        },
        respell=respell_moment,
        low="2000-01-01T00:00:00Z",
        high="2020-12-31T23:59:59Z",
        below="2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30:00Z
        above="2021-01-01T00:00:00Z",
        draw_between=lambda rng: iso_moment(rng, T2000, T2020).isoformat() + "Z",
        enum=("2024-01-01T00:00:00Z", "2024-06-01T12:00:00+02:00"),
        enum_json=("2024-01-01T00:00:00Z", "2024-06-01T12:00:00+02:00"),
        not_in_enum="2024-01-01T00:00:01Z",
    ),
    Domain(
        "datetime in a format",
        {"type": "datetime", "format": MINUTE_FORMAT},
        draw=lambda rng: iso_moment(rng, dt.datetime(1990, 1, 1), dt.datetime(2030, 1, 1)).strftime(MINUTE_FORMAT),
        not_values={"the ISO form": ("2024-01-01T10:00:00", f"not a datetime in the format {MINUTE_FORMAT!r}")},
        respell=lambda raw: raw[:5] + raw[5:].lstrip("0"),
        low=T2000.strftime(MINUTE_FORMAT),
        high=T2020.strftime(MINUTE_FORMAT),
        below="1999-12-31 23:59",
        above="2021-01-01 00:00",
        draw_between=lambda rng: iso_moment(rng, T2000, T2020).strftime(MINUTE_FORMAT),
        enum=("2024-01-01 00:00",),
        enum_json=("2024-01-01 00:00",),
        not_in_enum="2024-01-01 00:01",
    ),
    Domain(
        "string",
        {"type": "string"},
        draw=word,
        not_values={
            "a formula": ("=1+1", FORMULA),
            "an at sign": ("@cmd", FORMULA),
            "a leading minus": ("-2", FORMULA),
            "a leading plus": ("+2", FORMULA),
        },
        respell=lambda raw: raw,
        enum=("red", "green", "blue"),
        enum_json=("red", "green", "blue"),
        not_in_enum="Red",
    ),
    Domain(
        "any",
        {},  # a field without a type is `any`
        draw=word,
        not_values={"a formula": ("=1+1", FORMULA)},
        respell=lambda raw: raw,
        enum=("x", "y"),
        enum_json=("x", "y"),
        not_in_enum="z",
    ),
]


@dataclass(frozen=True)
class Case:
    """A schema (its field 'value' between 'n' and 'tail'), a valid value, and ways to break it."""

    name: str
    domain: Domain
    descriptor: dict[str, Any]
    draw: Draw
    violations: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind: (raw, message)
    duplicates: bool = False  # break it by repeating an earlier row's key (respelled)
    missing: tuple[str, ...] = ("",)  # a valid dataset may leave the value missing so

    @property
    def rules(self) -> DatasetRules:
        return DatasetRules(read_table_schema(self.descriptor, self.name))


def schema_with(value: dict[str, Any], **properties: Any) -> dict[str, Any]:
    fields = [
        {"name": "n", "type": "integer"},
        {"name": "value", **value},
        {"name": "tail", "type": "string", "constraints": {"enum": ["a", "b"]}},
    ]
    return {"fields": fields, **properties}


def constrained(domain: Domain, **constraints: Any) -> dict[str, Any]:
    return {**domain.field, "constraints": constraints}


def cases_of(domain: Domain) -> list[Case]:
    """One case for the type itself and one for each constraint the standard allows on it."""
    type_name = domain.field.get("type", "any")
    name = domain.name
    cases = [Case(f"{name}: type", domain, schema_with(domain.field), domain.draw, domain.not_values)]
    for constraint in CONSTRAINTS_OF[type_name]:
        label = f"{name}: {constraint}"
        if constraint == "required":
            descriptor = schema_with(constrained(domain, required=True), missingValues=["", "NA"])
            violations = {"empty": ("", EMPTY), "a missing value": ("NA", REQUIRED_MISSING)}
            cases.append(Case(label, domain, descriptor, domain.draw, violations, missing=()))
        elif constraint == "unique":
            descriptor = schema_with(constrained(domain, unique=True))
            cases.append(Case(label, domain, descriptor, domain.draw, duplicates=True))
        elif constraint == "enum":
            descriptor = schema_with(constrained(domain, enum=list(domain.enum_json)))
            problem = f"not one of: {', '.join(domain.enum)}"
            draw = lambda rng, domain=domain: rng.choice(domain.enum)  # noqa: E731
            cases.append(Case(label, domain, descriptor, draw, {"a value not listed": (domain.not_in_enum, problem)}))
        elif constraint in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            cases.append(ordered_case(domain, constraint))
        else:
            cases.append(text_case(domain, constraint))
    missing = schema_with(domain.field, missingValues=["", "NA", "-"])
    cases.append(Case(f"{name}: missingValues", domain, missing, domain.draw, missing=("", "NA", "-")))
    return cases


def ordered_case(domain: Domain, constraint: str) -> Case:
    assert domain.draw_between is not None, domain.name
    low, high = domain.shown(domain.low), domain.shown(domain.high)
    bound, breaking, message = {
        "minimum": (domain.low, domain.below, f"below the minimum {low}"),
        "maximum": (domain.high, domain.above, f"above the maximum {high}"),
        "exclusiveMinimum": (
            domain.below,
            domain.below,
            f"not above the exclusive minimum {domain.shown(domain.below)}",
        ),
        "exclusiveMaximum": (
            domain.above,
            domain.above,
            f"not below the exclusive maximum {domain.shown(domain.above)}",
        ),
    }[constraint]
    descriptor = schema_with(constrained(domain, **{constraint: domain.bound(bound)}))
    violations = {"just outside": (breaking, message)}
    return Case(f"{domain.name}: {constraint}", domain, descriptor, domain.draw_between, violations)


def range_case(domain: Domain) -> Case:
    assert domain.draw_between is not None, domain.name
    low, high = domain.shown(domain.low), domain.shown(domain.high)
    descriptor = schema_with(constrained(domain, minimum=domain.bound(domain.low), maximum=domain.bound(domain.high)))
    ranged = f"out of range [{low}, {high}]"
    violations = {"below": (domain.below, ranged), "above": (domain.above, ranged)}
    if domain.field.get("type") == "number":
        violations["NaN"] = ("NaN", ranged)
    if domain.field.get("type") == "integer":
        violations["a number too long to convert"] = ("9" * 5_000, ranged)
    return Case(f"{domain.name}: minimum and maximum", domain, descriptor, domain.draw_between, violations)


def text_case(domain: Domain, constraint: str) -> Case:
    name = f"{domain.name}: {constraint}"
    if constraint == "minLength":
        descriptor = schema_with(constrained(domain, minLength=3))
        return Case(name, domain, descriptor, word, {"too short": ("ab", "shorter than the minimum length 3")})
    if constraint == "maxLength":
        descriptor = schema_with(constrained(domain, maxLength=5))
        draw: Draw = lambda rng: rng.choice(["\u00e9" * 5, word(rng, 1, 5)])  # noqa: E731 - characters, not bytes
        return Case(name, domain, descriptor, draw, {"too long": ("abcdef", "longer than the maximum length 5")})
    assert constraint == "pattern", constraint
    pattern = "[a-z]{2}[0-9]{2}"
    descriptor = schema_with(constrained(domain, pattern=pattern))
    draw = lambda rng: word(rng, 2, 2) + str(rng.randint(10, 99))  # noqa: E731
    violations = {
        "upper case": ("Ab12", f"does not match the pattern {pattern!r}"),
        "more after a match": ("ab123", f"does not match the pattern {pattern!r}"),
    }
    return Case(name, domain, descriptor, draw, violations)


def key_cases(domain: Domain) -> list[Case]:
    """The value as the primaryKey (required and unique), and with 'tail' as a compound one."""
    draw = domain.draw_between or domain.draw
    single = schema_with(domain.field, primaryKey=["value"])
    compound = schema_with(domain.field, primaryKey=["value", "tail"])
    return [
        Case(f"{domain.name}: primaryKey", domain, single, draw, {"empty": ("", EMPTY)}, duplicates=True, missing=()),
        Case(f"{domain.name}: compound primaryKey", domain, compound, draw, duplicates=True, missing=()),
    ]


CASES = {
    case.name: case
    for domain in DOMAINS
    for case in [
        *cases_of(domain),
        *([range_case(domain)] if domain.draw_between else []),
        *(key_cases(domain) if domain.field.get("type") != "boolean" else []),
    ]
}


def rows_of(case: Case, rng: random.Random) -> list[list[str]]:
    """A valid dataset: `n`, the value (distinct keys where the case needs them), `tail`."""
    rules = case.rules
    value_field = rules.table.field("value")
    rows: list[list[str]] = []
    keys: set[tuple[object, ...]] = set()
    compound = rules.table.primary_key == ("value", "tail")
    while len(rows) < ROWS:
        tail = "ab"[len(rows) % 2]
        raw = rng.choice(case.missing) if case.missing and rng.random() < 0.1 else case.draw(rng)
        logical = value_field.logical(raw)
        if case.duplicates and logical is not None:
            key = (logical, tail) if compound else (logical,)
            if key in keys or (isinstance(logical, float) and logical != logical):  # NaN: one value, as a key
                continue
            keys.add(key)
        rows.append([str(len(rows)), raw, tail])
    return rows


@dataclass(frozen=True)
class Broken:
    rows: list[list[str]]
    problem: Problem  # the first (and only) one
    quoted: int  # the row to quote, so that Python reads it (a repeat: one of the two rows, polars the other)


def breakages(case: Case, rows: list[list[str]], rng: random.Random) -> dict[str, Broken]:
    """Each way of breaking the case's constraint, written into one row: the rows, and the problem."""
    broken = {}
    for kind, (raw, message) in case.violations.items():
        row = rng.randrange(ROWS)
        changed = [list(fields) for fields in rows]
        changed[row][1] = raw
        broken[kind] = Broken(changed, Problem(message, line=row + 2, column="value", value=raw or None), row)
    if case.duplicates:
        rules = case.rules
        key = next(key for key in rules_keys(rules))
        # Far apart, so that different blocks hold them (and with a quote, different readers).
        keyed = [number for number, fields in enumerate(rows) if fields[1] not in case.missing]
        first = rng.choice([number for number in keyed if number < ROWS // 4] or keyed[:1])
        later = rng.randrange(3 * ROWS // 4, ROWS)
        changed = [list(fields) for fields in rows]
        changed[later][1] = case.domain.respell(rows[first][1])
        changed[later][2] = rows[first][2]
        shown = key.shown(changed[later])
        message = f"duplicate {key.label} (first seen on line {first + 2})"
        problem = Problem(message, later + 2, key.column, shown)
        broken["a key repeated, spelled anew"] = Broken(changed, problem, rng.choice([first, later]))
    return broken


def rules_keys(rules: DatasetRules) -> list[Any]:
    from shared_tasks.validation.row_rules import unique_keys

    return list(unique_keys(rules.table))


def csv_bytes(rows: list[list[str]], quoted: set[int] = frozenset()) -> bytes:  # type: ignore[assignment]
    """The file, each row in `quoted` with its values in quotes (which sends its block to Python)."""
    lines = [",".join(["n", "value", "tail"])]
    for number, fields in enumerate(rows):
        lines.append(",".join(f'"{value}"' for value in fields) if number in quoted else ",".join(fields))
    return ("\n".join(lines) + "\n").encode()


def change_check(path: Path, rules: DatasetRules) -> list[Problem]:
    with pytest.raises(DataValidationError) as caught:
        read_change_file(path, rules)
    return caught.value.problems


def streaming_check(path: Path, rules: DatasetRules) -> tuple[list[Problem], int]:
    with pytest.raises(DataValidationError) as caught:
        validate_dataset([path], "dataset", rules=rules)
    return caught.value.problems, caught.value.total


@pytest.fixture(params=["blocks", "tiny blocks", "quoted values"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "blocks":  # a block every few lines, halved down to Python
        monkeypatch.setattr(csv_lines, "BLOCK_BYTES", 64)
        monkeypatch.setattr(dataset_check, "PYTHON_BYTES", 32)
        monkeypatch.setattr(id_ledger, "SPILL_ENTRIES", 8)
        monkeypatch.setattr(id_ledger, "PARTITION_ENTRIES", 4)
    return str(request.param)


def test_every_type_and_every_constraint_it_may_have_has_cases() -> None:
    covered = {
        (case.descriptor["fields"][1].get("type", "any"), c) for case in CASES.values() for c in constraints(case)
    }
    wanted = {(type_name, constraint) for type_name in READ_TYPES for constraint in CONSTRAINTS_OF[type_name]}
    assert wanted <= covered, wanted - covered
    assert {case.name for case in CASES.values() if case.descriptor.get("primaryKey")} >= {
        f"{domain.name}: compound primaryKey" for domain in DOMAINS if domain.field.get("type") != "boolean"
    }
    assert sum(len(case.violations) + case.duplicates for case in CASES.values()) > 100


def constraints(case: Case) -> list[str]:
    return list(case.descriptor["fields"][1].get("constraints", {}))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_valid_dataset_is_accepted_by_both_checks(tmp_path: Path, name: str, reading: str) -> None:
    case = CASES[name]
    rng = random.Random(name)
    rows = rows_of(case, rng)
    path = tmp_path / "data.csv"
    quoted = set(random.Random(name).sample(range(ROWS), ROWS // 10)) if reading == "quoted values" else set()
    path.write_bytes(csv_bytes(rows, quoted))
    assert len(read_change_file(path, case.rules)) == ROWS
    verdict = validate_dataset([path], "dataset", rules=case.rules)
    assert verdict.records == ROWS
    if reading == "blocks":  # polars vouched for every line
        assert verdict.python_blocks == 0
    if reading == "quoted values":  # Python read the lines with a quote
        assert verdict.python_blocks > 0


VIOLATIONS = sorted(
    (name, kind)
    for name, case in CASES.items()
    for kind in [*case.violations, *(["a key repeated, spelled anew"] if case.duplicates else [])]
)


@pytest.mark.parametrize(("name", "kind"), VIOLATIONS, ids=[f"{name} - {kind}" for name, kind in VIOLATIONS])
def test_a_broken_constraint_is_refused_by_both_checks_naming_line_column_and_value(
    tmp_path: Path, name: str, kind: str, reading: str
) -> None:
    case = CASES[name]
    rng = random.Random(f"{name}/{kind}")
    broken = breakages(case, rows_of(case, rng), rng)[kind]
    expected = broken.problem
    path = tmp_path / "data.csv"
    path.write_bytes(csv_bytes(broken.rows, {broken.quoted} if reading == "quoted values" else set()))
    changed = change_check(path, case.rules)
    streamed, total = streaming_check(path, case.rules)
    assert [str(p) for p in streamed] == [str(p) for p in changed]
    assert total == len(changed) == 1
    assert (streamed[0].line, streamed[0].column, streamed[0].value) == (expected.line, expected.column, expected.value)
    assert streamed[0].message == expected.message


def test_keys_sharing_a_hash_are_no_repeat_unless_their_values_are_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every text key given one hash: the streaming check confirms a repeat on the rows' values."""
    monkeypatch.setattr(csv_blocks, "_hashed_ids", lambda rows: np.zeros(rows.height, dtype=np.int64))
    case = CASES["string: unique"]
    rows = [fields for fields in rows_of(case, random.Random(1)) if fields[1]][:12]
    path = tmp_path / "data.csv"
    path.write_bytes(csv_bytes(rows, {5}))
    assert validate_dataset([path], "dataset", rules=case.rules).records == 12  # 11 hashes repeated, no value
    rows[9][1] = rows[2][1]
    path.write_bytes(csv_bytes(rows, {5}))
    problems, total = streaming_check(path, case.rules)
    assert [str(p) for p in problems] == [
        f"line 11, column 'value', value {rows[2][1]!r}: duplicate value (first seen on line 4)"
    ]
    assert total == 1


def test_a_compound_key_repeated_across_parts_names_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(id_ledger, "SPILL_ENTRIES", 8)  # spilled, and partitioned
    monkeypatch.setattr(id_ledger, "PARTITION_ENTRIES", 4)
    case = CASES["date in a format: compound primaryKey"]
    rows = rows_of(case, random.Random(2))
    first, second = tmp_path / "part-000001.csv", tmp_path / "part-000002.csv"
    first.write_bytes(csv_bytes(rows[:20]))
    second.write_bytes(csv_bytes(rows[20:]))
    assert validate_dataset([first, second], "dataset", rules=case.rules).records == ROWS
    repeated = [*rows[20:25], [rows[20][0], case.domain.respell(rows[3][1]), rows[3][2]], *rows[26:]]
    second.write_bytes(csv_bytes(repeated))
    with pytest.raises(DataValidationError) as caught:
        validate_dataset([first, second], "dataset", rules=case.rules)
    assert [str(p) for p in caught.value.problems] == [
        f"file part-000002.csv, line 7, column 'value, tail', value '{repeated[5][1]}, {rows[3][2]}': "
        "duplicate primary key (value, tail) (first seen on line 5 of part-000001.csv)"
    ]
