"""The contract of "a run through X": the same assertions for a direct, Airflow or Dagster run.

A subclass says how to make one version through its orchestrator (`publish`) and which name
that orchestrator writes into the commit; the tests are shared, so no runner can drift from
what the others guarantee.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from shared_tasks.project.settings import Settings
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_SEED_ROWS, git, origin_head


class RunContract:
    orchestrator: ClassVar[str]

    def publish(self, settings: Settings, records: int) -> dict[str, Any]:
        """Make one version adding `records` records; return the published version's record."""
        raise NotImplementedError

    def test_one_run_makes_exactly_one_verifiable_version(self, settings: Settings, origin: Path) -> None:
        before = origin_head(origin)
        version = self.publish(settings, records=2)
        assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
        newest = history(settings)[0]
        assert newest.commit == version["commit"] == origin_head(origin)
        assert newest.orchestrator == self.orchestrator
        assert newest.run_id == version["run_id"]
        assert (newest.rows, newest.rows_added) == (TEST_SEED_ROWS + 2, 2)
        assert version["md5"] == newest.md5
        result = verify(settings, newest.commit)
        assert result.ok, result.problems
        assert result.actual_rows == TEST_SEED_ROWS + 2

    def test_consecutive_runs_each_add_their_own_records(self, settings: Settings) -> None:
        first = self.publish(settings, records=1)
        second = self.publish(settings, records=3)
        assert first["run_id"] != second["run_id"]
        versions = history(settings)
        assert [v.rows_added for v in versions[:2]] == [3, 1]
        assert versions[0].rows == TEST_SEED_ROWS + 4
