"""How long and how often the clients try: the one busy-API retry policy, and polling until something holds.

Both orchestrators on the local stack keep their state in SQLite, which lets one writer in at a
time: while others write, an API call can fail or answer late. Such calls are sent again for up
to a minute. Tests swap `BUSY_API_WAIT` and `BUSY_API_STOP` for speed; they are read at each call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_base,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
    wait_random_exponential,
)

BUSY_API_STOP = stop_after_delay(60)
BUSY_API_WAIT = wait_random_exponential(multiplier=0.5, max=8)


def busy_api_retrying(retry: retry_base, **options: Any) -> Retrying:
    """The one retry policy for calls to an orchestrator's API."""
    return Retrying(stop=BUSY_API_STOP, wait=BUSY_API_WAIT, retry=retry, **options)


def poll_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float,
    timed_out: Callable[[], Exception],
) -> None:
    """Call `condition` every `interval` seconds until it is true; `timed_out()` is raised after `timeout`.

    An exception raised by `condition` ends the wait at once: that is how a wait fails early, for
    instance when the process it waits for has died.
    """

    def give_up(state: RetryCallState) -> None:
        raise timed_out()

    Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda done: not done),
        retry_error_callback=give_up,
    )(condition)
