"""A run's own workspace on the shared volume: its clone, its change and its state.

Each run id gets one directory; two runs (say one from Airflow, one from Dagster) never
share one. The change and the state live beside the clone, not in it, so resetting the
clone to a new origin head never loses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

MAX_RUN_ID_LENGTH = 250
LOCK_TIMEOUT_SECONDS = 600


class WorkspaceError(RuntimeError):
    """The workspace is not in the state this step needs."""


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError("run_id must be a non-empty string")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise ValueError(f"run_id is longer than {MAX_RUN_ID_LENGTH} characters")
    if not run_id.isprintable() or run_id != run_id.strip():
        raise ValueError(f"run_id {run_id!r} must be printable with no leading or trailing space")
    return run_id


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


@dataclass
class RunState:
    """What earlier steps of this run did, so a later or retried step can pick up."""

    run_id: str
    pulled: dict[str, Any] | None = None
    applied: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workspace:
    root: Path
    run_id: str

    @classmethod
    def for_run(cls, work_root: Path, run_id: str) -> Workspace:
        check_run_id(run_id)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:60].strip("._") or "run"
        digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12]
        return cls(work_root / "runs" / f"{slug}-{digest}", run_id)

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def change_file(self) -> Path:
        return self.root / "change.csv"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One step at a time per workspace (a zombie retry must not interleave)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT_SECONDS)
        try:
            with lock:
                yield
        except Timeout:
            raise WorkspaceError(f"workspace of run {self.run_id!r} is busy (another step holds its lock)") from None

    def load_state(self) -> RunState:
        if not self.state_file.exists():
            return RunState(run_id=self.run_id)
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        return RunState(**data)

    def save_state(self, state: RunState) -> None:
        atomic_write_text(self.state_file, json.dumps(asdict(state), indent=2, sort_keys=True))
