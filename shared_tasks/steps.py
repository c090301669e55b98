"""The three steps both orchestrators call: pull, modify, push.

Each step reads its inputs from settings and the run's workspace, so each can run in its
own pod; each returns a small serialisable record. Every step may be retried: modify
applies the run's change exactly once, and push recognises a version it already published
by the Run-Id trailer on the origin, so a retry never duplicates or drops a version.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock, Timeout
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared_tasks.dataset import FileFacts, records_to_csv_bytes
from shared_tasks.dvcops import Dvc, DvcError, Pointer, WrittenFile, s3_object_url
from shared_tasks.generate import generate_run_records
from shared_tasks.gitops import Git
from shared_tasks.layout import FileCatalog, append_change, check_header, data_facts, dataset_ids
from shared_tasks.pipeline import MAX_RECORDS_PER_RUN
from shared_tasks.redact import Redactor
from shared_tasks.schema import ID_COLUMN
from shared_tasks.settings import Settings
from shared_tasks.validate import (
    DataValidationError,
    Problem,
    read_change_file,
    validate_records,
)
from shared_tasks.versions import VersionRecord, commit_message, find_run_version
from shared_tasks.workspace import RunState, Workspace, WorkspaceError, atomic_write_text

log = logging.getLogger(__name__)
_ORCHESTRATOR_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class PushRejected(RuntimeError):
    """The origin moved while this run was publishing (another run got there first)."""


class PushConflictError(RuntimeError):
    """Publishing kept losing the race; the change is kept and the step can be rerun."""


@dataclass(frozen=True)
class PullRecord:
    run_id: str
    commit: str
    md5: str
    size: int
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChangeSummary:
    run_id: str
    base_commit: str
    rows_added: int
    first_id: int | None
    last_id: int | None
    md5: str | None
    rows: int | None
    already_published: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PublishedVersion:
    run_id: str
    orchestrator: str | None
    commit: str
    md5: str
    size: int | None
    rows: int | None
    rows_added: int | None
    s3_url: str
    attempts: int
    already_published: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunContext:
    """The composition root of one run: its workspace and its Git and DVC clients."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.workspace = Workspace.for_run(settings.work_root, run_id)
        self.redact = Redactor.from_environment(settings.secret_values())
        self.git = Git(settings, self.workspace.repo, self.redact)
        self.dvc = Dvc(settings, self.workspace.repo, self.redact)
        self.catalog = FileCatalog(settings.work_root / "file-facts", settings.cache_dir)

    def pointer_md5(self) -> str | None:
        """What the workspace's pointer records (the pulled version until `dvc add` rewrites it)."""
        try:
            return Pointer.read(self.dvc.pointer_file).md5
        except (OSError, DvcError):
            return None

    def data_facts(self) -> FileFacts:
        return data_facts(self.settings.layout, self.dvc.data_path, self.catalog, self.pointer_md5())

    def published(self, ref: str) -> VersionRecord | None:
        return find_run_version(self.git, ref, self.settings.pointer_paths, self.run_id)

    def check_layout(self) -> None:
        """The repository must hold the dataset in the layout the settings name."""
        if self.dvc.pointer_file.exists():
            return
        for other in self.settings.pointer_paths[1:]:
            if (self.workspace.repo / other).exists():
                raise WorkspaceError(
                    f"the repository holds the dataset as {other}, not {self.settings.pointer_path}: "
                    f"PIPELINE_LAYOUT={self.settings.layout.value} does not match it "
                    "(migrate with `dataset-pipeline migrate`, or set the layout the repository uses)"
                )
        raise WorkspaceError(f"the repository has no {self.settings.pointer_path}: is PIPELINE_DATASET_PATH right?")

    def checkout_head_data(self) -> dict[str, Any]:
        """Pull the data of the checked-out commit and check it; returns the base facts."""
        self.check_layout()
        self.dvc.pull()
        layout = self.settings.layout
        check_header(layout, self.dvc.data_path)
        facts = self.data_facts()
        pointer_md5 = Pointer.read(self.dvc.pointer_file).md5
        if facts.md5 != pointer_md5:
            raise DvcError(f"pulled {self.settings.data_relpath} has md5 {facts.md5}, its pointer says {pointer_md5}")
        return {"commit": self.git.rev("HEAD"), "md5": facts.md5, "size": facts.size, "rows": facts.rows}


# pull -------------------------------------------------------------------------------------


def pull_data(settings: Settings, run_id: str) -> PullRecord:
    """Bring the run's workspace to the branch head with its data, checked against the schema."""
    ctx = RunContext(settings, run_id)
    workspace = ctx.workspace
    with workspace.locked():
        if (workspace.repo / ".git").is_dir():
            ctx.git.fetch()
        else:
            shutil.rmtree(workspace.repo, ignore_errors=True)  # a clone interrupted half-way
            ctx.git.clone(workspace.repo)
            ctx.git.fetch()
        ctx.git.reset_hard(ctx.git.origin_ref)
        base = ctx.checkout_head_data()
        state = workspace.load_state()
        state.pulled, state.applied = base, None
        workspace.save_state(state)
    return PullRecord(run_id=run_id, **base)


# modify -----------------------------------------------------------------------------------


def modify_data(
    settings: Settings,
    run_id: str,
    records: int = 1,
    change_file: Path | None = None,
) -> ChangeSummary:
    """Produce the run's change (same run id, same change), validate it, apply it exactly once."""
    if not 1 <= records <= MAX_RECORDS_PER_RUN:
        raise ValueError(f"records must be between 1 and {MAX_RECORDS_PER_RUN}, got {records}")
    ctx = RunContext(settings, run_id)
    workspace = ctx.workspace
    with workspace.locked():
        state = workspace.load_state()
        if state.pulled is None:
            raise WorkspaceError(f"pull_data has not run for run {run_id!r}; run it first")
        done = ctx.published("HEAD")
        if done is not None:
            return _summary_of_published(done, state)
        change, assign_ids = _kept_change(workspace, state, records, change_file)
        current_md5 = ctx.data_facts().md5
        if state.applied is not None and current_md5 == state.applied["md5"]:
            return _summary(run_id, state)
        if current_md5 != state.pulled["md5"]:
            raise WorkspaceError(
                f"the dataset in run {run_id!r}'s workspace changed since pull_data "
                f"(md5 {current_md5}, pulled {state.pulled['md5']}); rerun pull_data"
            )
        state.applied = _apply_change(ctx, change, assign_ids)
        workspace.save_state(state)
    return _summary(run_id, state)


def _kept_change(
    workspace: Workspace, state: RunState, records: int, change_file: Path | None
) -> tuple[pd.DataFrame, bool]:
    """The run's change: made once, then kept beside the workspace and reused on every retry."""
    if workspace.change_file.exists():
        kept = read_change_file(workspace.change_file)
        meta = state.extra.get("change", {})
        if change_file is not None:
            offered = read_change_file(change_file)
            if not offered.equals(kept):
                raise WorkspaceError(f"run {state.run_id!r} already has a different change; use a new run id")
        elif meta.get("source") == "generated" and len(kept) != records:
            raise WorkspaceError(
                f"run {state.run_id!r} already generated {len(kept)} record(s), not {records}; use a new run id"
            )
        return kept, bool(meta.get("assign_ids", True))
    if change_file is not None:
        change, assign_ids, source = read_change_file(change_file), False, "file"
    else:
        change, assign_ids, source = generate_run_records(state.run_id, records), True, "generated"
        validate_records(change, source=f"generated change of run {state.run_id!r}")
    atomic_write_text(workspace.change_file, records_to_csv_bytes(change, header=True).decode("utf-8"))
    state.extra["change"] = {"source": source, "assign_ids": assign_ids, "records": len(change)}
    return change, assign_ids


def _apply_change(ctx: RunContext, change: pd.DataFrame, assign_ids: bool) -> dict[str, Any]:
    data = ctx.dvc.data_path
    offered_ids = [] if assign_ids else [int(value) for value in change[ID_COLUMN]]
    pointer_md5 = ctx.pointer_md5()
    largest, taken = dataset_ids(ctx.settings.layout, data, offered_ids, ctx.catalog, pointer_md5)
    if taken:
        raise DataValidationError(
            f"change of run {ctx.run_id!r}",
            [Problem("already in the dataset", column=ID_COLUMN, value=str(v)) for v in taken],
        )
    if assign_ids:
        change = change.assign(**{ID_COLUMN: range(largest + 1, largest + 1 + len(change))})
    validate_records(change, source=f"change of run {ctx.run_id!r}")
    facts = append_change(ctx.settings.layout, data, change, ctx.catalog, pointer_md5, ctx.settings.part_rows)
    ids = change[ID_COLUMN]
    written = asdict(WrittenFile.of(data, facts.md5)) if data.is_file() else None
    return {
        "written": written,
        "md5": facts.md5,
        "size": facts.size,
        "rows": facts.rows,
        "rows_added": len(change),
        "first_id": int(ids.min()),
        "last_id": int(ids.max()),
    }


def _summary(run_id: str, state: RunState) -> ChangeSummary:
    assert state.pulled is not None and state.applied is not None
    applied = state.applied
    return ChangeSummary(
        run_id=run_id,
        base_commit=state.pulled["commit"],
        rows_added=applied["rows_added"],
        first_id=applied["first_id"],
        last_id=applied["last_id"],
        md5=applied["md5"],
        rows=applied["rows"],
    )


def _summary_of_published(version: VersionRecord, state: RunState) -> ChangeSummary:
    assert state.pulled is not None
    return ChangeSummary(
        run_id=state.run_id,
        base_commit=state.pulled["commit"],
        rows_added=version.rows_added or 0,
        first_id=None,
        last_id=None,
        md5=version.md5,
        rows=version.rows,
        already_published=True,
    )


# push -------------------------------------------------------------------------------------


def push_data(settings: Settings, run_id: str, orchestrator: str = "direct") -> PublishedVersion:
    """Publish the run's change: data to the DVC remote first, then the pointer to Git."""
    if not _ORCHESTRATOR_NAME.match(orchestrator):
        raise ValueError(f"orchestrator must be a short lower-case name, got {orchestrator!r}")
    ctx = RunContext(settings, run_id)
    workspace = ctx.workspace
    with workspace.locked():
        state = workspace.load_state()
        if state.applied is None:
            if state.pulled is not None:
                ctx.git.fetch()
                done = ctx.published(ctx.git.origin_ref)
                if done is not None:
                    return _published(ctx, done, attempts=0, already=True)
            raise WorkspaceError(f"modify_data has not run for run {run_id!r}; nothing to publish")
        retrying = Retrying(
            stop=stop_after_attempt(settings.push_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=settings.push_backoff_max_seconds),
            retry=retry_if_exception_type(PushRejected),
            reraise=True,
        )
        try:
            with publish_turn(settings, run_id):
                return _publish_with_retries(ctx, state, orchestrator, retrying)
        except PushRejected:
            raise PushConflictError(
                f"run {run_id!r}: the origin kept moving; gave up after {settings.push_attempts} "
                "attempts. Nothing was lost: the change is kept in the run's workspace; rerun push_data"
            ) from None


@contextlib.contextmanager
def publish_turn(settings: Settings, run_id: str) -> Iterator[None]:
    """Let publishers on the shared volume take turns, so racing runs rarely upload in vain.

    Turns only save work: correctness rests on Git's atomic ref update, so a publisher that
    waited too long goes ahead without its turn. The lock is the kernel's, released when the
    holder dies.
    """
    if settings.publish_lease_seconds <= 0:
        yield
        return
    settings.work_root.mkdir(parents=True, exist_ok=True)
    lease = FileLock(str(settings.publish_lease_file), timeout=settings.publish_lease_seconds)
    try:
        lease.acquire()
    except Timeout:
        log.warning("run %s: no publish turn after %.0f s; publishing without one", run_id, lease.timeout)
    try:
        yield
    finally:
        if lease.is_locked:
            lease.release()


def _publish_with_retries(ctx: RunContext, state: RunState, orchestrator: str, retrying: Retrying) -> PublishedVersion:
    for attempt in retrying:
        with attempt:
            return _publish_once(ctx, state, orchestrator, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable")  # pragma: no cover


def _publish_once(ctx: RunContext, state: RunState, orchestrator: str, attempt: int) -> PublishedVersion:
    git = ctx.git
    git.fetch()
    origin_head = git.rev(git.origin_ref)
    done = ctx.published(git.origin_ref)
    if done is not None:
        return _published(ctx, done, attempts=attempt, already=True)
    head_is_ours = ctx.published("HEAD") is not None
    if head_is_ours and git.rev("HEAD^") == origin_head:
        ctx.dvc.push()  # the data may not have gone out before the step died
        return _push_pointer(ctx, attempt)
    if head_is_ours or git.rev("HEAD") != origin_head:
        _rebase_change(ctx, state)
    assert state.applied is not None
    pointer, remote_url = ctx.dvc.add_and_push(_written(state))
    if pointer.md5 != state.applied["md5"]:
        _rebase_change(ctx, state)  # the workspace no longer held exactly this run's change
        pointer, remote_url = ctx.dvc.add_and_push(_written(state))
    message = commit_message(ctx.run_id, orchestrator, state.applied["rows_added"], state.applied["rows"])
    git.commit_paths(message, [ctx.settings.pointer_path])
    return _push_pointer(ctx, attempt, remote_url)


def _written(state: RunState) -> WrittenFile | None:
    assert state.applied is not None
    written = state.applied.get("written")
    return WrittenFile(**written) if written else None


def _push_pointer(ctx: RunContext, attempt: int, remote_url: str | None = None) -> PublishedVersion:
    outcome = ctx.git.push()
    if not outcome.accepted:
        raise PushRejected(outcome.detail)
    version = ctx.published("HEAD")
    assert version is not None
    return _published(ctx, version, attempts=attempt, already=False, remote_url=remote_url)


def _rebase_change(ctx: RunContext, state: RunState) -> None:
    """Start again from the origin's new head: its data, then this run's change re-applied."""
    ctx.git.reset_hard(ctx.git.origin_ref)
    state.pulled = ctx.checkout_head_data()
    state.applied = None
    change = read_change_file(ctx.workspace.change_file)
    state.applied = _apply_change(ctx, change, bool(state.extra.get("change", {}).get("assign_ids", True)))
    ctx.workspace.save_state(state)


def _published(
    ctx: RunContext, version: VersionRecord, attempts: int, already: bool, remote_url: str | None = None
) -> PublishedVersion:
    remote_url = ctx.settings.dvc_remote_url or remote_url or ctx.dvc.remote_url()
    return PublishedVersion(
        run_id=ctx.run_id,
        orchestrator=version.orchestrator,
        commit=version.commit,
        md5=version.md5,
        size=version.size,
        rows=version.rows,
        rows_added=version.rows_added,
        s3_url=s3_object_url(remote_url, version.md5),
        attempts=attempts,
        already_published=already,
    )
