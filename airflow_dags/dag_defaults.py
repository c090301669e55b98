"""What every pipeline's DAG shares: its schedule, one run at a time, and the steps' retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared_tasks.project.settings import OrchestrationSettings


def pipeline_dag_arguments(orchestration: OrchestrationSettings) -> dict[str, Any]:
    """The DAG's arguments from the settings; PIPELINE_SCHEDULE=none leaves manual and asset-triggered runs only."""
    return {
        "schedule": orchestration.schedule,
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "retries": orchestration.step_retries,
            "retry_delay": timedelta(seconds=orchestration.retry_delay_seconds),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(seconds=orchestration.retry_delay_max_seconds),
        },
    }
