"""The three steps against a real bare Git origin and a real S3 API on loopback."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from shared_tasks.run.publish import PushConflictError
from shared_tasks.run.steps import modify_data, pull_data, push_data
from shared_tasks.run.workspace import Workspace, WorkspaceError
from shared_tasks.storage.dataset import file_facts
from shared_tasks.storage.layout import read_dataset
from shared_tasks.storage.pointer import Pointer
from shared_tasks.validation.validate import DataValidationError
from shared_tasks.versioning.gitops import GitError
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_SEED_ROWS, bucket_listing, data_edit, foreign_commit, git, origin_head
from tests.test_validate import bad_input_corpus

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

RUN = "manual__2026-11-24T10:00:00+00:00"


def dataset_at(settings: Settings, rev: str, tmp: Path) -> pd.DataFrame:
    """An independent fresh clone at `rev`, with DVC's own CLI, read with pandas."""
    clone = tmp / f"clone-{rev[:8]}"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True)
    git(clone, "checkout", "--quiet", rev)
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": str(settings.s3_endpoint_url)}
    subprocess.run(
        [str(Path(sys.executable).with_name("dvc")), "pull", "--quiet", settings.pointer_path],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
    )
    return read_dataset(clone / settings.data_relpath)


def run_ids_on_origin(settings: Settings) -> list[str | None]:
    return [version.run_id for version in history(settings)]


def test_one_run_makes_exactly_one_commit_that_a_fresh_clone_reproduces(
    settings: Settings, origin: Path, tmp_path: Path
) -> None:
    before = origin_head(origin)
    pulled = pull_data(settings, RUN)
    assert pulled.commit == before and pulled.rows == TEST_SEED_ROWS
    change = modify_data(settings, RUN, records=3)
    assert change.rows_added == 3 and change.first_id == TEST_SEED_ROWS + 1
    version = push_data(settings, RUN, orchestrator="airflow")

    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert origin_head(origin) == version.commit
    assert version.rows == TEST_SEED_ROWS + 3 and version.rows_added == 3
    assert version.s3_url.endswith(f"/files/md5/{version.md5[:2]}/{version.md5[2:]}")
    changed = git(origin, "show", "--name-only", "--format=", version.commit).splitlines()
    assert changed == [settings.pointer_path]

    frame = dataset_at(settings, version.commit, tmp_path)
    assert len(frame) == TEST_SEED_ROWS + 3
    assert frame["Employee ID"].is_unique
    assert (
        frame.attrs == {}
        and file_facts(Workspace.for_run(settings.work_root, RUN).repo / settings.dataset_path).md5 == version.md5
    )

    newest = history(settings)[0]
    assert (newest.commit, newest.md5, newest.run_id, newest.orchestrator) == (
        version.commit,
        version.md5,
        RUN,
        "airflow",
    )
    result = verify(settings, version.commit)
    assert result.ok, result.problems
    assert result.actual_md5 == newest.md5 and result.actual_rows == newest.rows


def test_history_is_newest_first_and_every_version_verifies(settings: Settings) -> None:
    for number in range(2):
        run_pipeline(settings, f"run-{number}", records=number + 1)
    versions = history(settings)
    assert [v.run_id for v in versions] == ["run-1", "run-0", "seed"]
    assert [v.rows for v in versions] == [TEST_SEED_ROWS + 3, TEST_SEED_ROWS + 1, TEST_SEED_ROWS]
    assert [v.rows_added for v in versions[:2]] == [2, 1]
    for version in versions:
        result = verify(settings, version.commit)
        assert result.ok and result.actual_md5 == version.md5


def test_verify_reports_a_version_whose_data_is_gone_from_the_remote(settings: Settings, s3: Any) -> None:
    version = run_pipeline(settings, RUN)
    key = version.s3_url.split("pipeline-test/", 1)[1]
    body = s3.get_object(Bucket="pipeline-test", Key=key)["Body"].read()
    s3.delete_object(Bucket="pipeline-test", Key=key)
    try:
        result = verify(settings, version.commit)
    finally:
        s3.put_object(Bucket="pipeline-test", Key=key, Body=body)
    assert not result.ok
    assert any("dvc pull from remote 'storage' failed" in problem for problem in result.problems)


def test_verify_of_an_unknown_revision_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ValueError, match="no commit 'deadbeef' on the origin"):
        verify(settings, "deadbeef")


def test_rerunning_modify_for_the_same_run_adds_nothing(settings: Settings) -> None:
    pull_data(settings, RUN)
    first = modify_data(settings, RUN, records=2)
    again = modify_data(settings, RUN, records=2)
    assert again == first
    with pytest.raises(WorkspaceError, match="already generated 2 record"):
        modify_data(settings, RUN, records=5)
    version = push_data(settings, RUN)
    assert version.rows == TEST_SEED_ROWS + 2


def test_modify_after_the_version_is_published_is_a_no_op(settings: Settings) -> None:
    run_pipeline(settings, RUN)
    pull_data(settings, RUN)  # e.g. a whole run cleared and re-run
    change = modify_data(settings, RUN)
    assert change.already_published
    version = push_data(settings, RUN)
    assert version.already_published
    assert run_ids_on_origin(settings).count(RUN) == 1


def test_a_run_is_not_mistaken_for_a_published_run_whose_id_starts_the_same(settings: Settings) -> None:
    run_pipeline(settings, RUN + "0")
    pull_data(settings, RUN)
    assert not modify_data(settings, RUN).already_published
    version = push_data(settings, RUN)
    assert not version.already_published
    assert run_ids_on_origin(settings).count(RUN) == 1


def test_steps_out_of_order_get_clear_errors(settings: Settings) -> None:
    with pytest.raises(WorkspaceError, match="pull_data has not run"):
        modify_data(settings, RUN)
    pull_data(settings, RUN)
    with pytest.raises(WorkspaceError, match="modify_data has not run"):
        push_data(settings, RUN)


@pytest.mark.parametrize("bad", ["", " lead", "two\nlines", "x" * 251])
def test_bad_run_ids_are_refused(settings: Settings, bad: str) -> None:
    with pytest.raises(ValueError, match="run_id"):
        pull_data(settings, bad)


def test_bad_orchestrator_name_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="orchestrator"):
        push_data(settings, RUN, orchestrator="Airflow Prod")


def install_hook(origin: Path, name: str, body: str) -> Path:
    hook = origin / "hooks" / name
    hook.write_text("#!/bin/sh\n" + body + "\n")
    hook.chmod(0o755)
    return hook


def test_push_retried_after_dvc_push_succeeded_and_git_push_failed(settings: Settings, origin: Path, s3: Any) -> None:
    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN)
    hook = install_hook(origin, "pre-receive", "echo 'origin is read-only today' >&2; exit 1")
    with pytest.raises(GitError, match="origin is read-only today"):
        push_data(settings, RUN)
    assert origin_head(origin) == before
    pushed_md5 = Pointer.read(Workspace.for_run(settings.work_root, RUN).repo / settings.pointer_path).md5
    assert any(key.endswith(pushed_md5[2:]) for key in bucket_listing(s3)), "dvc push ran before git push"

    hook.unlink()
    version = push_data(settings, RUN)
    assert not version.already_published
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert version.rows == TEST_SEED_ROWS + 1 and version.md5 == pushed_md5


def _push_in_child(settings_json: str, pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    push_data(Settings.model_validate_json(settings_json), RUN)


def test_push_retried_after_git_push_succeeded_and_the_step_died(settings: Settings, origin: Path) -> None:
    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN)
    pid_file = settings.work_root / "pusher.pid"
    # The origin accepts the push, then the pushing step is killed before it can return.
    install_hook(origin, "post-receive", f'kill -9 "$(cat {pid_file})"')
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_push_in_child, args=(settings.model_dump_json(), str(pid_file)))
    child.start()
    child.join(120)
    assert child.exitcode == -9
    after_crash = origin_head(origin)
    assert after_crash != before

    (origin / "hooks" / "post-receive").unlink()
    version = push_data(settings, RUN)
    assert version.already_published and version.commit == after_crash
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert version.rows == TEST_SEED_ROWS + 1


def install_pre_push(settings: Settings, run_id: str, script: str) -> Path:
    """A hook in the run's own clone: runs after its fetch, right before its push."""
    clone = Workspace.for_run(settings.work_root, run_id).repo
    return install_hook(clone / ".git", "pre-push", "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n" + script)


def test_a_rejected_push_rebases_and_keeps_both_changes(
    settings: Settings, settings_env: dict[str, str], origin: Path, tmp_path: Path
) -> None:
    pull_data(settings, "fast-run")
    modify_data(settings, "fast-run", records=3)
    pull_data(settings, "slow-run")
    modify_data(settings, "slow-run", records=2)
    # Between the slow run's fetch and its push, the fast run publishes (once), without waiting for
    # a turn the slow run holds: a writer elsewhere (another volume) that turns cannot order.
    env_exports = "".join(
        f"export {key}='{settings_env[key]}'\n"
        for key in ("PIPELINE_GIT_URL", "PIPELINE_WORK_ROOT", "AWS_ENDPOINT_URL_S3")
    )
    env_exports += "export PIPELINE_PUBLISH_LEASE_SECONDS=0\n"
    install_pre_push(
        settings,
        "slow-run",
        f"{env_exports}[ -e {tmp_path}/raced ] && exit 0\ntouch {tmp_path}/raced\n"
        f"'{sys.executable}' -c 'from shared_tasks.project.settings import load_settings; "
        f'from shared_tasks.run.steps import push_data; push_data(load_settings(), "fast-run")\' >&2',
    )
    slow = push_data(settings, "slow-run")
    fast_commit = git(origin, "rev-parse", f"{slow.commit}^")
    assert slow.attempts == 2
    assert slow.rows == TEST_SEED_ROWS + 5
    assert run_ids_on_origin(settings)[:3] == ["slow-run", "fast-run", "seed"]
    frame = dataset_at(settings, slow.commit, tmp_path)
    assert len(frame) == TEST_SEED_ROWS + 5 and frame["Employee ID"].is_unique
    fast_frame = dataset_at(settings, fast_commit, tmp_path)
    assert frame.head(len(fast_frame)).equals(fast_frame), "the other run's records were dropped"


def test_push_gives_up_after_its_attempts_and_loses_nothing(settings: Settings, origin: Path, tmp_path: Path) -> None:
    bounded = settings.model_copy(update={"push_attempts": 2, "push_backoff_max_seconds": 0.01})
    pull_data(bounded, RUN)
    modify_data(bounded, RUN)
    interloper = tmp_path / "interloper"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(interloper)], check=True)
    git(interloper, "config", "user.email", "i@example.invalid")
    git(interloper, "config", "user.name", "interloper")
    # Every time this run is about to push, another writer lands first.
    install_pre_push(
        bounded,
        RUN,
        f"cd {interloper} && git pull --quiet --ff-only origin main && "
        "git commit --quiet --allow-empty -m interloper && git push --quiet origin HEAD:main",
    )
    with pytest.raises(PushConflictError, match=r"gave up after 2 attempts\. Nothing was lost"):
        push_data(bounded, RUN)
    assert RUN not in run_ids_on_origin(settings)
    (Workspace.for_run(settings.work_root, RUN).repo / ".git" / "hooks" / "pre-push").unlink()
    version = push_data(bounded, RUN)
    assert run_ids_on_origin(settings).count(RUN) == 1
    assert version.rows == TEST_SEED_ROWS + 1
    assert git(origin, "log", "--format=%s", "-1", "main^") == "interloper"


@pytest.mark.parametrize("case", sorted(bad_input_corpus()))
def test_bad_change_file_leaves_origin_and_s3_unchanged(
    settings: Settings, origin: Path, s3: Any, tmp_path: Path, case: str
) -> None:
    data, expected = bad_input_corpus()[case]
    before_head, before_objects = origin_head(origin), bucket_listing(s3)
    pulled = pull_data(settings, RUN)
    bad = tmp_path / "change.csv"
    bad.write_bytes(data)
    with pytest.raises(DataValidationError) as caught:
        modify_data(settings, RUN, change_file=bad)
    assert expected in str(caught.value)
    with pytest.raises(WorkspaceError, match="modify_data has not run"):
        push_data(settings, RUN)
    data_file = Workspace.for_run(settings.work_root, RUN).repo / settings.dataset_path
    assert file_facts(data_file).md5 == pulled.md5
    assert not Workspace.for_run(settings.work_root, RUN).change_file.exists()
    assert origin_head(origin) == before_head
    assert bucket_listing(s3) == before_objects


def test_a_change_file_with_an_existing_employee_id_is_refused(settings: Settings, tmp_path: Path) -> None:
    from shared_tasks.run.generate import generate_records

    change = tmp_path / "change.csv"
    generate_records(1, seed=5, first_id=10).to_csv(change, index=False, lineterminator="\n")
    pull_data(settings, RUN)
    with pytest.raises(DataValidationError, match="column 'Employee ID', value '10': already in the dataset"):
        modify_data(settings, RUN, change_file=change)


def test_a_valid_change_file_is_published_with_its_own_ids(settings: Settings, tmp_path: Path) -> None:
    from shared_tasks.run.generate import generate_records

    change = tmp_path / "change.csv"
    generate_records(2, seed=5, first_id=500_000).to_csv(change, index=False, lineterminator="\n")
    version = run_pipeline(settings, RUN, change_file=change)
    assert version.rows_added == 2
    frame = dataset_at(settings, version.commit, tmp_path)
    assert frame["Employee ID"].tail(2).tolist() == [500_000, 500_001]


def test_pull_refuses_an_origin_dataset_that_breaks_the_schema(settings: Settings, tmp_path: Path) -> None:
    foreign_commit(settings, tmp_path, data_edit(lambda text: text.replace("Monthly Income", "Salary", 1)))
    with pytest.raises(DataValidationError, match="column 'Monthly Income': missing column"):
        pull_data(settings, RUN)


def test_a_pulled_file_is_a_read_only_link_to_the_cache_that_modify_never_writes_through(
    settings: Settings,
) -> None:
    pull_data(settings, RUN)
    data = Workspace.for_run(settings.work_root, RUN).repo / settings.dataset_path
    base_md5 = file_facts(data).md5
    cached = settings.cache_dir / "files" / "md5" / base_md5[:2] / base_md5[2:]
    assert data.stat().st_ino == cached.stat().st_ino, "a checkout should link, not copy, the cached object"
    assert not data.stat().st_mode & 0o222, "a link into the cache must be read-only"
    modify_data(settings, RUN)
    assert data.stat().st_ino != cached.stat().st_ino
    assert file_facts(cached).md5 == base_md5, "the cached object was changed through the workspace"


def test_two_runs_have_separate_workspaces(settings: Settings) -> None:
    first = Workspace.for_run(settings.work_root, "manual__2026-11-24T10:00:00+00:00")
    second = Workspace.for_run(settings.work_root, "manual__2026-11-24T10:00:00+00_00")
    assert first.root != second.root
    assert first.root.parent == settings.work_root / "runs"


def test_a_warm_pull_comes_from_the_shared_cache_and_a_cold_one_names_the_failure(
    settings: Settings, tmp_path: Path
) -> None:
    from shared_tasks.versioning.dvcops import DvcError

    published = run_pipeline(settings, "first")  # the shared cache now holds the head version
    unreachable = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    pulled = pull_data(unreachable, "second")
    assert pulled.md5 == published.md5 and pulled.rows == TEST_SEED_ROWS + 1

    cold = unreachable.model_copy(update={"work_root": tmp_path / "cold"})
    with pytest.raises(DvcError, match=r"dvc pull from remote .storage. failed: DownloadError"):
        pull_data(cold, "third")


def test_a_publisher_that_waits_too_long_for_its_turn_goes_ahead(
    settings: Settings, origin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from filelock import FileLock

    impatient = settings.model_copy(update={"publish_lease_seconds": 0.2})
    impatient.work_root.mkdir(parents=True, exist_ok=True)
    pull_data(impatient, "impatient")
    modify_data(impatient, "impatient")
    with FileLock(str(impatient.publish_lease_file)):  # a stuck publisher holds the turn
        version = push_data(impatient, "impatient")
    assert version.commit == origin_head(origin)
    assert "no publish turn" in caplog.text


def test_a_workspace_whose_state_has_the_earlier_untyped_shape_resumes(settings: Settings, origin: Path) -> None:
    """State files written before the records were typed are read once and upgraded."""
    import json

    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=2)
    workspace = Workspace.for_run(settings.work_root, RUN)
    state = json.loads(workspace.state_file.read_text())
    legacy = {
        "run_id": RUN,
        "pulled": {key: state["pulled"][key] for key in ("commit", "md5", "size", "rows")},
        "applied": state["applied"],
        "extra": {"change": state["change"]},
    }
    workspace.state_file.write_text(json.dumps(legacy))
    assert modify_data(settings, RUN, records=2).rows_added == 2  # found applied, not applied again
    version = push_data(settings, RUN)
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    assert (version.rows, version.rows_added) == (TEST_SEED_ROWS + 2, 2)
    assert "extra" not in json.loads(workspace.state_file.read_text())


def test_an_unreadable_state_file_is_a_clear_error(settings: Settings) -> None:
    pull_data(settings, RUN)
    Workspace.for_run(settings.work_root, RUN).state_file.write_text("{not json")
    with pytest.raises(WorkspaceError, match=r"state file of run .* is not readable"):
        modify_data(settings, RUN)


def test_history_follows_the_configured_origin_and_names_one_it_cannot_read(
    settings: Settings, tmp_path: Path, origin_template: Path
) -> None:
    import shutil

    run_pipeline(settings, "on-the-first-origin")
    assert history(settings)[0].run_id == "on-the-first-origin"
    gone = settings.model_copy(update={"git_url": "file:///nonexistent/repo.git"})
    with pytest.raises(GitError, match=r"cannot read the origin file:///nonexistent/repo\.git"):
        history(gone)
    other = tmp_path / "other.git"
    shutil.copytree(origin_template, other)
    moved = settings.model_copy(update={"git_url": other.as_uri()})
    assert [version.run_id for version in history(moved)] == ["seed"]


def test_the_work_root_and_dvcs_site_cache_are_the_users_own(settings: Settings) -> None:
    settings.work_root.mkdir(parents=True)
    settings.work_root.chmod(0o777)  # as an earlier version of the stack left it
    run_pipeline(settings, RUN)
    assert settings.work_root.stat().st_mode & 0o777 == 0o700
    for directory in [settings.site_cache_dir, *settings.site_cache_dir.rglob("*")]:
        if directory.is_dir():
            assert not directory.stat().st_mode & 0o002, f"{directory} is writable by anyone"


def test_each_step_times_its_own_work_and_its_process_start(settings: Settings) -> None:
    import time

    from shared_tasks.project.pipeline import PIPELINE, StepInputs

    asked = time.time()
    timings = [step.run(settings, RUN, StepInputs(records=1)).timing for step in PIPELINE]
    done = time.time()
    starts = [timing.started_at for timing in timings if timing is not None]
    assert len(starts) == len(PIPELINE) and starts == sorted(starts)
    for timing in timings:
        assert timing is not None and timing.process_started_at is not None
        assert timing.process_started_at <= asked <= timing.started_at  # this process started before the run
        assert 0 < timing.seconds <= done - asked and timing.load_seconds >= 0
    assert sum(timing.seconds for timing in timings if timing) <= done - asked


def test_history_names_the_orchestrator_of_each_step_when_not_all_are_the_runs_own(settings: Settings) -> None:
    pull_data(settings, "mixed-run", runner="airflow")
    modify_data(settings, "mixed-run", runner="dagster")  # a step Airflow cut over to Dagster
    push_data(settings, "mixed-run", orchestrator="airflow", runner="airflow")
    run_pipeline(settings, "plain-run", orchestrator="dagster")
    plain, mixed = history(settings)[:2]
    assert (mixed.orchestrator, mixed.steps_by) == (
        "airflow",
        {"pull_data": "airflow", "modify_data": "dagster", "push_data": "airflow"},
    )
    assert (plain.orchestrator, plain.steps_by) == ("dagster", None)
