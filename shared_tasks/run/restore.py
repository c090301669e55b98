"""Roll back: publish a new version whose data is exactly an earlier version's.

History stays append-only: the restore is one more commit on the branch, its pointer the earlier
version's, with a `Restored-From` trailer naming that commit. Its data is already on the remote
(a version is published data-first), so nothing is uploaded: the objects are checked to be there,
and the data is pulled and checked against its pointer before anything is committed.

A restore needs nothing of the head it replaces: whatever a bad head did to the pointer (deleted,
made a link, a directory or a submodule, hidden by `.dvcignore`, re-encoded by `.gitattributes`),
the new version takes the pointer and every file that decides how it is read from REV.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from shared_tasks.project.records import PublishedVersion
from shared_tasks.project.settings import Settings
from shared_tasks.run.context import RunContext
from shared_tasks.run.publish import PushRejected, published_version, retry_lost_races
from shared_tasks.run.trust import pull_head_data
from shared_tasks.versioning.history import Mirror
from shared_tasks.versioning.tracked_pointer import (
    GITATTRIBUTES,
    PointerProblem,
    PointerReader,
    TrackedPointer,
    version_paths,
)
from shared_tasks.versioning.versions import TRAILER_RESTORED_FROM, commit_message, list_versions, newest_version

RESTORE_ORCHESTRATOR = "restore"


class RestoreError(ValueError):
    """The version cannot be restored (not on the branch, another layout, data gone); nothing changed."""


def restore_version(settings: Settings, rev: str, run_id: str) -> PublishedVersion:
    """A new version on the branch with REV's data; the same run id again finds the version it made."""
    mirror = Mirror(settings)
    mirror.refresh()
    commit = mirror.resolve(rev)
    try:
        tracked = PointerReader(mirror.git, settings).at(commit)
    except PointerProblem as error:
        raise RestoreError(f"{commit[:12]} cannot be restored: {error}") from None
    if tracked.layout is not settings.layout:
        raise RestoreError(
            f"{commit[:12]} holds the dataset in another layout than the branch's {settings.layout.value}: "
            "restore a version made in the current layout"
        )
    on_branch = list_versions(mirror.git, mirror.git.origin_ref, settings)
    if commit not in {version.commit for version in on_branch}:
        raise RestoreError(f"{commit[:12]} is not a version on the origin's {settings.git_branch} branch")
    ctx = RunContext(settings, run_id)
    with ctx.workspace.locked():
        return retry_lost_races(
            settings,
            lambda attempt: _restore_once(ctx, commit, tracked, attempt),
            who=f"restore {run_id!r}",
            advice="Nothing was published; run it again",
        )


def _restore_once(ctx: RunContext, commit: str, tracked: TrackedPointer, attempt: int) -> PublishedVersion:
    ctx.clone_at_origin_head()
    done = ctx.published(ctx.git.origin_ref)
    if done is not None:
        return published_version(ctx, done, attempts=attempt, already=True)
    head = newest_version(ctx.git, ctx.git.origin_ref, ctx.settings)
    if head is not None and head.md5 == tracked.pointer.md5:
        raise RestoreError(
            f"the branch's head {head.commit[:12]} already holds {commit[:12]}'s data (md5 {head.md5}): "
            "nothing to restore"
        )
    _take_from(ctx, commit)
    missing = ctx.dvc.missing_on_remote()
    if missing:
        ctx.git.reset_hard(ctx.git.origin_ref)
        raise RestoreError(
            f"{len(missing)} object(s) of {commit[:12]}'s data are not on the remote "
            f"(e.g. {', '.join(missing[:3])}): it cannot be restored"
        )
    pulled = pull_head_data(ctx)  # the restored pointer's data: validated, and checked against it
    if pulled.md5 != tracked.pointer.md5:
        raise RestoreError(f"the data pulled for {commit[:12]} is not the data its pointer names")
    message = commit_message(
        ctx.run_id,
        RESTORE_ORCHESTRATOR,
        pulled.rows - ((head.rows or 0) if head is not None else 0),
        pulled.rows,
        subject=f"Restore dataset version {commit[:12]}",
        extra={TRAILER_RESTORED_FROM: commit},
    )
    ctx.git.run("commit", "--quiet", "--no-verify", "--file", "-", input_text=message)  # what _take_from staged
    outcome = ctx.git.push()
    if not outcome.accepted:
        raise PushRejected(outcome.detail)
    version = ctx.published("HEAD")
    assert version is not None
    return published_version(ctx, version, attempts=attempt, already=False)


def _take_from(ctx: RunContext, commit: str) -> None:
    """Stage REV's version of the paths a version is made of (`version_paths`) in the workspace's
    index and work tree, whatever the head holds there (a file, a link, a directory, a submodule, or
    nothing); what REV lacks, removed.

    A non-directory where REV has a directory (a link on the way) goes first, so nothing is
    written through it; `.gitattributes` files are taken before the pointer, so it is checked out
    by REV's rules.
    """
    git, root = ctx.git, ctx.workspace.repo
    paths = version_paths(ctx.settings)
    ancestors = sorted({str(parent) for path in paths for parent in PurePosixPath(path).parents} - {"."})
    for batch in (ancestors, paths):
        tracked = git.run("ls-files", "-z", "--", *batch).stdout.split("\0")
        taken = [path for path in batch if any(t == path or t.startswith(f"{path}/") for t in tracked if t)]
        if batch is ancestors:
            taken = [path for path in taken if path in tracked]  # only a non-directory at a directory's place
        if taken:
            git.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *taken)
        for path in taken:
            _remove(root, path)
    held = set(filter(None, git.run("ls-tree", "-z", "--name-only", commit, "--", *paths).stdout.split("\0")))
    rules = [path for path in paths if path in held and PurePosixPath(path).name == GITATTRIBUTES]
    for group in (rules, [path for path in paths if path in held and path not in rules]):
        if group:
            git.run("checkout", commit, "--", *group)


def _remove(root: Path, path: str) -> None:
    """Remove what the work tree holds at `path`; a link is removed, never followed."""
    target = root / path
    if any((root / parent).is_symlink() for parent in PurePosixPath(path).parents if str(parent) != "."):
        return  # below a link: removing the link removed it from the work tree
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
