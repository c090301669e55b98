"""The dataset's schema: the single place that names its columns, types and value sets.

Generation, validation and the header check all read this table, so a column added here
is generated, validated and checked everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntColumn:
    name: str
    valid_min: int
    valid_max: int
    typical_min: int
    typical_max: int

    def __post_init__(self) -> None:
        if not self.valid_min <= self.typical_min <= self.typical_max <= self.valid_max:
            raise ValueError(f"column {self.name!r}: typical range must lie inside the valid range")


@dataclass(frozen=True)
class CategoryColumn:
    name: str
    values: tuple[str, ...]


Column = IntColumn | CategoryColumn

YES_NO = ("Yes", "No")
FOUR_GRADES = ("Poor", "Fair", "Good", "Excellent")
FOUR_LEVELS = ("Low", "Medium", "High", "Very High")

ID_COLUMN = "Employee ID"

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
