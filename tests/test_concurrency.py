"""Four runs at once, in separate processes, on one origin: nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared_tasks.history import history, verify
from shared_tasks.settings import Settings
from tests.conftest import REPO_ROOT, TEST_SEED_ROWS
from tests.test_steps import dataset_at

WRITERS = 4


@pytest.mark.slow
def test_four_parallel_runs_give_four_commits_and_keep_every_record(
    settings: Settings, settings_env: dict[str, str], tmp_path: Path
) -> None:
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dataset_pipeline.cli",
                "run",
                "--json",
                "--run-id",
                f"writer-{n}",
                "--records",
                str(n + 1),
            ],
            env=settings_env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        results.append(json.loads(stdout))

    versions = history(settings)
    assert len(versions) == WRITERS + 1
    assert sorted(v.run_id for v in versions[:WRITERS]) == [f"writer-{n}" for n in range(WRITERS)]  # type: ignore[type-var]
    added = sum(n + 1 for n in range(WRITERS))
    assert versions[0].rows == TEST_SEED_ROWS + added
    assert {r["commit"] for r in results} == {v.commit for v in versions[:WRITERS]}

    final = dataset_at(settings, versions[0].commit, tmp_path)
    assert len(final) == TEST_SEED_ROWS + added
    assert final["Employee ID"].is_unique
    assert final["Employee ID"].max() == TEST_SEED_ROWS + added

    for version in versions:
        result = verify(settings, version.commit)
        assert result.ok, (version.commit, result.problems)
    print(f"attempts per writer: {sorted(r['attempts'] for r in results)}")
