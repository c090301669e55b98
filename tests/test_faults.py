"""Faults at each step boundary: the rerun of the same run completes, with no duplicate and nothing lost.

The faults are real: a process killed by SIGKILL (no cleanup runs), an S3 API that does not
answer, a Git origin that refuses. Each test then reruns the same run id and checks the origin
holds exactly one new version with exactly the run's records.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.steps import modify_data, pull_data, push_data
from shared_tasks.run.workspace import Workspace
from shared_tasks.storage.layout import read_dataset
from shared_tasks.storage.pointer import Pointer
from shared_tasks.versioning.dvcops import DvcError
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_SEED_ROWS, bucket_listing, git, origin_head
from tests.test_steps import install_hook

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

RUN = "faulty-run"
RECORDS = 3


def dead_endpoint() -> str:
    """An S3 endpoint on loopback where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def assert_exactly_one_version(settings: Settings, origin: Path, before: str, records: int = RECORDS) -> None:
    assert git(origin, "rev-list", "--count", f"{before}..main") == "1"
    newest = history(settings)[0]
    assert (newest.run_id, newest.rows, newest.rows_added) == (RUN, TEST_SEED_ROWS + records, records)
    result = verify(settings, newest.commit)
    assert result.ok, result.problems
    assert result.actual_rows == TEST_SEED_ROWS + records


# killed --------------------------------------------------------------------------------------


def _die_on(target: str, settings_json: str, step: str) -> None:
    """Run a step in this child process and SIGKILL it when it reaches `target`."""
    import pathlib

    def kill(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)

    if target == "rename":  # the new file is complete, the rename over the old one never happens
        pathlib.Path.replace = kill  # type: ignore[method-assign]
    elif target == "fsync":  # half-way through writing the new file
        os.fsync = kill
    settings = Settings.model_validate_json(settings_json)
    if step == "modify":
        modify_data(settings, RUN, records=RECORDS)
    else:
        push_data(settings, RUN)


def run_and_kill(settings: Settings, target: str, step: str) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=_die_on, args=(target, settings.model_dump_json(), step)
    )
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL


def snapshot(data: Path) -> dict[str, bytes]:
    files = sorted(data.iterdir()) if data.is_dir() else [data]
    return {file.name: file.read_bytes() for file in files}


@pytest.mark.parametrize("layout", [Layout.SINGLE_FILE, Layout.PARTITIONED])
@pytest.mark.parametrize("moment", ["fsync", "rename"])
def test_killed_mid_append_then_rerun_applies_the_change_once(
    request: pytest.FixtureRequest, moment: str, layout: Layout
) -> None:
    settings: Settings = request.getfixturevalue("settings" if layout is Layout.SINGLE_FILE else "partitioned")
    origin = Path(settings.git_url.removeprefix("file://"))
    before = origin_head(origin)
    pull_data(settings, RUN)
    data = Workspace.for_run(settings.work_root, RUN).repo / settings.data_relpath
    pulled = snapshot(data)
    run_and_kill(settings, moment, "modify")
    assert snapshot(data) == pulled  # the old version is whole: no half-written file or part

    modify_data(settings, RUN, records=RECORDS)
    push_data(settings, RUN)
    assert_exactly_one_version(settings, origin, before)
    frame = read_dataset(data)
    assert frame["Employee ID"].is_unique and len(frame) == TEST_SEED_ROWS + RECORDS


def test_killed_between_dvc_push_and_git_push_then_rerun_publishes_once(
    settings: Settings, origin: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=RECORDS)
    # The origin receives the push but the pusher dies before Git updates the branch.
    install_hook(origin, "pre-receive", 'kill -9 "$(cat "$PUSHER_PID_FILE")"; exit 1')
    pid_file = settings.work_root / "pusher.pid"
    monkeypatch.setenv("PUSHER_PID_FILE", str(pid_file))
    child = multiprocessing.get_context("spawn").Process(target=_push_recording_pid, args=(settings, pid_file))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    assert origin_head(origin) == before
    pushed = Pointer.read(Workspace.for_run(settings.work_root, RUN).repo / settings.pointer_path).md5
    assert f"datasets/files/md5/{pushed[:2]}/{pushed[2:]}" in bucket_listing(s3), "dvc push ran before git push"

    (origin / "hooks" / "pre-receive").unlink()
    version = push_data(settings, RUN)
    assert not version.already_published
    assert_exactly_one_version(settings, origin, before)


def _push_recording_pid(settings: Settings, pid_file: Path) -> None:
    pid_file.write_text(str(os.getpid()))
    push_data(settings, RUN)


# S3 and Git unavailable ------------------------------------------------------------------------


def test_s3_down_at_push_fails_clearly_and_the_rerun_publishes_once(settings: Settings, origin: Path) -> None:
    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=RECORDS)
    unreachable = settings.model_copy(update={"s3_endpoint_url": dead_endpoint()})
    with pytest.raises(DvcError, match="dvc push to remote 'storage' failed"):
        push_data(unreachable, RUN)
    assert origin_head(origin) == before  # no pointer to data that is not on the remote

    push_data(settings, RUN)
    assert_exactly_one_version(settings, origin, before)


def test_s3_down_at_a_cold_pull_fails_clearly_and_the_rerun_completes(settings: Settings, origin: Path) -> None:
    before = origin_head(origin)
    unreachable = settings.model_copy(update={"s3_endpoint_url": dead_endpoint()})
    with pytest.raises(DvcError, match="dvc pull from remote 'storage' failed"):
        pull_data(unreachable, RUN)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=RECORDS)
    push_data(settings, RUN)
    assert_exactly_one_version(settings, origin, before)


def test_a_pointer_changed_in_the_work_tree_does_not_stick_the_run_once_the_origin_moved(
    settings: Settings, origin: Path
) -> None:
    """The reproduction of a run killed after `dvc add`, before `git commit`: every retry used to fail."""
    from shared_tasks.project.pipeline import run_pipeline

    before = origin_head(origin)
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=RECORDS)
    pointer = Workspace.for_run(settings.work_root, RUN).repo / settings.pointer_path
    pointer.write_text(pointer.read_text().replace(Pointer.read(pointer).md5, "f" * 32))
    run_pipeline(settings, "another-run")  # the origin moves on
    pull_data(settings, RUN)
    modify_data(settings, RUN, records=RECORDS)
    version = push_data(settings, RUN)
    assert git(origin, "rev-list", "--count", f"{before}..main") == "2"
    assert (version.rows, version.rows_added) == (TEST_SEED_ROWS + 1 + RECORDS, RECORDS)
    assert verify(settings, version.commit).ok
