"""A Table Schema field descriptor read into a `Field` (table_fields), with what is wrong with it.

A field descriptor is checked here for what the standard's profile cannot say (table_schema checks
it against the profile): a type or feature this product does not read, a constraint not valid for
the type, an unknown constraint, a bound or enum value that is no value of the field, minimum above
maximum, a pattern that is no regular expression.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, cast

from shared_tasks.validation.field_values import (
    DEFAULT_FALSE,
    DEFAULT_TRUE,
    FORMULA_PREFIXES,
    Allowed,
    BooleanReader,
    Bounds,
    IntegerReader,
    Logical,
    NumberReader,
    TemporalReader,
    TextReader,
    ValueReader,
    parse_date,
    parse_datetime,
)
from shared_tasks.validation.table_fields import (
    CONSTRAINTS_OF,
    ORDERED,
    READ_TYPES,
    STANDARD_CONSTRAINTS,
    STANDARD_TYPES,
    UNREAD_FIELD_PROPERTIES,
    Constraints,
    Field,
    FieldType,
    field_label,
    read_missing_values,
)


class FieldReading:
    """One field descriptor checked for what the profile cannot say, and read into a Field.

    `problems`: why the descriptor is no field to check further (not an object, no name, a type not
    read), each naming the field. Otherwise `property_problems` holds the problems found by property
    path (the profile's are found by table_schema, under the same paths), and `field` is the Field
    when there are none.
    """

    def __init__(self, index: int, raw: object, schema_missing: tuple[str, ...], primary_key: tuple[str, ...]):
        self.problems: list[str] = []
        self.property_problems: dict[str, str] = {}
        self.field: Field | None = None
        self.index = index
        if not isinstance(raw, Mapping):
            self.problems.append(f"fields[{index}]: is a {type(raw).__name__}, not an object")
            return
        self.raw = raw
        self.name = raw.get("name")
        self.where = field_label(index, self.name)
        if not isinstance(self.name, str) or not self.name:
            self.problems.append(f"{self.where}: has no name (a non-empty string)")
            return
        declared = raw.get("type", "any")
        if declared not in READ_TYPES:
            if declared in STANDARD_TYPES:
                message = f"type {declared!r} is not supported by this product (supported: {', '.join(READ_TYPES)})"
            else:
                message = f"unknown type {declared!r} (Table Schema types: {', '.join(STANDARD_TYPES)})"
            self.problems.append(f"{self.where}: {message}")
            return
        self.type: FieldType = declared
        self.field = self._read(schema_missing, primary_key)

    def _problem(self, path: str, message: str) -> None:
        self.property_problems.setdefault(path, message)

    def _read(self, schema_missing: tuple[str, ...], primary_key: tuple[str, ...]) -> Field | None:
        raw = self.raw
        for name in UNREAD_FIELD_PROPERTIES:
            if name in raw:
                self._problem(name, f"{name}: not supported by this product")
        if raw.get("bareNumber") is False:
            self._problem("bareNumber", "bareNumber false: not supported by this product")
        if raw.get("decimalChar", ".") != ".":
            self._problem("decimalChar", "decimalChar: only '.' is supported by this product")
        pattern = self._format()
        missing = read_missing_values(raw["missingValues"]) if "missingValues" in raw else schema_missing
        true_values, false_values = self._booleans()
        constraints = raw.get("constraints", {})
        if not isinstance(constraints, Mapping):
            return None  # the profile names it
        for name in constraints:
            if name not in CONSTRAINTS_OF[self.type]:
                known = name in STANDARD_CONSTRAINTS
                message = "is not valid for type" if known else "is no Table Schema constraint, for type"
                valid = ", ".join(CONSTRAINTS_OF[self.type])
                self._problem(f"constraints/{name}", f"constraint {name!r} {message} {self.type!r} (valid: {valid})")
        cast_value = self._caster(pattern, true_values, false_values)
        bounds, bound_values = self._bounds(constraints, cast_value)
        enum, shown = self._enum(constraints, cast_value)
        lengths = self._lengths(constraints)
        regex = self._pattern(constraints)
        if self.property_problems:
            return None
        required = constraints.get("required") is True or self.name in primary_key
        read_constraints = Constraints(
            required=required,
            unique=constraints.get("unique") is True,
            enum=enum,
            pattern=regex.pattern if regex is not None else None,
            min_length=lengths[0],
            max_length=lengths[1],
            **bound_values,
        )
        return Field(
            name=cast(str, self.name),
            index=self.index,
            type=self.type,
            constraints=read_constraints,
            missing_values=missing,
            format=pattern or "default",
            true_values=true_values,
            false_values=false_values,
            enum_shown=shown,
            descriptor=MappingProxyType(copy.deepcopy(dict(raw))),
            reader=self._reader(pattern, bounds, enum, shown, lengths, regex, true_values, false_values),
        )

    def _format(self) -> str | None:
        """A date's or datetime's strptime pattern (None: the ISO form); other types: default only."""
        declared = self.raw.get("format", "default")
        if not isinstance(declared, str):
            return None  # the profile names it
        declared = declared.removeprefix("fmt:")
        if declared == "default":
            return None
        if self.type not in ("date", "datetime"):
            if self.type == "string" and declared in ("email", "uri", "binary", "uuid"):
                self._problem("format", f"format {declared!r}: not supported by this product (only 'default')")
            else:
                self._problem("format", f"format {declared!r} is not valid for type {self.type!r} (only 'default')")
            return None
        if declared == "any":
            self._problem("format", "format 'any': not supported by this product (the default, or a strptime pattern)")
            return None
        import datetime as dt

        sample = dt.datetime(2024, 1, 26, 15, 0, 0, tzinfo=dt.UTC)
        try:
            written = sample.strftime(declared)
            read = dt.datetime.strptime(written, declared)
        except ValueError as error:
            self._problem("format", f"format {declared!r} is not a strptime pattern: {error}")
            return None
        wrote = sample.date() if self.type == "date" else sample.replace(tzinfo=None)
        if "%" not in declared or (read.date() if self.type == "date" else read.replace(tzinfo=None)) != wrote:
            self._problem("format", f"format {declared!r} does not read back the {self.type} it writes")
            return None
        return declared

    def _booleans(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        true_raw, false_raw = self.raw.get("trueValues", DEFAULT_TRUE), self.raw.get("falseValues", DEFAULT_FALSE)
        if self.type != "boolean":
            for name in ("trueValues", "falseValues"):
                if name in self.raw:
                    self._problem(name, f"{name} is valid for type 'boolean' only")
            return DEFAULT_TRUE, DEFAULT_FALSE
        if not (isinstance(true_raw, list) and isinstance(false_raw, list)):
            return DEFAULT_TRUE, DEFAULT_FALSE  # the profile names it
        true_values, false_values = tuple(map(str, true_raw)), tuple(map(str, false_raw))
        both = sorted(set(true_values) & set(false_values))
        if both:
            self._problem("trueValues", f"{both[0]!r} is in both trueValues and falseValues")
        return true_values, false_values

    def _caster(
        self, pattern: str | None, true_values: tuple[str, ...], false_values: tuple[str, ...]
    ) -> Callable[[object], Logical | None]:
        """How a bound or enum value written in the descriptor becomes a logical value (None: it is none).

        JSON numbers and booleans are taken as they are; a string is read as a cell of the field is
        (the standard allows either), without the field's own constraints.
        """
        readers: dict[str, Callable[[str], Logical | None]] = {
            "integer": lambda text: IntegerReader().read(text)[0],
            "number": lambda text: NumberReader().read(text)[0],
            "boolean": lambda text: BooleanReader(true_values, false_values).read(text)[0],
            "date": lambda text: parse_date(text, pattern),
            "datetime": lambda text: parse_datetime(text, pattern),
        }
        read_text = readers.get(self.type, _as_text)
        field_type = self.type

        def value(written: object) -> Logical | None:
            if isinstance(written, str):
                return read_text(written)
            if field_type == "boolean":
                return written if isinstance(written, bool) else None
            if isinstance(written, bool) or not isinstance(written, (int, float)):
                return None
            if field_type == "integer":
                return int(written) if float(written).is_integer() else None
            if field_type == "number":
                return float(written) if math.isfinite(written) else None
            return None

        return value

    def _bounds(
        self, constraints: Mapping[str, Any], cast_value: Callable[[object], Logical | None]
    ) -> tuple[Bounds, dict[str, Logical | None]]:
        read: dict[str, Logical | None] = {}
        for name in ORDERED:
            if name in constraints and name in CONSTRAINTS_OF[self.type]:
                read[name] = cast_value(constraints[name])
                if read[name] is None:
                    self._problem(f"constraints/{name}", f"{name} {constraints[name]!r} is not a valid {self.type}")
        for inclusive, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if inclusive in constraints and exclusive in constraints:
                self._problem(f"constraints/{exclusive}", f"{inclusive} and {exclusive} are both given")
        lower_name = "exclusiveMinimum" if "exclusiveMinimum" in read else "minimum"
        upper_name = "exclusiveMaximum" if "exclusiveMaximum" in read else "maximum"
        lower, upper = read.get(lower_name), read.get(upper_name)
        if lower is not None and upper is not None:
            open_end = lower_name.startswith("exclusive") or upper_name.startswith("exclusive")
            if cast(float, lower) > cast(float, upper) or (open_end and lower == upper):
                words = "is above" if cast(float, lower) > cast(float, upper) else "leaves no value below"
                shown_lower, shown_upper = constraints[lower_name], constraints[upper_name]
                message = f"{lower_name} {shown_lower!r} {words} {upper_name} {shown_upper!r}"
                self._problem(f"constraints/{lower_name}", message)
        bounds = Bounds(
            lower=cast(float | None, lower),
            upper=cast(float | None, upper),
            lower_exclusive=lower_name == "exclusiveMinimum",
            upper_exclusive=upper_name == "exclusiveMaximum",
            shown_lower=_shown(constraints.get(lower_name)),
            shown_upper=_shown(constraints.get(upper_name)),
        )
        values = {
            "minimum": read.get("minimum"),
            "maximum": read.get("maximum"),
            "exclusive_minimum": read.get("exclusiveMinimum"),
            "exclusive_maximum": read.get("exclusiveMaximum"),
        }
        return bounds, values

    def _enum(
        self, constraints: Mapping[str, Any], cast_value: Callable[[object], Logical | None]
    ) -> tuple[tuple[Logical, ...] | None, tuple[str, ...]]:
        written = constraints.get("enum")
        if written is None or not isinstance(written, list):
            return None, ()
        values: list[Logical] = []
        for value in written:
            logical = cast_value(value)
            if logical is None:
                kind = "string" if self.type == "any" else self.type
                self._problem("constraints/enum", f"enum value {value!r} is not a valid {kind}")
            elif isinstance(logical, str) and logical.startswith(FORMULA_PREFIXES):
                self._problem("constraints/enum", f"enum value {value!r} would be refused as a spreadsheet formula")
            elif logical in values:
                self._problem("constraints/enum", f"enum value {value!r} is listed twice")
            else:
                values.append(logical)
        if not values and not written:
            self._problem("constraints/enum", "enum is empty: no value would be valid")
        return tuple(values), tuple(_shown(value) for value in written)

    def _lengths(self, constraints: Mapping[str, Any]) -> tuple[int | None, int | None]:
        lengths: list[int | None] = []
        for name in ("minLength", "maxLength"):
            value = constraints.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                self._problem(f"constraints/{name}", f"{name} {value!r} is not a whole number of characters")
                value = None
            lengths.append(value if name in CONSTRAINTS_OF[self.type] else None)
        low, high = lengths
        if low is not None and high is not None and low > high:
            self._problem("constraints/minLength", f"minLength {low} is above maxLength {high}")
        return low, high

    def _pattern(self, constraints: Mapping[str, Any]) -> re.Pattern[str] | None:
        written = constraints.get("pattern")
        if not isinstance(written, str) or "pattern" not in CONSTRAINTS_OF[self.type]:
            return None
        try:
            return re.compile(written)
        except re.error as error:
            self._problem("constraints/pattern", f"pattern {written!r} is not a regular expression: {error}")
            return None

    def _reader(
        self,
        pattern: str | None,
        bounds: Bounds,
        enum: tuple[Logical, ...] | None,
        shown: tuple[str, ...],
        lengths: tuple[int | None, int | None],
        regex: re.Pattern[str] | None,
        true_values: tuple[str, ...],
        false_values: tuple[str, ...],
    ) -> ValueReader:
        allowed = Allowed(frozenset(enum), shown) if enum is not None else None
        if self.type == "integer":
            return IntegerReader(bounds, allowed)
        if self.type == "number":
            return NumberReader(bounds, allowed)
        if self.type == "boolean":
            return BooleanReader(true_values, false_values, frozenset(cast(tuple[bool, ...], enum)) if enum else None)
        if self.type in ("date", "datetime"):
            return TemporalReader(self.type, pattern, bounds, allowed)
        return TextReader(allowed, lengths[0], lengths[1], regex)


def _as_text(text: str) -> Logical | None:
    return text


def _shown(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)
