"""A run's own workspace on the shared volume: its clone, its change and its state.

Each run id gets one directory; two runs (say one from Airflow, one from Dagster) never
share one. The change and the state live beside the clone, not in it, so resetting the
clone to a new origin head never loses them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import Field, ValidationError

from shared_tasks.files import write_atomically
from shared_tasks.project.records import AppliedChange, KeptChange, PulledVersion, Record, StepOutput

# A run id every orchestrator accepts, whichever runs it. Airflow writes each task's log under a
# folder named `run_id=<run id>`: a file name holds at most 255 bytes, so a longer id fails the
# run's first task with no reason given (its database column holds 250). Airflow's API accepts
# only these characters in a run id it is given ([scheduler] allowed_run_id_pattern's default),
# and never "..". Dagster's run ids (UUIDs) and the pipeline's own fit both.
MAX_RUN_ID_LENGTH = 255 - len("run_id=")
RUN_ID_CHARACTERS = "letters, digits and _ . ~ : + -"
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.~:+-]+")
LOCK_TIMEOUT_SECONDS = 600


class WorkspaceError(RuntimeError):
    """The workspace is not in the state this step needs."""


def check_run_id(run_id: str) -> str:
    """The run id, if every orchestrator accepts it (see MAX_RUN_ID_LENGTH); else a ValueError saying why."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError("run_id must be a non-empty string")
    if len(run_id) > MAX_RUN_ID_LENGTH:
        raise ValueError(
            f"run_id is {len(run_id)} characters long; at most {MAX_RUN_ID_LENGTH} are accepted "
            f"(Airflow names a log folder `run_id=<run id>`, and a file name holds 255 bytes)"
        )
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"run_id {run_id!r} may hold only {RUN_ID_CHARACTERS} (what Airflow accepts)")
    if ".." in run_id:
        raise ValueError(f"run_id {run_id!r} must not hold `..` (Airflow refuses it: a path could climb out)")
    return run_id


class RunState(Record):
    """What earlier steps of this run did, so a later or retried step can pick up."""

    run_id: str
    pulled: PulledVersion | None = None
    applied: AppliedChange | None = None
    change: KeptChange | None = None
    ran_by: dict[str, str] = Field(default_factory=dict)  # step name -> the orchestrator that ran it last
    outputs: dict[str, StepOutput] = Field(default_factory=dict)  # a declared pipeline's kept step outputs
    params: dict[str, Any] | None = None  # a declared pipeline's run parameters, fixed by its first step

    def ran(self, step: str, runner: str) -> RunState:
        return self.model_copy(update={"ran_by": {**self.ran_by, step: runner}})

    @classmethod
    def from_file_text(cls, text: str, run_id: str) -> RunState:
        """The state file's record; a file of the earlier, untyped shape is read once and upgraded."""
        data: dict[str, Any] = json.loads(text)
        legacy_change = (data.pop("extra", None) or {}).get("change")
        if legacy_change is not None and "change" not in data:
            data["change"] = legacy_change
        if isinstance(data.get("pulled"), dict):
            data["pulled"] = {"run_id": run_id, **data["pulled"]}
        return cls.model_validate(data)


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
        text = self.state_file.read_text(encoding="utf-8")
        try:
            state = RunState.from_file_text(text, self.run_id)
        except (ValueError, ValidationError) as error:
            raise WorkspaceError(
                f"the state file of run {self.run_id!r} ({self.state_file}) is not readable: {error}; "
                "rerun pull_data with a new run id"
            ) from None
        if json.loads(text) != state.to_dict():
            self.save_state(state)  # an earlier shape, upgraded once
        return state

    def save_state(self, state: RunState) -> None:
        self.write_durably(self.state_file, json.dumps(state.to_dict(), indent=2, sort_keys=True))

    def write_durably(self, path: Path, content: bytes | str) -> None:
        """A file of the run's own (its change, its state), whole and on disk before the step goes on."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, content, fsync=True)
