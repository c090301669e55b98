"""The bare run (no orchestrator) against the shared run contract."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from tests.contract import RunContract

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

_run_numbers = itertools.count()


class TestDirectRun(RunContract):
    orchestrator: ClassVar[str] = "direct"

    def publish(self, settings: Settings, records: int) -> dict[str, Any]:
        return run_pipeline(settings, f"direct-contract-{next(_run_numbers)}", records=records).to_dict()
