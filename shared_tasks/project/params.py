"""A declared pipeline's run parameters: typed, with a default and bounds, checked before a run works.

Airflow shows them in its trigger form and checks their JSON Schema there; Dagster's run config has
no bounds, so every step checks the run's values again against these.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
}


class ParamSpec(BaseModel):
    """A run parameter: an Airflow trigger-form Param and a Dagster run-config field alike."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["integer", "number", "string", "boolean"]
    default: int | float | str | bool
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _default_fits(self) -> Self:
        python_type = _PYTHON_TYPES[self.type]
        if isinstance(self.default, bool) != (self.type == "boolean") or not isinstance(self.default, python_type):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("integer", "number"):
            raise ValueError(f"minimum and maximum apply to integer and number parameters, not {self.type}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum} is above maximum {self.maximum}")
        self.check(self.default, "default")
        return self

    def check(self, value: Any, name: str) -> int | float | str | bool:
        """The value as this parameter's type, or a ValueError naming the parameter and the bound."""
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"parameter {name!r} must be true or false, got {value!r}")
            return value
        if self.type == "string":
            if not isinstance(value, str):
                raise ValueError(f"parameter {name!r} must be a string, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {name!r} must be a{'n integer' if self.type == 'integer' else ' number'}")
        if self.type == "integer" and not float(value).is_integer():
            raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")
        number: int | float = int(value) if self.type == "integer" else float(value)
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"parameter {name!r} is {number}, below its minimum {_shown(self.minimum)}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"parameter {name!r} is {number}, above its maximum {_shown(self.maximum)}")
        return number


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)
