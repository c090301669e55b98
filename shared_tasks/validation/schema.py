"""The dataset's schema: the single place that names its columns, types and value sets, and says
what a value of each column must be.

Generation, validation and the header check all read this table, so a column added here
is generated, validated and checked everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPORTED_PROBLEMS = 20
# Cells starting with these are executed by spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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
    name: str
    valid_min: int
    valid_max: int
    typical_min: int
    typical_max: int
    digits: int = field(init=False, repr=False, compare=False)  # of the longest number in range

    def __post_init__(self) -> None:
        if not self.valid_min <= self.typical_min <= self.typical_max <= self.valid_max:
            raise ValueError(f"column {self.name!r}: typical range must lie inside the valid range")
        object.__setattr__(self, "digits", len(str(max(-self.valid_min, self.valid_max))))

    def problem(self, raw: str) -> str | None:
        """Why `raw` is no value of this column, or None. Only ASCII digits (a leading '-' is read, to
        say the number is out of range), nothing around them; a number too long to be in range is
        refused without converting it."""
        negative = raw[:1] == "-"
        digits = raw[1:] if negative else raw
        if not (digits.isdigit() and digits.isascii()):
            return "not an integer (ASCII digits 0-9 only)"
        if len(digits) > self.digits:
            digits = digits.lstrip("0") or "0"
        number = int(digits) if len(digits) <= self.digits else None
        if number is None or not self.valid_min <= (-number if negative else number) <= self.valid_max:
            return f"out of range [{self.valid_min}, {self.valid_max}]"
        return None


@dataclass(frozen=True)
class CategoryColumn:
    name: str
    values: tuple[str, ...]

    def problem(self, raw: str) -> str | None:
        """Why `raw` is no value of this column, or None: the value set is matched exactly."""
        if raw.startswith(FORMULA_PREFIXES):
            return "looks like a spreadsheet formula; refusing it"
        if raw not in self.values:
            return f"not one of: {', '.join(self.values)}"
        return None


Column = IntColumn | CategoryColumn

YES_NO = ("Yes", "No")
FOUR_GRADES = ("Poor", "Fair", "Good", "Excellent")
FOUR_LEVELS = ("Low", "Medium", "High", "Very High")

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

COLUMNS: tuple[Column, ...] = (
    IntColumn(ID_COLUMN, 1, 2**53, 1, 2**31),
    IntColumn("Age", 14, 100, 18, 59),
    CategoryColumn("Gender", ("Male", "Female")),
    IntColumn("Years at Company", 0, 80, 1, 51),
    CategoryColumn("Job Role", ("Education", "Media", "Healthcare", "Technology", "Finance")),
    IntColumn("Monthly Income", 0, 1_000_000, 1_316, 16_149),
    CategoryColumn("Work-Life Balance", FOUR_GRADES),
    CategoryColumn("Job Satisfaction", FOUR_LEVELS),
    CategoryColumn("Performance Rating", ("Low", "Below Average", "Average", "High")),
    IntColumn("Number of Promotions", 0, 50, 0, 4),
    CategoryColumn("Overtime", YES_NO),
    IntColumn("Distance from Home", 0, 1_000, 1, 99),
    CategoryColumn(
        "Education Level",
        (
            "High School",
            "Associate Degree",
            "Bachelor\u2019s Degree",
            "Master\u2019s Degree",
            "PhD",
        ),
    ),
    CategoryColumn("Marital Status", ("Single", "Married", "Divorced")),
    IntColumn("Number of Dependents", 0, 30, 0, 6),
    CategoryColumn("Job Level", ("Entry", "Mid", "Senior")),
    CategoryColumn("Company Size", ("Small", "Medium", "Large")),
    IntColumn("Company Tenure", 0, 300, 2, 128),
    CategoryColumn("Remote Work", YES_NO),
    CategoryColumn("Leadership Opportunities", YES_NO),
    CategoryColumn("Innovation Opportunities", YES_NO),
    CategoryColumn("Company Reputation", FOUR_GRADES),
    CategoryColumn("Employee Recognition", FOUR_LEVELS),
    CategoryColumn("Attrition", ("Stayed", "Left")),
    CategoryColumn("dataset_type", ("train", "test")),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
COLUMNS_BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}

# The CSV dialect every file of this dataset is written in.
CSV_ENCODING = "utf-8"
CSV_LINE_TERMINATOR = "\n"
