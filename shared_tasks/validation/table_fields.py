"""The fields of a Table Schema and their constraints, as this product holds them once read.

Types read: integer, number, string, boolean, date, datetime, and any (text as written; a field
without a type). Constraints: required, unique, minimum, maximum, exclusiveMinimum,
exclusiveMaximum, enum, pattern (a whole-value match), minLength, maxLength; primaryKey (one field
or several); missingValues (the schema's, or a field's own). Formats: the default ones, and a
strptime pattern for dates and datetimes. `field_reading` reads a descriptor's field into a `Field`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared_tasks.validation.field_values import (
    DEFAULT_FALSE,
    DEFAULT_TRUE,
    Logical,
    Reading,
    TextReader,
    ValueReader,
)

FieldType = Literal["integer", "number", "string", "boolean", "date", "datetime", "any"]
READ_TYPES: tuple[FieldType, ...] = ("integer", "number", "string", "boolean", "date", "datetime", "any")
STANDARD_TYPES = (
    *READ_TYPES,
    *("time", "year", "yearmonth", "duration", "object", "array", "list", "geopoint", "geojson"),
)
ORDERED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
CONSTRAINTS_OF: dict[str, tuple[str, ...]] = {
    "integer": ("required", "unique", "enum", *ORDERED),
    "number": ("required", "unique", "enum", *ORDERED),
    "date": ("required", "unique", "enum", *ORDERED),
    "datetime": ("required", "unique", "enum", *ORDERED),
    "string": ("required", "unique", "enum", "pattern", "minLength", "maxLength"),
    "boolean": ("required", "unique", "enum"),
    "any": ("required", "unique", "enum"),
}
STANDARD_CONSTRAINTS = (*CONSTRAINTS_OF["integer"], *CONSTRAINTS_OF["string"][3:], "jsonSchema")
# Standard properties whose meaning this product does not apply: refused rather than ignored.
UNREAD_FIELD_PROPERTIES = ("categories", "groupChar")
TEXT_TYPES = ("string", "any")
REQUIRED_MISSING = "missing value (the column is required)"
INT64 = (-(2**63), 2**63 - 1)
EMPTY = "empty value"


@dataclass(frozen=True)
class Constraints:
    """A field's constraints, bounds and enum values as logical values (see field_values)."""

    required: bool = False
    unique: bool = False
    minimum: Logical | None = None
    maximum: Logical | None = None
    exclusive_minimum: Logical | None = None
    exclusive_maximum: Logical | None = None
    enum: tuple[Logical, ...] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Field:
    name: str
    index: int
    type: FieldType
    constraints: Constraints
    missing_values: tuple[str, ...]
    format: str = "default"  # or a strptime pattern (dates and datetimes)
    true_values: tuple[str, ...] = DEFAULT_TRUE
    false_values: tuple[str, ...] = DEFAULT_FALSE
    enum_shown: tuple[str, ...] = ()  # the enum values as the messages list them
    descriptor: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    reader: ValueReader = field(default_factory=TextReader, compare=False, hash=False, repr=False)

    @property
    def required(self) -> bool:
        return self.constraints.required

    def read(self, raw: str) -> Reading:
        """The logical value of a raw cell (None for a missing value), or why it is no value."""
        if raw in self.missing_values:
            return None, (EMPTY if raw == "" else REQUIRED_MISSING) if self.constraints.required else None
        if not raw and self.type not in TEXT_TYPES:
            return None, EMPTY
        return self.reader.read(raw)

    def logical(self, raw: str) -> Logical | None:
        """The logical value of a cell already found valid (None when missing)."""
        return self.read(raw)[0]

    @property
    def int64(self) -> bool:
        """Whether every value in the field's range is an int64 (an integer field bounded both ways)."""
        constraints = self.constraints
        low = constraints.minimum if constraints.minimum is not None else constraints.exclusive_minimum
        high = constraints.maximum if constraints.maximum is not None else constraints.exclusive_maximum
        if self.type != "integer" or not isinstance(low, int) or not isinstance(high, int):
            return False
        return INT64[0] <= low and high <= INT64[1]


@dataclass(frozen=True)
class TableSchema:
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    missing_values: tuple[str, ...]
    fingerprint: str  # of the descriptor's content (sha256 of its canonical JSON)
    source: str = field(default="schema", compare=False)

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        return self.fields[self.names.index(name)]

    @functools.cached_property
    def checks(self) -> tuple[tuple[str, tuple[str, ...], Callable[[str], Reading], Callable[[str], Reading]], ...]:
        """For each field: its name, missing values, and how a value present and any value are read
        (the row check's loop, which runs for every cell Python reads, looks up nothing more)."""
        return tuple((f.name, f.missing_values, f.reader.read, f.read) for f in self.fields)

    @functools.cached_property
    def unique_keys(self) -> tuple[tuple[str, ...], ...]:
        """The primary key, then each unique field not already that key: each checked once."""
        keys = [self.primary_key] if self.primary_key else []
        keys += [(f.name,) for f in self.fields if f.constraints.unique and (f.name,) not in keys]
        return tuple(keys)


def read_missing_values(raw: object) -> tuple[str, ...]:
    """missingValues as strings (the profile has checked them: strings, or objects with a value)."""
    values = raw if isinstance(raw, list) else [""]
    return tuple(v["value"] if isinstance(v, Mapping) else str(v) for v in values)


def field_label(index: int, name: object) -> str:
    """How a problem names a field: by name and index, or by index when it has no name."""
    return f"field {name!r} (fields[{index}])" if isinstance(name, str) and name else f"fields[{index}]"
