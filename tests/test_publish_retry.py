"""The one retry of a lost publish race, shared by publish and restore.

A push the origin rejected (another run got there first) is tried again after a jittered, bounded
back-off, up to the configured number of attempts; any other error ends it at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared_tasks.project.settings import Settings
from shared_tasks.run.publish import PushConflictError, PushRejected, retry_lost_races
from tests.conftest import make_settings

ATTEMPTS = 4
BACKOFF_MAX_SECONDS = 0.5


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        "file:///nowhere/origin.git",
        tmp_path / "work",
        "http://127.0.0.1:9",
        push_attempts=ATTEMPTS,
        push_backoff_max_seconds=BACKOFF_MAX_SECONDS,
    )


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-offs taken between attempts, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


def published_on(attempt: int) -> str:
    return f"published on attempt {attempt}"


def losing(times: int, then: Callable[[int], str] = published_on) -> tuple[Callable[[int], str], list[int]]:
    """An attempt that loses the race `times` times, then does `then`; records each attempt's number."""
    made: list[int] = []

    def attempt_once(attempt: int) -> str:
        made.append(attempt)
        if len(made) <= times:
            raise PushRejected(f"rejected: fetch first (attempt {attempt})")
        return then(attempt)

    return attempt_once, made


def test_a_lost_race_is_tried_again_until_the_push_goes_through(settings: Settings, naps: list[float]) -> None:
    attempt_once, made = losing(2)
    assert retry_lost_races(settings, attempt_once, who="run 'r'", advice="rerun it") == "published on attempt 3"
    assert made == [1, 2, 3]
    assert len(naps) == 2 and all(0 <= nap <= BACKOFF_MAX_SECONDS for nap in naps), naps


def test_it_gives_up_after_the_configured_attempts_naming_them(settings: Settings, naps: list[float]) -> None:
    attempt_once, made = losing(ATTEMPTS + 5)
    with pytest.raises(PushConflictError) as raised:
        retry_lost_races(settings, attempt_once, who="restore 'r'", advice="Nothing was published; run it again")
    assert str(raised.value) == (
        f"restore 'r': the origin kept moving; gave up after {ATTEMPTS} attempts. Nothing was published; run it again"
    )
    assert made == list(range(1, ATTEMPTS + 1))
    assert len(naps) == ATTEMPTS - 1 and all(0 <= nap <= BACKOFF_MAX_SECONDS for nap in naps), naps
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_one_attempt_configured_means_no_retry(settings: Settings, naps: list[float]) -> None:
    attempt_once, made = losing(1)
    with pytest.raises(PushConflictError, match=r"gave up after 1 attempts\."):
        retry_lost_races(settings.model_copy(update={"push_attempts": 1}), attempt_once, who="run 'r'", advice="")
    assert (made, naps) == ([1], [])


@pytest.mark.parametrize(
    "error",
    [ValueError("the change no longer applies"), PushConflictError("gave up inside"), OSError("disk full")],
    ids=lambda error: type(error).__name__,
)
def test_any_other_error_ends_it_at_once(settings: Settings, naps: list[float], error: Exception) -> None:
    def fail(attempt: int) -> str:
        raise error

    attempt_once, made = losing(1, then=fail)
    with pytest.raises(type(error)) as raised:
        retry_lost_races(settings, attempt_once, who="run 'r'", advice="rerun it")
    assert raised.value is error
    assert made == [1, 2] and len(naps) == 1  # the lost race was retried, the error was not
