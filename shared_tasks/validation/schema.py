"""The dataset's rules: its Table Schema (a file, schemas/employee_attrition.schema.json), the key
the pipeline assigns, and the problems a check reports.

Generation, validation and the header check all read the one schema file, so a column added
there is generated, validated and checked everywhere at once. The constants below (COLUMNS,
COLUMN_NAMES, COLUMNS_BY_NAME) are views of it, read when first used: importing this module reads
no file, so a DAG processor or a code server that only names DataValidationError pays nothing.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_tasks.project.settings import Settings
from shared_tasks.validation.field_values import FORMULA, FORMULA_PREFIXES, Bounds, IntegerReader
from shared_tasks.validation.table_fields import TableSchema
from shared_tasks.validation.table_schema import load_table_schema

MAX_REPORTED_PROBLEMS = 20
SCHEMA_FILE = Path(__file__).with_name("schemas") / "employee_attrition.schema.json"
# The custom field property naming the range the synthetic-record generator draws from.
GENERATE_PROPERTY = "x-generate"

__all__ = ["FORMULA_PREFIXES"]


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    column: str | None = None
    value: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            where.append(f"value {shown!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DataValidationError(ValueError):
    """Raised with the first problems found (in file and line order), each naming where it is.

    `total` counts every problem found, also those past the ones listed (a whole dataset keeps only
    the first MAX_REPORTED_PROBLEMS); it defaults to the number of problems given.
    """

    def __init__(self, source: str, problems: list[Problem], total: int | None = None) -> None:
        self.source = source
        self.problems = problems
        self.total = len(problems) if total is None else total
        listed = "\n".join(f"  - {problem}" for problem in problems[:MAX_REPORTED_PROBLEMS])
        more = self.total - min(len(problems), MAX_REPORTED_PROBLEMS)
        suffix = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source} is not valid ({self.total} problem(s)):\n{listed}{suffix}")

    def __reduce__(self) -> tuple[type[DataValidationError], tuple[str, list[Problem], int]]:
        return type(self), (self.source, self.problems, self.total)


@dataclass(frozen=True)
class IntColumn:
    """An integer field of the employee dataset, with the range its records are generated in."""

    name: str
    valid_min: int
    valid_max: int
    typical_min: int
    typical_max: int
    digits: int = field(init=False, repr=False, compare=False)  # of the longest number in range

    def __post_init__(self) -> None:
        if not self.valid_min <= self.typical_min <= self.typical_max <= self.valid_max:
            raise ValueError(f"column {self.name!r}: typical range must lie inside the valid range")
        object.__setattr__(self, "digits", self._reader.digits)

    @functools.cached_property
    def _reader(self) -> IntegerReader:
        low, high = self.valid_min, self.valid_max
        return IntegerReader(Bounds(low, high, shown_lower=str(low), shown_upper=str(high)))

    def problem(self, raw: str) -> str | None:
        """Why `raw` is no value of this column, or None (see field_values.IntegerReader)."""
        return self._reader.read(raw)[1]


@dataclass(frozen=True)
class CategoryColumn:
    name: str
    values: tuple[str, ...]

    def problem(self, raw: str) -> str | None:
        """Why `raw` is no value of this column, or None: the value set is matched exactly."""
        if raw.startswith(FORMULA_PREFIXES):
            return FORMULA
        if raw not in self.values:
            return f"not one of: {', '.join(self.values)}"
        return None


Column = IntColumn | CategoryColumn

ID_COLUMN = "Employee ID"
# The pipeline assigns new ids as the largest + 1, + 2, ...; an id chosen near the top of the
# id domain (2**53, exact in a float and in JSON) would leave it no room, and every later run
# would fail. So ids up to FREE_ID_MAX may be chosen freely (a change file may not choose one
# above it), and a dataset holds ids above it only as the pipeline assigns them, one after
# another: its largest id is at most FREE_ID_MAX + its number of records. Every append keeps
# that true, and it leaves room for 2**52 more records, far more than any dataset can hold.
# (A cap such as 2**53 - MAX_RECORDS_PER_RUN would not do: a change choosing the cap itself
# would leave the next run no room again.)
FREE_ID_MAX = 2**52


@dataclass(frozen=True)
class DatasetRules:
    """What a dataset's records must be: its Table Schema, and the integer key the pipeline assigns
    (largest + 1, ...; see FREE_ID_MAX), if any. Our own rules (no spreadsheet formulas, ASCII
    digits, a byte order mark and UTF-16 named) are always on."""

    table: TableSchema
    generated_key: str | None = None
    free_key_max: int = FREE_ID_MAX

    def __post_init__(self) -> None:
        if self.generated_key is not None and (
            self.table.primary_key != (self.generated_key,) or self.table.field(self.generated_key).type != "integer"
        ):
            key = self.generated_key
            raise ValueError(f"{self.table.source}: the generated key {key!r} is not its integer primaryKey")
        if self.generated_key is not None and not self.table.field(self.generated_key).int64:
            key = self.generated_key
            raise ValueError(
                f"{self.table.source}: the generated key {key!r} needs a minimum and a maximum within 64-bit integers"
                " (e.g. minimum 1, maximum 9007199254740991)"
            )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes with the schema's content or the key rules: a verdict remembered under another is not reused."""
        facts = repr((self.table.fingerprint, self.generated_key, self.free_key_max))
        return hashlib.sha256(facts.encode()).hexdigest()


@functools.cache
def employee_rules() -> DatasetRules:
    return DatasetRules(load_table_schema(SCHEMA_FILE), generated_key=ID_COLUMN)


def rules_of(settings: Settings) -> DatasetRules:
    """The rules of the pipeline the settings run: a declared pipeline's schema file and generated
    key, or the built-in employee dataset's."""
    if not settings.is_declared:
        return employee_rules()
    declared = settings.declared()
    path = declared.schema_path
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise ValueError(f"pipeline {declared.name!r}: its schema file {path} does not exist") from None
    rules = _declared_rules(path, stamp, declared.output.generated_key, declared.name)
    output = declared.output
    if output.strategy == "merge" and not rules.table.primary_key:
        raise ValueError(f"pipeline {declared.name!r}: merge needs a primaryKey in {path.name} (the key it merges on)")
    if output.delete_column is not None and output.delete_column in rules.table.names:
        raise ValueError(
            f"pipeline {declared.name!r}: delete_column {output.delete_column!r} is a field of {path.name};"
            " name a column of the output only"
        )
    return rules


@functools.lru_cache(maxsize=16)
def _declared_rules(path: Path, _stamp: int, generated_key: str | None, pipeline: str) -> DatasetRules:
    try:
        return DatasetRules(load_table_schema(path), generated_key=generated_key)
    except ValueError as error:
        raise ValueError(f"pipeline {pipeline!r}: {error}") from None


def columns_of(table: TableSchema) -> tuple[Column, ...]:
    """The employee-shaped view of a schema: integers with their generated range, strings with an enum."""
    columns: list[Column] = []
    for column in table.fields:
        constraints = column.constraints
        if column.type == "integer" and constraints.minimum is not None and constraints.maximum is not None:
            low, high = int(constraints.minimum), int(constraints.maximum)
            generated = column.descriptor.get(GENERATE_PROPERTY, {})
            typical = generated.get("minimum", low), generated.get("maximum", high)
            columns.append(IntColumn(column.name, low, high, *typical))
        elif column.type == "string" and constraints.enum is not None:
            columns.append(CategoryColumn(column.name, tuple(map(str, constraints.enum))))
        else:
            raise ValueError(f"{table.source}: field {column.name!r} is neither a bounded integer nor a string enum")
    return tuple(columns)


if TYPE_CHECKING:
    COLUMNS: tuple[Column, ...]
    COLUMN_NAMES: tuple[str, ...]
    COLUMNS_BY_NAME: dict[str, Column]
else:

    def __getattr__(name: str) -> Any:
        """The schema's views, read from its file on first use (PEP 562)."""
        if name == "COLUMNS":
            value: Any = columns_of(employee_rules().table)
        elif name == "COLUMN_NAMES":
            value = employee_rules().table.names
        elif name == "COLUMNS_BY_NAME":
            value = {column.name: column for column in __getattr__("COLUMNS")}
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


# The CSV dialect every file of this dataset is written in.
CSV_ENCODING = "utf-8"
CSV_LINE_TERMINATOR = "\n"
