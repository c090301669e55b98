"""Roll back: publish a new version whose data is exactly an earlier version's.

History stays append-only: the restore is one more commit on the branch, its pointer the earlier
version's, with a `Restored-From` trailer naming that commit. Its data is already on the remote
(a version is published data-first), so nothing is uploaded: the objects are checked to be there,
and the data is pulled and checked against its pointer before anything is committed.
"""

from __future__ import annotations

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from shared_tasks.context import RunContext
from shared_tasks.history import Mirror, settings_for_commit
from shared_tasks.pointer import Pointer
from shared_tasks.publish import PushConflictError, PushRejected, published_version
from shared_tasks.records import PublishedVersion
from shared_tasks.settings import Settings
from shared_tasks.trust import pull_head_data
from shared_tasks.versions import TRAILER_RESTORED_FROM, commit_message, list_versions
from shared_tasks.workspace import atomic_write_text

RESTORE_ORCHESTRATOR = "restore"


class RestoreError(ValueError):
    """The version cannot be restored (not on the branch, another layout, data gone); nothing changed."""


def restore_version(settings: Settings, rev: str, run_id: str) -> PublishedVersion:
    """A new version on the branch with REV's data; the same run id again finds the version it made."""
    mirror = Mirror(settings)
    mirror.refresh()
    commit = mirror.resolve(rev)
    if settings_for_commit(settings, mirror.git, commit).layout is not settings.layout:
        raise RestoreError(
            f"{commit[:12]} holds the dataset in another layout than the branch's {settings.layout.value}: "
            "restore a version made in the current layout"
        )
    on_branch = list_versions(mirror.git, mirror.git.origin_ref, settings.pointer_paths)
    if commit not in {version.commit for version in on_branch}:
        raise RestoreError(f"{commit[:12]} is not a version on the origin's {settings.git_branch} branch")
    pointer_text = mirror.git.show(commit, settings.pointer_path)
    ctx = RunContext(settings, run_id)
    retrying = Retrying(
        stop=stop_after_attempt(settings.push_attempts),
        wait=wait_random_exponential(multiplier=0.2, max=settings.push_backoff_max_seconds),
        retry=retry_if_exception_type(PushRejected),
        reraise=True,
    )
    with ctx.workspace.locked():
        try:
            for attempt in retrying:
                with attempt:
                    return _restore_once(ctx, commit, pointer_text, attempt.retry_state.attempt_number)
        except PushRejected:
            raise PushConflictError(f"restore {run_id!r}: the origin kept moving; run it again") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _restore_once(ctx: RunContext, commit: str, pointer_text: str, attempt: int) -> PublishedVersion:
    ctx.clone_at_origin_head()
    done = ctx.published(ctx.git.origin_ref)
    if done is not None:
        return published_version(ctx, done, attempts=attempt, already=True)
    head = list_versions(ctx.git, ctx.git.origin_ref, ctx.settings.pointer_paths)[0]
    atomic_write_text(ctx.dvc.pointer_file, pointer_text)
    missing = ctx.dvc.missing_on_remote()
    if missing:
        ctx.git.reset_hard(ctx.git.origin_ref)
        raise RestoreError(
            f"{len(missing)} object(s) of {commit[:12]}'s data are not on the remote "
            f"(e.g. {', '.join(missing[:3])}): it cannot be restored"
        )
    pulled = pull_head_data(ctx)  # the restored pointer's data: validated, and checked against it
    if pulled.md5 != Pointer.parse(pointer_text).md5:
        raise RestoreError(f"the data pulled for {commit[:12]} is not the data its pointer names")
    message = commit_message(
        ctx.run_id,
        RESTORE_ORCHESTRATOR,
        pulled.rows - (head.rows or 0),
        pulled.rows,
        subject=f"Restore dataset version {commit[:12]}",
        extra={TRAILER_RESTORED_FROM: commit},
    )
    ctx.git.commit_paths(message, [ctx.settings.pointer_path])
    outcome = ctx.git.push()
    if not outcome.accepted:
        raise PushRejected(outcome.detail)
    version = ctx.published("HEAD")
    assert version is not None
    return published_version(ctx, version, attempts=attempt, already=False)
