"""The one error the clients raise: what was asked of which API, and what it answered."""

from __future__ import annotations


class OrchestratorApiError(RuntimeError):
    """An orchestrator's API refused a call, failed it, or did not answer.

    `status` is the HTTP status when there was an answer; `transient` says whether the same call
    may succeed when sent again (a transport error or a server error), which is how the clients
    decide what to retry.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of an answer's body, shortened: enough to say why, never a traceback."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else f"{line[: limit - 1]}…"
