"""Four runs at once, in separate processes, on one origin: nothing lost.

With publish turns (the default) the writers take turns on the shared volume, so none uploads
in vain; without them Git's atomic ref update alone keeps every record, at the cost of retries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.settings import Settings
from shared_tasks.versioning.history import history, verify
from tests.conftest import REPO_ROOT, TEST_SEED_ROWS, bucket_listing
from tests.test_steps import dataset_at

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

WRITERS = 4


@pytest.mark.slow
@pytest.mark.parametrize("turns", [True, False], ids=["publish-turns", "no-turns"])
def test_four_parallel_runs_give_four_commits_and_keep_every_record(
    settings: Settings, settings_env: dict[str, str], tmp_path: Path, s3: Any, turns: bool
) -> None:
    if not turns:
        settings_env = {**settings_env, "PIPELINE_PUBLISH_LEASE_SECONDS": "0"}
    objects_before = set(bucket_listing(s3))
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
    attempts = sorted(r["attempts"] for r in results)
    version_objects = {f"datasets/files/md5/{v.md5[:2]}/{v.md5[2:]}" for v in versions[:WRITERS]}
    orphans = set(bucket_listing(s3)) - objects_before - version_objects
    print(f"turns={turns}: attempts per writer {attempts}, orphan objects {len(orphans)}")
    if turns:
        assert all(r["had_turn"] is not None for r in results)
        if all(r["had_turn"] for r in results):  # no wait outlasted the lease: each uploaded once
            assert attempts == [1] * WRITERS
            assert orphans == set()
