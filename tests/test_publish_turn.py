"""A publisher reports whether it had its publish turn, so a test of turns can show they were taken."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shared_tasks.project.settings import Settings
from shared_tasks.run.publish import publish_turn


def settings_with_lease(work_root: Path, seconds: float) -> Settings:
    return Settings(git_url="file:///nowhere.git", work_root=work_root, publish_lease_seconds=seconds)


def test_a_free_turn_is_taken(tmp_path: Path) -> None:
    with publish_turn(settings_with_lease(tmp_path, 5), "run") as had_turn:
        assert had_turn is True


def test_a_turn_held_past_the_lease_is_gone_without(tmp_path: Path) -> None:
    settings = settings_with_lease(tmp_path, 0.3)
    settings.work_root.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        ["flock", str(settings.publish_lease_file), "-c", "echo held; exec sleep 60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"  # the other publisher has it
        with publish_turn(settings, "run") as had_turn:
            assert had_turn is False
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_turns_switched_off_are_neither_taken_nor_missed(tmp_path: Path) -> None:
    with publish_turn(settings_with_lease(tmp_path, 0), "run") as had_turn:
        assert had_turn is None
