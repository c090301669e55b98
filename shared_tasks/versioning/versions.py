"""Versions of the dataset as Git records them: pointer commits and their trailers.

A published commit carries trailers naming the run that made it; they are how a retried
push recognises its own earlier success, and how history says who made each version. A commit
whose pointer cannot be read (anyone with push access can break it) is listed as a bad version,
its problem said, and the versions around it are read on: one bad commit never hides the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared_tasks.project.records import Record
from shared_tasks.project.settings import Settings
from shared_tasks.versioning.interfaces import GitClient
from shared_tasks.versioning.tracked_pointer import NO_POINTER, PointerProblem, PointerReader, version_paths

TRAILER_RUN_ID = "Run-Id"
TRAILER_ORCHESTRATOR = "Orchestrator"
TRAILER_ROWS_ADDED = "Rows-Added"
TRAILER_ROWS = "Rows"
TRAILER_RESTORED_FROM = "Restored-From"
# Which orchestrator ran each step, when not all were the run's own (a step cut over to Dagster).
TRAILER_STEPS_BY = "Steps-By"
# The steps of those moved to Dagster past the shadow gate (`cutover STEP dagster --force`).
TRAILER_FORCED_CUTOVER = "Cut-Over-Forced"
# What a declared pipeline's merge did beyond inserting, and the commit a replace was computed from.
TRAILER_ROWS_UPDATED = "Rows-Updated"
TRAILER_ROWS_DELETED = "Rows-Deleted"
TRAILER_COMPUTED_FROM = "Computed-From"


class VersionRecord(Record):
    """A version as the branch's history records it: the pointer commit and its trailers.

    `problem` says why a commit's pointer cannot be read (then `md5` and `size` are None): a bad
    version, which no run builds on and `restore` replaces.
    """

    commit: str
    time: str
    md5: str | None
    size: int | None
    rows: int | None
    rows_added: int | None
    run_id: str | None
    orchestrator: str | None
    author: str | None = None
    restored_from: str | None = None
    steps_by: dict[str, str] | None = None
    forced_steps: list[str] | None = None  # steps run in Dagster that were moved there without shadow proof
    rows_updated: int | None = None
    rows_deleted: int | None = None
    computed_from: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def commit_message(
    run_id: str,
    orchestrator: str,
    rows_added: int,
    rows: int,
    *,
    subject: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    trailers = {
        TRAILER_RUN_ID: run_id,
        TRAILER_ORCHESTRATOR: orchestrator,
        TRAILER_ROWS_ADDED: str(rows_added),
        TRAILER_ROWS: str(rows),
        **(extra or {}),
    }
    headline = subject or f"Publish dataset version: +{rows_added} record(s) from {orchestrator}"
    return f"{headline}\n\n" + "".join(f"{key}: {value}\n" for key, value in trailers.items())


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _record(reader: PointerReader, commit: str, time: str, author: str, trailers: dict[str, str]) -> VersionRecord:
    md5 = size = problem = None
    try:
        pointer = reader.at(commit).pointer
        md5, size = pointer.md5, pointer.size
    except PointerProblem as error:
        problem = str(error)
    forced = trailers.get(TRAILER_FORCED_CUTOVER)
    return VersionRecord(
        commit=commit,
        time=time,
        md5=md5,
        size=size,
        rows=_int_or_none(trailers.get(TRAILER_ROWS)),
        rows_added=_int_or_none(trailers.get(TRAILER_ROWS_ADDED)),
        run_id=trailers.get(TRAILER_RUN_ID),
        orchestrator=trailers.get(TRAILER_ORCHESTRATOR),
        author=author,
        restored_from=trailers.get(TRAILER_RESTORED_FROM),
        steps_by=_steps_by(trailers.get(TRAILER_STEPS_BY)),
        forced_steps=[step.strip() for step in forced.split(",") if step.strip()] if forced else None,
        rows_updated=_int_or_none(trailers.get(TRAILER_ROWS_UPDATED)),
        rows_deleted=_int_or_none(trailers.get(TRAILER_ROWS_DELETED)),
        computed_from=trailers.get(TRAILER_COMPUTED_FROM),
        problem=problem,
    )


def _steps_by(value: str | None) -> dict[str, str] | None:
    """`pull_data=airflow, modify_data=dagster` as a mapping; None when the trailer is absent."""
    if not value:
        return None
    pairs = (item.strip().partition("=") for item in value.split(","))
    return {step: runner for step, sep, runner in pairs if sep and step}


def list_versions(git: GitClient, ref: str, settings: Settings) -> list[VersionRecord]:
    """Every commit on `ref` that changed a pointer (in either layout) or how it is read, newest first,
    bad ones flagged."""
    reader = PointerReader(git, settings)
    records = [_record(reader, *entry) for entry in git.trailers_log(ref, *version_paths(settings))]
    return _since_the_first_pointer(records)


def _since_the_first_pointer(records: list[VersionRecord]) -> list[VersionRecord]:
    """The history from the first commit that tracks the dataset: the commits before it (a repository
    shared with another pipeline's dataset, its DVC set-up) are no versions of this one. A branch
    where no commit ever tracked it keeps them all, each naming its problem."""
    before_it = 0
    for record in reversed(records):
        if record.problem is None or not record.problem.startswith(NO_POINTER):
            break
        before_it += 1
    return records if before_it in (0, len(records)) else records[: len(records) - before_it]


def described(commit: str, version: VersionRecord | None) -> str:
    """A version as an error names it: its commit and who made it."""
    if version is None or version.commit != commit:
        return f"the version at {commit[:12]}"
    made_by = f"{version.orchestrator} run {version.run_id}" if version.orchestrator else "not made by a pipeline run"
    return f"the version at {commit[:12]} ({made_by}, by {version.author})"


def newest_version(git: GitClient, ref: str, settings: Settings) -> VersionRecord | None:
    """The newest version on `ref` (its own commit, or the last that changed a pointer before it)."""
    for entry in git.trailers_log(ref, *version_paths(settings), max_count=1):
        return _record(PointerReader(git, settings), *entry)
    return None


def find_run_version(git: GitClient, ref: str, settings: Settings, run_id: str) -> VersionRecord | None:
    """The version run `run_id` published on `ref`; a commit that only claims the run id, with no
    readable pointer, is none."""
    reader = PointerReader(git, settings)
    found = git.trailers_log(ref, *version_paths(settings), message_contains=f"{TRAILER_RUN_ID}: {run_id}")
    for commit, time, author, trailers in found:
        if trailers.get(TRAILER_RUN_ID) == run_id:  # not a run whose id merely starts the same way
            version = _record(reader, commit, time, author, trailers)
            if version.ok:
                return version
    return None
