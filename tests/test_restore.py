"""`restore REV`: a new version with REV's data, nothing uploaded, history append-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from shared_tasks.run.restore import RestoreError, restore_version
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_BUCKET, TEST_SEED_ROWS, bucket_listing, data_edit, foreign_commit, git, origin_head

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow


def test_a_restored_version_holds_exactly_revs_data_and_the_next_run_builds_on_it(
    settings: Settings, origin: Path, s3: Any, tmp_path: Path
) -> None:
    good = run_pipeline(settings, "good", records=2)
    bad = foreign_commit(settings, tmp_path, data_edit(lambda text: text.replace("Monthly Income", "Salary", 1)))
    objects = bucket_listing(s3)

    restored = restore_version(settings, good.commit, "restore-1")
    assert bucket_listing(s3) == objects  # nothing uploaded: the data was on the remote already
    assert git(origin, "rev-parse", f"{restored.commit}^") == bad  # one more commit: history is append-only
    newest = history(settings)[0]
    assert (newest.commit, newest.md5, newest.rows) == (restored.commit, good.md5, good.rows)
    assert (newest.orchestrator, newest.restored_from, newest.run_id) == ("restore", good.commit, "restore-1")
    assert verify(settings, restored.commit).ok

    again = restore_version(settings, good.commit, "restore-1")  # the same run id: the version it made
    assert again.already_published and again.commit == restored.commit
    after = run_pipeline(settings, "after-restore", records=1)
    assert after.rows == TEST_SEED_ROWS + 3 and verify(settings, after.commit).ok


def test_a_version_whose_objects_left_the_remote_is_not_restored(settings: Settings, origin: Path, s3: Any) -> None:
    gone = run_pipeline(settings, "soon-gone", records=1)
    run_pipeline(settings, "later", records=1)
    key = gone.s3_url.split(f"{TEST_BUCKET}/", 1)[1]
    body = s3.get_object(Bucket=TEST_BUCKET, Key=key)["Body"].read()
    s3.delete_object(Bucket=TEST_BUCKET, Key=key)
    head = origin_head(origin)
    try:
        with pytest.raises(RestoreError, match=r"1 object\(s\) of .* are not on the remote"):
            restore_version(settings, gone.commit, "restore-gone")
    finally:
        s3.put_object(Bucket=TEST_BUCKET, Key=key, Body=body)
    assert origin_head(origin) == head


@pytest.mark.parametrize("rev", ["0" * 40, "no-such-branch"])
def test_a_revision_that_is_not_a_version_on_the_branch_is_refused(settings: Settings, rev: str) -> None:
    with pytest.raises(ValueError, match=r"no commit|not a version"):
        restore_version(settings, rev, "restore-nothing")
