"""What a raw CSV value of a Table Schema field is: its logical value, or why it is none.

Every check reads values here (a change file row by row, and the whole-dataset validator for any
value its vectorised pass cannot vouch for), so both say the same thing about the same value.
Our own rules are part of the reading: integers, numbers, dates and datetimes are ASCII digits
(no other digits, no spaces around, no '+' on an integer), and text that a spreadsheet would run
as a formula is refused. Logical values: int, float, bool, str, and for dates and datetimes an
int (days, or microseconds, since 1970-01-01; an aware datetime in UTC, a naive one as written),
so that ranges, enums and uniqueness compare numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# Cells starting with these are executed by spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA = "looks like a spreadsheet formula; refusing it"
NOT_AN_INTEGER = "not an integer (ASCII digits 0-9 only)"
NOT_A_NUMBER = "not a number (ASCII digits with an optional sign, '.' and exponent; or NaN, INF, -INF)"
# An unbounded integer is converted only up to Python's own limit on converting text to int.
MOST_INTEGER_DIGITS = sys.get_int_max_str_digits() or 4_300

NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
SPECIAL_NUMBERS = {"NAN": math.nan, "INF": math.inf, "-INF": -math.inf}
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
DEFAULT_TRUE = ("true", "True", "TRUE", "1")
DEFAULT_FALSE = ("false", "False", "FALSE", "0")

Logical = int | float | bool | str
Reading = tuple[Logical | None, str | None]  # (the logical value, None) or (None, why it is no value)


class ValueReader(Protocol):
    def read(self, raw: str) -> Reading: ...


@dataclass(frozen=True)
class Bounds:
    """A range of logical values; each end optional, inclusive or exclusive; `shown` as written."""

    lower: float | None = None
    upper: float | None = None
    lower_exclusive: bool = False
    upper_exclusive: bool = False
    shown_lower: str = ""
    shown_upper: str = ""

    def problem(self, value: float) -> str | None:
        if value != value and self.bounded:  # NaN is in no range: said as its one bound, or both
            return self.violated(below=self.upper is None)
        if self.lower is not None and (value < self.lower or (self.lower_exclusive and value == self.lower)):
            return self.violated(below=True)
        if self.upper is not None and (value > self.upper or (self.upper_exclusive and value == self.upper)):
            return self.violated(below=False)
        return None

    def violated(self, below: bool) -> str:
        """The message of a value outside, on the side named (used as is for a number too long to convert)."""
        if self.lower is not None and self.upper is not None:
            opening, closing = "(" if self.lower_exclusive else "[", ")" if self.upper_exclusive else "]"
            return f"out of range {opening}{self.shown_lower}, {self.shown_upper}{closing}"
        if below and self.lower is not None:
            if self.lower_exclusive:
                return f"not above the exclusive minimum {self.shown_lower}"
            return f"below the minimum {self.shown_lower}"
        if self.upper_exclusive:
            return f"not below the exclusive maximum {self.shown_upper}"
        return f"above the maximum {self.shown_upper}"

    @property
    def bounded(self) -> bool:
        return self.lower is not None or self.upper is not None


@dataclass(frozen=True)
class Allowed:
    """An enum: the logical values allowed, and how the message lists them."""

    values: frozenset[Logical]
    shown: tuple[str, ...]

    @property
    def problem(self) -> str:
        return f"not one of: {', '.join(self.shown)}"


def allowed(values: Sequence[Logical], shown: Sequence[str]) -> Allowed:
    return Allowed(frozenset(values), tuple(shown))


@dataclass(frozen=True)
class IntegerReader:
    bounds: Bounds = field(default_factory=Bounds)
    enum: Allowed | None = None
    digits: int = field(init=False, repr=False, compare=False)  # of the longest number in range
    plain: bool = field(init=False, repr=False, compare=False)  # only inclusive bounds: the quick check says all

    def __post_init__(self) -> None:
        exclusive = self.bounds.lower_exclusive or self.bounds.upper_exclusive
        object.__setattr__(self, "plain", self.enum is None and not exclusive)
        both = self.bounds.lower is not None and self.bounds.upper is not None
        widest = max(-int(self.bounds.lower or 0), int(self.bounds.upper or 0)) if both else 0
        object.__setattr__(self, "digits", len(str(widest)) if both else MOST_INTEGER_DIGITS)

    def read(self, raw: str) -> Reading:
        """Only ASCII digits (a leading '-' is read, to say the number is out of range), nothing around
        them; a number too long to be in range is refused without converting it."""
        negative = raw[:1] == "-"
        digits = raw[1:] if negative else raw
        if not (digits.isdigit() and digits.isascii()):
            return None, NOT_AN_INTEGER
        if len(digits) > self.digits:
            digits = digits.lstrip("0") or "0"
            if len(digits) > self.digits:
                if (self.bounds.lower if negative else self.bounds.upper) is not None:
                    return None, self.bounds.violated(below=negative)
                return None, f"has more than {self.digits:,} digits"
        number = -int(digits) if negative else int(digits)
        bounds = self.bounds
        low, high = bounds.lower, bounds.upper
        if self.plain and (low is None or low <= number) and (high is None or number <= high):
            return number, None
        problem = bounds.problem(number)
        if problem is None and self.enum is not None and number not in self.enum.values:
            problem = self.enum.problem
        return (None, problem) if problem else (number, None)


@dataclass(frozen=True)
class NumberReader:
    bounds: Bounds = field(default_factory=Bounds)
    enum: Allowed | None = None

    def read(self, raw: str) -> Reading:
        if NUMBER.fullmatch(raw):
            number = float(raw)
        elif (special := SPECIAL_NUMBERS.get(raw.upper())) is not None and raw.isascii():
            number = special
        else:
            return None, NOT_A_NUMBER
        problem = self.bounds.problem(number)
        if problem is None and self.enum is not None and number not in self.enum.values:
            problem = self.enum.problem
        return (None, problem) if problem else (canonical_number(number), None)


def canonical_number(number: float) -> float:
    """One logical value for 0.0 and -0.0, and for every NaN."""
    return 0.0 if number == 0 else (math.nan if math.isnan(number) else number)


@dataclass(frozen=True)
class BooleanReader:
    true_values: tuple[str, ...] = DEFAULT_TRUE
    false_values: tuple[str, ...] = DEFAULT_FALSE
    enum: frozenset[bool] | None = None

    def read(self, raw: str) -> Reading:
        if raw in self.true_values:
            value = True
        elif raw in self.false_values:
            value = False
        else:
            return None, f"not one of: {', '.join(self.true_values + self.false_values)}"
        if self.enum is not None and value not in self.enum:
            allowed_values = [v for v in self.true_values + self.false_values if (v in self.true_values) in self.enum]
            return None, f"not one of: {', '.join(allowed_values)}"
        return value, None


def parse_date(raw: str, pattern: str | None) -> int | None:
    """Days since 1970-01-01, or None when `raw` is no date in the format (None: YYYY-MM-DD)."""
    try:
        if pattern is None:
            found = DATE.fullmatch(raw)
            if found is None:
                return None
            day = dt.date(int(found[1]), int(found[2]), int(found[3]))
        elif raw.isascii():
            day = dt.datetime.strptime(raw, pattern).date()
        else:
            return None
    except ValueError:
        return None
    return day.toordinal() - EPOCH_DAY


def parse_datetime(raw: str, pattern: str | None) -> int | None:
    """Microseconds since 1970-01-01T00:00:00 (UTC when an offset is given), or None when no datetime."""
    try:
        if pattern is None:
            found = DATETIME.fullmatch(raw)
            if found is None:
                return None
            year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
            fraction, zone = found[7], found[8]
            micro = int((fraction or "0")[:6].ljust(6, "0"))
            moment = dt.datetime(year, month, day, hour, minute, second, micro)
            if zone not in (None, "Z"):
                hours, minutes = int(zone[1:3]), int(zone[4:6])
                if hours > 23 or minutes > 59:
                    return None
                offset = dt.timedelta(hours=hours, minutes=minutes)
                moment = moment - offset if zone[0] == "+" else moment + offset
        elif raw.isascii():
            moment = dt.datetime.strptime(raw, pattern)
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class TemporalReader:
    """A date or a datetime in the ISO form (`pattern` None) or a strptime pattern."""

    kind: Literal["date", "datetime"]
    pattern: str | None = None
    bounds: Bounds = field(default_factory=Bounds)
    enum: Allowed | None = None

    def read(self, raw: str) -> Reading:
        value = (parse_date if self.kind == "date" else parse_datetime)(raw, self.pattern)
        if value is None:
            return None, self.not_one
        problem = self.bounds.problem(value)
        if problem is None and self.enum is not None and value not in self.enum.values:
            problem = self.enum.problem
        return (None, problem) if problem else (value, None)

    @property
    def not_one(self) -> str:
        if self.pattern is not None:
            return f"not a {self.kind} in the format {self.pattern!r}"
        if self.kind == "date":
            return "not a date (YYYY-MM-DD)"
        return "not a datetime (YYYY-MM-DDThh:mm:ss, an optional fraction, and Z or +hh:mm)"


@dataclass(frozen=True)
class TextReader:
    """A string (or an `any` value): our formula rule first, then the schema's constraints."""

    enum: Allowed | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    formulas_refused: bool = True
    # An enum and nothing else: a value listed is valid (no listed value is a formula, table_fields says).
    listed_is_valid: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        only_enum = self.min_length is None and self.max_length is None and self.pattern is None
        object.__setattr__(self, "listed_is_valid", self.enum is not None and only_enum)

    def read(self, raw: str) -> Reading:
        if self.listed_is_valid and raw in self.enum.values:  # type: ignore[union-attr] # listed_is_valid: an enum
            return raw, None
        if self.formulas_refused and raw.startswith(FORMULA_PREFIXES):
            return None, FORMULA
        if self.enum is not None and raw not in self.enum.values:
            return None, self.enum.problem
        if self.min_length is not None and len(raw) < self.min_length:
            return None, f"shorter than the minimum length {self.min_length}"
        if self.max_length is not None and len(raw) > self.max_length:
            return None, f"longer than the maximum length {self.max_length}"
        if self.pattern is not None and self.pattern.fullmatch(raw) is None:
            return None, f"does not match the pattern {self.pattern.pattern!r}"
        return raw, None
