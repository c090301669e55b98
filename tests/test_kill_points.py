"""A run killed at any point that changes state finishes on retry with exactly one version.

A step's process is killed (SIGKILL, its whole process group, as when a pod dies) just before
the Nth operation that changes state: a git command that writes (clone, fetch, checkout, reset,
add, commit, push), a DVC operation (checkout/pull, add, push), or a rename that makes a file
write durable (data, parts, the change, the run's state). Between two such operations nothing
durable happens, so killing before each of them, for every N of a whole run, covers every state a
crash can leave. The retry does what an orchestrator does: the step that died runs again with the
same run id, then the steps after it. Every kill point runs in each layout: in the single file
with the origin unchanged, in the partitioned layout with another run publishing a version between
the kill and the retry (the declared pipeline's kill points add the single file with the origin moving).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.pipeline import PIPELINE, StepInputs, run_pipeline
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.versioning.dvcops import Dvc
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_SEED_ROWS, git, make_settings
from tests.kill_points_support import count_state_changes

RUN = "killed-run"
RECORDS = 2
DONE = "done"


@dataclass(frozen=True)
class Case:
    layout: Layout
    origin_moves: bool


def _run_until_killed(settings_json: str, kill_at: int, progress: str) -> None:
    """In the child: every step in order, killed before the `kill_at`-th state change (never with 0)."""
    os.setpgrp()
    log = Path(progress)
    settings = Settings.model_validate_json(settings_json)
    counting = count_state_changes(kill_at, log, Dvc)
    next(counting)
    for step in PIPELINE:
        with log.open("a") as out:
            out.write(f"step {step.name}\n")
        step.run(settings, RUN, StepInputs(records=RECORDS))
    with log.open("a") as out:
        out.write(f"{DONE}\n")


# Children fork from a single-threaded server that has imported the steps: a fork of the test
# process itself would copy its threads' held locks (fsspec's event loop, xdist's channel) and hang.
CHILDREN = multiprocessing.get_context("forkserver")
CHILDREN.set_forkserver_preload([__name__])


def run_child(settings: Settings, kill_at: int, progress: Path) -> int:
    child = CHILDREN.Process(target=_run_until_killed, args=(settings.model_dump_json(), kill_at, str(progress)))
    child.start()
    child.join(300)
    assert child.exitcode is not None, "the step did not finish"
    return child.exitcode


def died_in(progress: Path) -> str:
    steps = [line.split()[1] for line in progress.read_text().splitlines() if line.startswith("step ")]
    return steps[-1]


def retry_from(settings: Settings, step_name: str) -> None:
    names = [step.name for step in PIPELINE]
    for step in PIPELINE[names.index(step_name) :]:
        step.run(settings, RUN, StepInputs(records=RECORDS))


def fresh_settings(template: Path, root: Path, endpoint: str, cache: Path, layout: Layout) -> Settings:
    shutil.rmtree(root, ignore_errors=True)
    origin = root / "origin.git"
    shutil.copytree(template, origin)
    return make_settings(origin.as_uri(), root / "work", endpoint, layout=layout, dvc_cache_dir=cache)


def check_one_version(settings: Settings, origin: Path, before: str, moved: bool) -> str | None:
    """None when the origin holds exactly this run's one version (and the interloper's), verified."""
    versions = history(settings)
    ours = [version for version in versions if version.run_id == RUN]
    added = int(git(origin, "rev-list", "--count", f"{before}..main"))
    if len(ours) != 1 or added != 1 + moved:
        return f"{len(ours)} version(s) of the run, {added} new commit(s)"
    expected_rows = TEST_SEED_ROWS + RECORDS + moved
    if (ours[0].rows, ours[0].rows_added) != (expected_rows, RECORDS):
        return f"rows {ours[0].rows} (+{ours[0].rows_added}), expected {expected_rows} (+{RECORDS})"
    result = verify(settings, ours[0].commit)
    if not result.ok or result.actual_rows != expected_rows:
        return f"verify: {result.problems} rows {result.actual_rows}"
    return None


# Every kill point in each layout; the origin moving between kill and retry in the partitioned one.
# The declared pipeline's kill points (tests/test_declared_kill_points.py) run the single file with
# the origin moving: a declared run publishes through the same code, so the pairs are all covered.
CASES = [Case(Layout.SINGLE_FILE, False), Case(Layout.PARTITIONED, True)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.layout.value}-{'origin-moves' if c.origin_moves else 'origin-still'}"
)
def test_a_run_killed_before_any_state_change_finishes_on_retry_with_one_version(
    request: pytest.FixtureRequest, case: Case, tmp_path: Path, s3_server: Any
) -> None:
    template: Path = request.getfixturevalue(
        "origin_template" if case.layout is Layout.SINGLE_FILE else "partitioned_template"
    )
    cache = tmp_path / "shared-dvc-cache"  # one cache for every kill point, as on the shared volume
    # Counted on a warm shared cache, as every kill point then runs: a first run's cache writes
    # (content-addressed, made once) are not among a later run's operations.
    for dry_run in ("warm", "dry"):
        dry = fresh_settings(template, tmp_path / dry_run, s3_server.endpoint, cache, case.layout)
        assert run_child(dry, 0, tmp_path / f"{dry_run}.log") == 0
    points = [line for line in (tmp_path / "dry.log").read_text().splitlines() if line.startswith("op ")]
    assert len(points) > 12, points  # the run's state changes, counted

    failures: dict[str, str] = {}
    for kill_at in range(1, len(points) + 1):
        settings = fresh_settings(template, tmp_path / "case", s3_server.endpoint, cache, case.layout)
        origin = Path(settings.git_url.removeprefix("file://"))
        before = git(origin, "rev-parse", "main")
        progress = tmp_path / f"kill-{kill_at}.log"
        exit_code = run_child(settings, kill_at, progress)
        point = points[kill_at - 1]
        if exit_code != -signal.SIGKILL:
            failures[point] = f"the child exited {exit_code} instead of being killed"
            continue
        if case.origin_moves:
            run_pipeline(settings, f"interloper-{kill_at}", records=1)
        try:
            retry_from(settings, died_in(progress))
        except Exception as error:  # collected: every kill point is reported, not only the first
            failures[f"{point} (in {died_in(progress)})"] = f"retry failed: {type(error).__name__}: {error}"[:400]
            continue
        problem = check_one_version(settings, origin, before, case.origin_moves)
        if problem is not None:
            failures[f"{point} (in {died_in(progress)})"] = problem
    assert failures == {}, "\n".join(f"{point}: {why}" for point, why in failures.items())
