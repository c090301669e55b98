"""The employee-attrition pipeline's one step: plain Python, no orchestrator, no Git, no DVC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared_tasks.run.generate import generate_records
from shared_tasks.validation.schema import ID_COLUMN

if TYPE_CHECKING:
    import pandas as pd

    from shared_tasks.run.team_steps import StepContext


def generate_employees(ctx: StepContext) -> pd.DataFrame:
    """`records` employees seeded by the run and the step, so a retry draws the same ones; their
    Employee IDs are assigned when the output is appended (largest + 1, ...)."""
    employees = generate_records(int(ctx.params["records"]), ctx.seed)
    return employees.drop(columns=[ID_COLUMN])
