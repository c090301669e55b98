"""Publishing a run's change: data to the DVC remote first, then the pointer to Git, racing safely.

Correctness rests on Git's atomic ref update: a push that lost the race fetches the origin's new
head, pulls that data, re-applies this run's kept change and tries again, with bounded jittered
retries. Publishers on one shared volume also take turns, which only saves wasted uploads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from filelock import FileLock, Timeout
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared_tasks.project.cutover import CutoverSteps, declared_cutover_file, read_cutover
from shared_tasks.project.declared import Strategy
from shared_tasks.project.records import PublishedVersion
from shared_tasks.project.settings import Settings
from shared_tasks.run.change import apply_kept_change
from shared_tasks.run.context import RunContext
from shared_tasks.run.trust import pull_head_data
from shared_tasks.run.workspace import RunState
from shared_tasks.storage.pointer import s3_object_url
from shared_tasks.versioning.versions import (
    TRAILER_COMPUTED_FROM,
    TRAILER_FORCED_CUTOVER,
    TRAILER_ROWS_DELETED,
    TRAILER_ROWS_UPDATED,
    TRAILER_STEPS_BY,
    VersionRecord,
    commit_message,
    newest_version,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class PushRejected(RuntimeError):
    """The origin moved while this run was publishing (another run got there first)."""


class PushConflictError(RuntimeError):
    """Publishing kept losing the race; the change is kept and the step can be rerun."""


def retry_lost_races(settings: Settings, attempt_once: Callable[[int], T], who: str, advice: str) -> T:
    """`attempt_once(attempt_number)` again, after a jittered back-off, each time it lost the race.

    Only a PushRejected (another run pushed first) is retried; any other error ends it at once.
    After `settings.push_attempts` lost races a PushConflictError says who gave up after how many
    attempts, then `advice`.
    """
    retrying = Retrying(
        stop=stop_after_attempt(settings.push_attempts),
        wait=wait_random_exponential(multiplier=0.2, max=settings.push_backoff_max_seconds),
        retry=retry_if_exception_type(PushRejected),
        reraise=True,
    )
    made = 0
    try:
        for attempt in retrying:
            with attempt:
                made = attempt.retry_state.attempt_number
                return attempt_once(made)
    except PushRejected:
        raise PushConflictError(f"{who}: the origin kept moving; gave up after {made} attempts. {advice}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def publish(ctx: RunContext, orchestrator: str) -> PublishedVersion:
    """Publish the change the workspace's state records; each attempt starts from that state."""
    with publish_turn(ctx.settings, ctx.run_id) as had_turn:
        version = retry_lost_races(
            ctx.settings,
            lambda attempt: _publish_once(ctx, orchestrator, attempt),
            who=f"run {ctx.run_id!r}",
            advice="Nothing was lost: the change is kept in the run's workspace; rerun push_data",
        )
        return version.model_copy(update={"had_turn": had_turn})


@contextlib.contextmanager
def publish_turn(settings: Settings, run_id: str) -> Iterator[bool | None]:
    """Let publishers on the shared volume take turns, so racing runs rarely upload in vain.

    Turns only save work: correctness rests on Git's atomic ref update, so a publisher that
    waited too long goes ahead without its turn. The lock is the kernel's, released when the
    holder dies. Yields whether this publisher has its turn (None when turns are off).
    """
    if settings.publish_lease_seconds <= 0:
        yield None
        return
    settings.work_root.mkdir(parents=True, exist_ok=True)
    lease = FileLock(str(settings.publish_lease_file), timeout=settings.publish_lease_seconds)
    try:
        lease.acquire()
    except Timeout:
        log.warning("run %s: no publish turn after %.0f s; publishing without one", run_id, lease.timeout)
    try:
        yield lease.is_locked
    finally:
        if lease.is_locked:
            lease.release()


def _publish_once(ctx: RunContext, orchestrator: str, attempt: int) -> PublishedVersion:
    git = ctx.git
    git.fetch()
    origin_head = git.rev(git.origin_ref)
    done = ctx.published(git.origin_ref)
    if done is not None:
        return published_version(ctx, done, attempts=attempt, already=True)
    head_is_ours = ctx.published("HEAD") is not None
    if head_is_ours and git.rev("HEAD^") == origin_head:
        ctx.dvc.push()  # the data may not have gone out before the step died
        return _push_pointer(ctx, attempt)
    state = ctx.workspace.load_state()
    if head_is_ours or git.rev("HEAD") != origin_head:
        state = rebase_change(ctx, state)
    applied = state.applied
    assert applied is not None
    if state.pulled is not None and applied.md5 == state.pulled.md5:
        return _unchanged(ctx, attempt)
    pointer, remote_url = ctx.dvc.add_and_push(applied.written)
    if pointer.md5 != applied.md5:
        applied = rebase_change(ctx, state).applied  # the workspace no longer held exactly this run's change
        assert applied is not None
        pointer, remote_url = ctx.dvc.add_and_push(applied.written)
    elsewhere = {step: runner for step, runner in state.ran_by.items() if runner != orchestrator}
    named = elsewhere or ctx.settings.is_declared  # a declared pipeline's history names its steps
    steps_by = {TRAILER_STEPS_BY: ", ".join(f"{s}={r}" for s, r in state.ran_by.items())} if named else {}
    forced = _forced_steps(ctx, elsewhere)
    steps_by |= {TRAILER_FORCED_CUTOVER: ", ".join(forced)} if forced else {}
    subject, trailers = _what_the_strategy_did(ctx, state, orchestrator)
    message = commit_message(
        ctx.run_id, orchestrator, applied.rows_added, applied.rows, subject=subject, extra={**steps_by, **trailers}
    )
    git.commit_paths(message, [ctx.settings.pointer_path])
    return _push_pointer(ctx, attempt, remote_url)


def _forced_steps(ctx: RunContext, elsewhere: dict[str, str]) -> list[str]:
    """Of the steps Dagster ran for another orchestrator's run, those its cutover file says were moved
    there past the shadow gate (`--force`). The file is read as the run publishes: a line flipped
    while the run was in flight is judged as it stands now."""
    cut_over = [step for step, runner in elsewhere.items() if runner == "dagster"]
    if not cut_over or not ctx.settings.is_declared:
        return []
    pipeline = ctx.settings.declared()
    cutover = read_cutover(declared_cutover_file(pipeline), CutoverSteps.of(pipeline))
    return [step for step in cut_over if step in cutover.forced_steps()]


def _unchanged(ctx: RunContext, attempt: int) -> PublishedVersion:
    """A run whose change leaves the data as the head holds it (a merge of unchanged rows, an empty
    append) publishes nothing: an identical version would be a commit that changes no pointer. It
    reports the head's version, marked unchanged; a retry finds the same."""
    head = newest_version(ctx.git, ctx.git.origin_ref, ctx.settings)
    assert head is not None and head.md5 is not None, "the workspace was pulled from the head's version"
    log.info("run %s: its change leaves %s's data as it is; nothing to publish", ctx.run_id, head.commit[:12])
    unchanged = {"rows_added": 0, "rows_updated": 0, "rows_deleted": 0, "computed_from": None, "unchanged": True}
    return published_version(ctx, head, attempts=attempt, already=False).model_copy(update=unchanged)


def _what_the_strategy_did(ctx: RunContext, state: RunState, orchestrator: str) -> tuple[str | None, dict[str, str]]:
    """A merge's updates and deletes, and the commit a replace was computed from, for history."""
    applied, change = state.applied, state.change
    assert applied is not None
    if not ctx.settings.is_declared or change is None:
        return None, {}
    strategy = ctx.settings.declared().output.strategy
    if strategy is Strategy.MERGE:
        counts = f"+{applied.rows_added} ~{applied.rows_updated} -{applied.rows_deleted}"
        trailers = {TRAILER_ROWS_UPDATED: str(applied.rows_updated), TRAILER_ROWS_DELETED: str(applied.rows_deleted)}
        return f"Publish dataset version: {counts} record(s) merged from {orchestrator}", trailers
    if strategy is Strategy.REPLACE:
        computed_from = {TRAILER_COMPUTED_FROM: change.computed_from} if change.computed_from else {}
        return f"Publish dataset version: replaced by {applied.rows} record(s) from {orchestrator}", computed_from
    return None, {}


def _push_pointer(ctx: RunContext, attempt: int, remote_url: str | None = None) -> PublishedVersion:
    outcome = ctx.git.push()
    if not outcome.accepted:
        raise PushRejected(outcome.detail)
    version = ctx.published("HEAD")
    assert version is not None
    return published_version(ctx, version, attempts=attempt, already=False, remote_url=remote_url)


def rebase_change(ctx: RunContext, state: RunState) -> RunState:
    """Start again from the origin's new head: its data, then this run's change re-applied."""
    ctx.git.reset_hard(ctx.git.origin_ref)
    pulled = pull_head_data(ctx)
    rebased = state.model_copy(update={"pulled": pulled, "applied": None})
    rebased = rebased.model_copy(update={"applied": apply_kept_change(ctx, rebased)})
    ctx.workspace.save_state(rebased)
    return rebased


def published_version(
    ctx: RunContext, version: VersionRecord, attempts: int, already: bool, remote_url: str | None = None
) -> PublishedVersion:
    assert version.md5 is not None, "a run's own version has a readable pointer (find_run_version)"
    remote_url = ctx.settings.dvc_remote_url or remote_url or ctx.dvc.remote_url()
    return PublishedVersion(
        run_id=ctx.run_id,
        orchestrator=version.orchestrator,
        commit=version.commit,
        md5=version.md5,
        size=version.size,
        rows=version.rows,
        rows_added=version.rows_added,
        rows_updated=version.rows_updated,
        rows_deleted=version.rows_deleted,
        computed_from=version.computed_from,
        s3_url=s3_object_url(remote_url, version.md5),
        attempts=attempts,
        already_published=already,
    )
