"""What the steps hand each other and the outside world: small, typed, frozen records.

A step returns one of these; an orchestrator stores it (Airflow's XCom, Dagster's metadata) as the
JSON of `to_dict()` and reads it back with `from_mapping()`, which ignores keys it does not know,
so a record read from an older or newer producer still parses. The run's state file is made of
the same records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

MAX_RECORDS_PER_RUN = 100_000


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Self:
        return cls.model_validate(dict(data))


class WrittenFile(Record):
    """A file's md5 as its writer computed it, and the stat that identifies exactly that content."""

    md5: str
    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path, md5: str) -> WrittenFile:
        stat = path.stat()
        return cls(md5=md5, inode=stat.st_ino, mtime_ns=stat.st_mtime_ns, size=stat.st_size)

    def still_describes(self, path: Path) -> bool:
        try:
            stat = path.stat()
        except OSError:
            return False
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size) == (self.inode, self.mtime_ns, self.size)


class StepTiming(Record):
    """When a step's own work ran, timed inside shared_tasks: the same clock for every runner.

    Times are seconds since the epoch. `load_seconds` is what importing the step's module cost in
    this process (0 once imported); `process_started_at` is when the step's process started, so
    everything before `started_at` in that process is start-up (the runner's and ours).
    """

    process_started_at: float | None
    started_at: float
    seconds: float
    load_seconds: float


class StepRecord(Record):
    """What a step returns: its own record, and how long its work took."""

    timing: StepTiming | None = None


class PulledVersion(StepRecord):
    """The version a run starts from: the branch head's commit and what its data holds."""

    run_id: str
    commit: str
    md5: str
    size: int
    rows: int


class StepOutput(StepRecord):
    """A team step's output, kept in the run's workspace (Parquet): what both orchestrators show for it."""

    run_id: str
    step: str
    rows: int
    columns: list[str]
    md5: str
    already_done: bool = False


class KeptChange(Record):
    """How the run's change (kept beside the workspace) was made, so a retry reuses it as it was:
    generated, read from a file, or a team step's kept output (`step`)."""

    source: Literal["generated", "file", "step"]
    step: str | None = None
    assign_ids: bool
    records: int
    computed_from: str | None = None  # the commit whose data the steps read (a replace names it in history)


class AppliedChange(Record):
    """The dataset after this run's change was applied to the pulled version."""

    md5: str
    size: int
    rows: int
    rows_added: int
    first_id: int | None  # the generated key's range (None: the pipeline assigns no key)
    last_id: int | None
    written: WrittenFile | None = None
    rows_updated: int = 0  # merge: records whose key the version held
    rows_deleted: int = 0


class ChangeSummary(StepRecord):
    run_id: str
    base_commit: str
    rows_added: int
    first_id: int | None
    last_id: int | None
    md5: str | None
    rows: int | None
    already_published: bool = False


class PublishedVersion(StepRecord):
    """A version on the origin: what `push_data` returns and what every runner reports."""

    run_id: str
    orchestrator: str | None
    commit: str
    md5: str
    size: int | None
    rows: int | None
    rows_added: int | None
    s3_url: str
    rows_updated: int | None = None  # a merge's updates and deletes (None: another strategy)
    rows_deleted: int | None = None
    computed_from: str | None = None  # a replace: the commit whose data its steps read
    attempts: int | None = None
    # Whether the publisher held the publish turn (None: turns are off, or no publish was needed).
    had_turn: bool | None = None
    already_published: bool = False
    # The run's change left the data as the head holds it: nothing was published, `commit` is the head's.
    unchanged: bool = False
