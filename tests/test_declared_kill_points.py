"""A declared pipeline's run killed before any state change finishes on retry with exactly one version.

The kill-point generator of `test_kill_points.py`, for a team's pipeline (tests/team_project.py)
on the local backends: the child's process group is killed (SIGKILL) just before the Nth operation
that changes state (a git command that writes, a DVC operation, a rename that makes a file durable:
a team step's kept output, the run's state, the data). Every N of a whole run is tried, so the
kills cover the team's steps as well as the product's pull and publish. The retry runs the step
that died and the ones after it with the same run id and parameters, as an orchestrator does; at
each point another run publishes between the kill and the retry.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pytest

from shared_tasks.project.pipeline import StepInputs, pipeline_steps, run_pipeline
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.versioning.backends import LocalBackends, using_backends
from shared_tasks.versioning.history import history, verify
from shared_tasks.versioning.local_dvc import LocalDvc
from tests.conftest import DVC_INIT_FILES, git
from tests.kill_points_support import count_state_changes
from tests.team_project import SEED_ROWS, seed_origin, write_project

RUN = "killed-team-run"
PARAMS = {"readings": 3}
DONE = "done"


def _run_until_killed(settings_json: str, remote_root: str, kill_at: int, progress: str) -> None:
    os.setpgrp()
    log = Path(progress)
    settings = Settings.model_validate_json(settings_json)
    with using_backends(LocalBackends(Path(remote_root))):
        counting = count_state_changes(kill_at, log, LocalDvc)
        next(counting)
        for step in pipeline_steps(settings):
            with log.open("a") as out:
                out.write(f"step {step.name}\n")
            step.run(settings, RUN, StepInputs(params=PARAMS))
    with log.open("a") as out:
        out.write(f"{DONE}\n")


CHILDREN = multiprocessing.get_context("forkserver")
CHILDREN.set_forkserver_preload([__name__])


def run_child(settings: Settings, remote_root: Path, kill_at: int, progress: Path) -> int:
    args = (settings.model_dump_json(), str(remote_root), kill_at, str(progress))
    child = CHILDREN.Process(target=_run_until_killed, args=args)
    child.start()
    child.join(300)
    assert child.exitcode is not None, "the run did not finish"
    return child.exitcode


def died_in(progress: Path) -> str:
    return [line.split()[1] for line in progress.read_text().splitlines() if line.startswith("step ")][-1]


def fresh(template: Path, root: Path, settings: Settings) -> tuple[Settings, Path, Path]:
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root)
    origin, remote = root / "origin.git", root / "remote"
    return settings.model_copy(update={"git_url": origin.as_uri(), "work_root": root / "work"}), origin, remote


# Every kill point of a declared run (its team steps too) in the single-file layout with the origin
# moving between kill and retry; the built-in pipeline's kill points (tests/test_kill_points.py) cover
# the single file with the origin still and the partitioned layout with it moving, through the same
# publish code.
CASES = [(Layout.SINGLE_FILE, True)]


@pytest.mark.slow  # a forked run per kill point
@pytest.mark.parametrize(
    ("layout", "origin_moves"),
    CASES,
    ids=[f"{layout.value}-{'origin-moves' if moves else 'origin-still'}" for layout, moves in CASES],
)
def test_a_declared_run_killed_before_any_state_change_finishes_on_retry_with_one_version(
    layout: Layout, origin_moves: bool, tmp_path: Path
) -> None:
    project_file = write_project(tmp_path / "team-project", layout, f"killed_team_{layout.name.lower()}")
    base = Settings(git_url="file:///unused", work_root=tmp_path / "unused", project_file=project_file)
    base = base.for_pipeline(None)
    template = tmp_path / "template"
    seed_origin(template, base, template / "remote", DVC_INIT_FILES)
    dry, _, dry_remote = fresh(template, tmp_path / "dry", base)
    assert run_child(dry, dry_remote, 0, tmp_path / "dry.log") == 0
    points = [line for line in (tmp_path / "dry.log").read_text().splitlines() if line.startswith("op ")]
    steps_seen = {
        line.split()[1] for line in (tmp_path / "dry.log").read_text().splitlines() if line.startswith("step ")
    }
    assert steps_seen == {"pull_data", "collect", "clean", "push_data"}
    kept_outputs = [point for point in points if point.endswith(("collect.parquet", "clean.parquet"))]
    assert len(kept_outputs) == 2, points  # the team's steps are among the kill points

    failures: dict[str, str] = {}
    for kill_at in range(1, len(points) + 1):
        settings, origin, remote = fresh(template, tmp_path / "case", base)
        before = git(origin, "rev-parse", "main")
        progress = tmp_path / f"kill-{kill_at}.log"
        exit_code = run_child(settings, remote, kill_at, progress)
        point = f"{points[kill_at - 1]} (in {died_in(progress)})"
        if exit_code != -signal.SIGKILL:
            failures[point] = f"the child exited {exit_code} instead of being killed"
            continue
        with using_backends(LocalBackends(remote)):
            if origin_moves:
                run_pipeline(settings, f"interloper-{kill_at}", params={"readings": 1})
            try:
                names = [step.name for step in pipeline_steps(settings)]
                for step in pipeline_steps(settings)[names.index(died_in(progress)) :]:
                    step.run(settings, RUN, StepInputs(params=PARAMS))
            except Exception as error:  # collected: every kill point is reported
                failures[point] = f"retry failed: {type(error).__name__}: {error}"[:400]
                continue
            ours = [version for version in history(settings) if version.run_id == RUN]
            added = int(git(origin, "rev-list", "--count", f"{before}..main"))
            expected_rows = SEED_ROWS + PARAMS["readings"] + origin_moves
            if len(ours) != 1 or added != 1 + origin_moves:
                failures[point] = f"{len(ours)} version(s) of the run, {added} new commit(s)"
            elif (ours[0].rows, ours[0].rows_added) != (expected_rows, PARAMS["readings"]):
                failures[point] = f"rows {ours[0].rows} (+{ours[0].rows_added}), expected {expected_rows}"
            elif not verify(settings, ours[0].commit, validate=True).ok:
                failures[point] = "the version does not verify"
    assert failures == {}, "\n".join(f"{point}: {why}" for point, why in failures.items())
