"""A team's first hour, as the README walks it: every command of its block run as written.

From a folder holding nothing but the team's CSV (generated: a compound key, columns of every type,
missing values) to versions published directly, through Airflow, through Dagster, and through
Airflow with a step cut over to Dagster and back, on a local stack of the test's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli, hermetic_environment
from tests.test_schema_infer import generated_rows, write_csv
from tests.walkthrough import first_hour_commands, stack_environment, walk_through

pytestmark = pytest.mark.slow


def test_the_readmes_first_hour_runs_as_written_from_a_csv_to_versions_by_each_orchestrator(
    tmp_path: Path, session_home: Path
) -> None:
    commands = first_hour_commands()
    assert any("--via airflow" in line for line in commands) and any("--via dagster" in line for line in commands)
    header, rows, _ = generated_rows()
    folder = tmp_path / "team"
    folder.mkdir()
    write_csv(folder / "readings.csv", header, rows)
    env = stack_environment(hermetic_environment(session_home), tmp_path / "stack")
    try:
        walked = walk_through(commands, folder, env)
    finally:
        cli("stack", "down", env=env)
    assert walked.returncode == 0, f"the README's line {walked.failed_line!r} failed:\n{walked.output[-6000:]}"
    assert len(walked.seconds) == len(commands), "every line ran"
    assert "4 passed" in walked.output, "the generated tests ran and passed"

    project = folder / "readings"
    listed = cli("history", "--pipeline", "readings", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)
    assert [v["orchestrator"] for v in versions] == ["airflow", "airflow", "dagster", "airflow", "direct", "adopt"]
    by_step = [v["steps_by"] for v in versions]
    assert by_step[0] == {"pull_data": "airflow", "refresh": "dagster", "push_data": "airflow"}, "refresh cut over"
    runners = ("airflow", "dagster", "airflow", "direct")  # the shadowed run's refresh is Airflow's own
    assert by_step[1:5] == [dict.fromkeys(by_step[0], runner) for runner in runners]
    assert all(v["md5"] for v in versions) and len({v["commit"] for v in versions}) == 6
    assert "1 matched, 0 differed" in walked.output, "the shadow run matched, and `cutover` said so"
    assert versions[-1]["rows"] == len(rows), "the CSV adopted whole"
    assert (project / "cutover.readings.yaml").read_text().count("airflow") >= 1, "the step is back in Airflow"
