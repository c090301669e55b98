"""The three steps end to end in the fast lane: a real bare Git origin, DVC's remote a local folder.

The same guarantees `test_steps.py` checks against S3 and DVC, here through the local backends
(`shared_tasks.versioning.backends.LocalBackends`), so every change to the steps is exercised by
`make test-fast`. What a run published is read back from the origin and the remote folder itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.steps import modify_data, pull_data, push_data
from shared_tasks.run.workspace import Workspace
from shared_tasks.storage.pointer import Pointer, directory_manifest
from shared_tasks.validation.schema import COLUMN_NAMES, ID_COLUMN, DataValidationError
from shared_tasks.versioning.backends import Backends, LocalBackends, using_backends
from shared_tasks.versioning.gitops import Git, PushOutcome
from shared_tasks.versioning.history import history, verify
from shared_tasks.versioning.interfaces import DvcClient, GitClient
from tests.conftest import (
    REPO_ROOT,
    TEST_REMOTE_URL,
    TEST_SEED_ROWS,
    LocalVersioning,
    git,
    local_foreign_commit,
    origin_head,
)
from tests.test_trust import DAMAGE, damaged

RUN = "manual__2026-11-24T10:00:00+00:00"


@pytest.fixture(params=[Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def versioning(request: pytest.FixtureRequest) -> LocalVersioning:
    fixture = "local_versioning" if request.param is Layout.SINGLE_FILE else "local_partitioned"
    local: LocalVersioning = request.getfixturevalue(fixture)
    return local


def published_bytes(versioning: LocalVersioning, md5: str) -> bytes:
    """The dataset a pointer names, read from the remote folder alone (a directory's parts joined,
    one header): what anyone pulling the version gets."""
    if not md5.endswith(".dir"):
        return versioning.remote_object(md5).read_bytes()
    manifest = versioning.remote_object(md5).read_bytes()
    assert hashlib.md5(manifest).hexdigest() + ".dir" == md5, "the manifest is not the one its name says"
    entries = {entry["relpath"]: entry["md5"] for entry in json.loads(manifest)}
    assert directory_manifest(entries) == manifest, "the manifest is not DVC's own form"
    parts = [versioning.remote_object(entries[name]).read_bytes() for name in sorted(entries)]
    for name, part in zip(sorted(entries), parts, strict=True):
        assert hashlib.md5(part).hexdigest() == entries[name], f"part {name} is not the bytes its md5 names"
    header, *bodies = [part.split(b"\n", 1) for part in parts]
    return header[0] + b"\n" + header[1] + b"".join(body[1] for body in bodies)


def records(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data))


def pointer_at(versioning: LocalVersioning, commit: str) -> Pointer:
    return Pointer.parse(git(versioning.origin, "show", f"{commit}:{versioning.settings.pointer_path}"))


def test_a_run_publishes_exactly_one_version_whose_pointer_names_the_published_bytes(
    versioning: LocalVersioning,
) -> None:
    settings, origin = versioning.settings, versioning.origin
    before = origin_head(origin)
    seed = records(published_bytes(versioning, pointer_at(versioning, before).md5))

    pulled = pull_data(settings, RUN)
    assert (pulled.commit, pulled.rows) == (before, TEST_SEED_ROWS)
    change = modify_data(settings, RUN, records=3)
    assert (change.rows_added, change.first_id, change.last_id) == (3, TEST_SEED_ROWS + 1, TEST_SEED_ROWS + 3)
    version = push_data(settings, RUN, orchestrator="airflow")

    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert origin_head(origin) == version.commit
    assert git(origin, "show", "--name-only", "--format=", version.commit).splitlines() == [settings.pointer_path]
    pointer = pointer_at(versioning, version.commit)
    assert pointer.md5 == version.md5
    data = published_bytes(versioning, version.md5)
    if settings.layout is Layout.SINGLE_FILE:
        assert hashlib.md5(data).hexdigest() == version.md5 and pointer.size == len(data)
    assert version.s3_url == f"{TEST_REMOTE_URL}/files/md5/{version.md5[:2]}/{version.md5[2:]}"
    assert versioning.remote_object(version.md5).is_file()

    published = records(data)
    assert len(published) == TEST_SEED_ROWS + 3 == version.rows and version.rows_added == 3
    assert published.head(TEST_SEED_ROWS).equals(seed), "the seed's records changed"
    assert published[ID_COLUMN].tail(3).tolist() == [TEST_SEED_ROWS + 1, TEST_SEED_ROWS + 2, TEST_SEED_ROWS + 3]
    newest = history(settings)[0]
    assert (newest.commit, newest.md5, newest.run_id, newest.orchestrator) == (
        version.commit,
        version.md5,
        RUN,
        "airflow",
    )
    result = verify(settings, version.commit, validate=True)  # a fresh clone and an empty cache: from the remote
    assert result.ok, result.problems
    assert (result.actual_md5, result.actual_rows) == (version.md5, TEST_SEED_ROWS + 3)


def test_a_retry_of_a_finished_run_publishes_nothing_new(local_versioning: LocalVersioning) -> None:
    settings, origin = local_versioning.settings, local_versioning.origin
    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=2)
    first = push_data(settings, RUN)
    remote_after_first = local_versioning.remote_objects()

    again = push_data(settings, RUN)  # the push step retried
    pull_data(settings, RUN)  # the whole run retried
    redone = modify_data(settings, RUN, records=2)
    last = push_data(settings, RUN)

    assert not first.already_published and again.already_published and last.already_published
    assert redone.already_published and redone.md5 == first.md5
    assert again.commit == last.commit == first.commit == origin_head(origin)
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert [version.run_id for version in history(settings)] == [RUN, "seed"]
    assert local_versioning.remote_objects() == remote_after_first, "a retry uploaded something"


class RacedBackends(Backends):
    """The local backends, but the first push from `loser`'s clone lets `interloper` publish first."""

    def __init__(self, local: LocalBackends, loser: str, interloper: Callable[[], None]) -> None:
        self.local, self.loser, self.interloper = local, loser, interloper
        self.raced = False

    def dvc(self, settings: Settings, root: Path, redactor: Redactor, cache_dir: Path | None = None) -> DvcClient:
        return self.local.dvc(settings, root, redactor, cache_dir)

    def git(self, settings: Settings, cwd: Path, redactor: Redactor) -> GitClient:
        return GitLosingOneRace(settings, cwd, redactor, self)

    def before_push(self, settings: Settings, cwd: Path) -> None:
        if not self.raced and cwd == Workspace.for_run(settings.work_root, self.loser).repo:
            self.raced = True
            self.interloper()


class GitLosingOneRace(Git):
    def __init__(self, settings: Settings, cwd: Path, redactor: Redactor, race: RacedBackends) -> None:
        super().__init__(settings, cwd, redactor)
        self.race = race

    def push(self) -> PushOutcome:
        self.race.before_push(self.settings, self.cwd)
        return super().push()


def test_a_lost_publish_race_reapplies_the_change_on_the_new_head(local_versioning: LocalVersioning) -> None:
    settings = local_versioning.settings.model_copy(update={"publish_lease_seconds": 0})
    origin, before = local_versioning.origin, origin_head(local_versioning.origin)

    def fast_run_publishes() -> None:
        pull_data(settings, "fast-run")
        modify_data(settings, "fast-run", records=3)
        push_data(settings, "fast-run")

    pull_data(settings, "slow-run")
    slow_change = modify_data(settings, "slow-run", records=2)
    assert slow_change.first_id == TEST_SEED_ROWS + 1  # the ids it had on the seed
    racing = RacedBackends(LocalBackends(local_versioning.remote_root), "slow-run", fast_run_publishes)
    with using_backends(racing):
        slow = push_data(settings, "slow-run")

    assert racing.raced, "the race was not run"
    assert slow.attempts == 2 and not slow.already_published
    assert [version.run_id for version in history(settings)] == ["slow-run", "fast-run", "seed"]
    fast_commit = git(origin, "rev-parse", f"{slow.commit}^")
    assert git(origin, "rev-parse", f"{fast_commit}^") == before
    fast_data = published_bytes(local_versioning, pointer_at(local_versioning, fast_commit).md5)
    slow_data = published_bytes(local_versioning, slow.md5)
    assert slow_data.startswith(fast_data), "the other run's records were dropped"
    slow_records = records(slow_data)
    assert len(slow_records) == slow.rows == TEST_SEED_ROWS + 5 and slow.rows_added == 2
    assert slow_records[ID_COLUMN].is_unique
    assert slow_records[ID_COLUMN].tail(2).tolist() == [TEST_SEED_ROWS + 4, TEST_SEED_ROWS + 5]
    kept = pd.read_csv(Workspace.for_run(settings.work_root, "slow-run").change_file)
    others = [name for name in COLUMN_NAMES if name != ID_COLUMN]
    assert slow_records[others].tail(2).reset_index(drop=True).equals(kept[others]), "not the run's own records"


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_bad_pulled_version_is_refused_naming_where(
    local_versioning: LocalVersioning, tmp_path: Path, case: str
) -> None:
    edit, expected = DAMAGE[case]
    bad = local_foreign_commit(local_versioning, tmp_path, damaged(edit))
    with pytest.raises(DataValidationError) as refused:
        pull_data(local_versioning.settings, RUN)
    assert expected in str(refused.value)
    assert f"the version at {bad[:12]}" in str(refused.value), "the refusal does not name the commit"
    assert origin_head(local_versioning.origin) == bad


def test_a_run_through_the_local_backends_loads_neither_dvc_nor_an_s3_client(local_versioning: LocalVersioning) -> None:
    settings = local_versioning.settings
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from shared_tasks.project.settings import Settings\n"
        "from shared_tasks.run.steps import modify_data, pull_data, push_data\n"
        "from shared_tasks.versioning.backends import LocalBackends, using_backends\n"
        "settings = Settings.model_validate_json(sys.argv[1])\n"
        "with using_backends(LocalBackends(Path(sys.argv[2]))):\n"
        "    pull_data(settings, 'probe'); modify_data(settings, 'probe'); version = push_data(settings, 'probe')\n"
        "roots = {'dvc', 'dvc_data', 'dvc_objects', 's3fs', 'boto3', 'botocore', 'aiobotocore'}\n"
        "print(json.dumps([version.commit, sorted({m.split('.')[0] for m in sys.modules} & roots)]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, settings.model_dump_json(), str(local_versioning.remote_root)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    commit, loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert commit == origin_head(local_versioning.origin)
    assert loaded == []
