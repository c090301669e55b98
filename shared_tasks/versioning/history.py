"""Every published version, and proof that a version's data can still be had.

History reads a bare mirror of the origin (no data needed). Verify takes a version from
scratch: a fresh clone and an empty DVC cache, so its data really comes from the remote. A commit
whose pointer cannot be read is a bad version in both: listed or verified with its problem, never
an error that hides the versions around it.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from shared_tasks.project.records import Record
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.storage.layout import for_layout
from shared_tasks.storage.pointer import Pointer
from shared_tasks.validation.schema import rules_of
from shared_tasks.validation.validate import DataValidationError
from shared_tasks.versioning.backends import backends_in_use
from shared_tasks.versioning.gitops import GitAuthError, GitError
from shared_tasks.versioning.interfaces import GitClient
from shared_tasks.versioning.tracked_pointer import PointerProblem, PointerReader, TrackedPointer, checked_out_problem
from shared_tasks.versioning.versions import VersionRecord, described, list_versions

# A branch, tag or commit name; Git's own limit on a ref name is the file system's on a path.
MAX_REVISION_LENGTH = 255


class VerifyResult(Record):
    rev: str
    commit: str
    expected_md5: str | None
    actual_md5: str | None
    expected_size: int | None
    actual_size: int | None
    expected_rows: int | None
    actual_rows: int | None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ok": self.ok}


class Mirror:
    """A bare mirror of the configured origin under the work root, refreshed before each read.

    Each origin URL has a mirror of its own, so a changed PIPELINE_GIT_URL is read from the new
    origin (or fails naming it), never answered from what another origin once held.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = hashlib.sha256(settings.git_url.encode("utf-8")).hexdigest()[:16]
        self.path = settings.work_root / "mirrors" / f"{key}.git"
        self.redact = Redactor.from_environment(settings.secret_values())
        self.git = backends_in_use().git(settings, self.path, self.redact)

    def refresh(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path.with_suffix(".lock")), timeout=600):
            if not (self.path / "HEAD").exists():
                shutil.rmtree(self.path, ignore_errors=True)
                self.git.run("init", "--quiet", "--bare", str(self.path), cwd=self.path.parent)
                self.git.run("remote", "add", "origin", "--", self.settings.git_url)
            try:
                self.git.fetch()
            except GitAuthError:
                raise
            except GitError as error:
                raise GitError(
                    f"cannot read the origin {self.redact(self.settings.git_url)} "
                    f"(branch {self.settings.git_branch}): {error}"
                ) from None

    def resolve(self, rev: str) -> str:
        shown = repr(rev) if len(rev) <= 80 else f"{rev[:77]!r}..."
        if rev.startswith("-") or len(rev) > MAX_REVISION_LENGTH or not rev.isprintable():
            raise ValueError(f"not a revision: {shown}")
        for candidate in (rev, f"refs/remotes/origin/{rev}"):
            completed = self.git.run("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False)
            if completed.returncode == 0:
                return completed.stdout.strip()
        raise ValueError(f"no commit {shown} on the origin's {self.settings.git_branch} branch")


def history(settings: Settings) -> list[VersionRecord]:
    """Every version on the branch, newest first; a commit with no readable pointer is listed with its problem."""
    mirror = Mirror(settings)
    mirror.refresh()
    return list_versions(mirror.git, mirror.git.origin_ref, settings)


def tracked_pointer(settings: Settings, git: GitClient, commit: str) -> TrackedPointer:
    """The dataset pointer `commit` holds, in whichever layout; PointerProblem names the commit and why not."""
    try:
        return PointerReader(git, settings).at(commit)
    except PointerProblem as error:
        raise PointerProblem(f"commit {commit[:12]}: {error}") from None


def settings_for_commit(settings: Settings, git: GitClient, commit: str) -> Settings:
    """The settings with the layout the commit holds its dataset in (a version predates a migration)."""
    return settings.model_copy(update={"layout": tracked_pointer(settings, git, commit).layout})


def verify(settings: Settings, rev: str, validate: bool = False) -> VerifyResult:
    """Prove a version's data can be had from the remote and matches its pointer (and, with
    `validate`, that every record of it keeps the schema). A commit with no readable pointer is
    a result with that problem: the versions after it are verified all the same."""
    mirror = Mirror(settings)
    mirror.refresh()
    commit = mirror.resolve(rev)
    expected = {v.commit: v for v in list_versions(mirror.git, commit, settings)}
    try:
        tracked = PointerReader(mirror.git, settings).at(commit)
    except PointerProblem as error:
        return VerifyResult(
            rev=rev,
            commit=commit,
            expected_md5=None,
            actual_md5=None,
            expected_size=None,
            actual_size=None,
            expected_rows=expected[commit].rows if commit in expected else None,
            actual_rows=None,
            problems=(f"{described(commit, expected.get(commit))}: {error}",),
        )
    settings = settings.model_copy(update={"layout": tracked.layout})
    expected_rows = expected[commit].rows if commit in expected else None
    scratch = settings.work_root / "verify" / uuid.uuid4().hex
    checked = described(commit, expected.get(commit)) if validate else None
    try:
        return _verify_in(settings, mirror, scratch, rev, commit, tracked, expected_rows, checked)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _verify_in(
    settings: Settings,
    mirror: Mirror,
    scratch: Path,
    rev: str,
    commit: str,
    tracked: TrackedPointer,
    expected_rows: int | None,
    validated_as: str | None,
) -> VerifyResult:
    backends = backends_in_use()
    repo = scratch / "repo"
    git = backends.git(settings, repo, mirror.redact)
    git.clone(repo)
    git.run("checkout", "--quiet", "--detach", commit)
    pointer = tracked.pointer
    actual_md5 = actual_size = actual_rows = None
    checkout_problem = checked_out_problem(git, repo, tracked)
    if checkout_problem:  # DVC would read another pointer than the commit holds: nothing is pulled
        problem = f"commit {commit[:12]}: {checkout_problem}"
        return _result(rev, commit, pointer, expected_rows, None, None, None, [problem])
    problems: list[str] = []
    try:
        backends.dvc(settings, repo, mirror.redact, cache_dir=scratch / "cache").pull()
        dataset = for_layout(settings.layout, repo / settings.data_relpath, rules=rules_of(settings))
        facts = dataset.facts()
        actual_md5, actual_size, actual_rows = facts.md5, facts.size, facts.rows
        dataset.check_header()
        if validated_as is not None:
            from shared_tasks.validation.dataset_check import (
                validate_dataset,  # numpy and polars only where a dataset is read
            )

            validate_dataset(dataset.files(), validated_as, spill_dir=scratch, rules=rules_of(settings))
    except (GitError, RuntimeError, DataValidationError) as error:
        problems.append(str(error))
    if actual_md5 is not None and actual_md5 != pointer.md5:
        problems.append(f"md5 {actual_md5} differs from the pointer's {pointer.md5}")
    if actual_size is not None and pointer.size is not None and actual_size != pointer.size:
        problems.append(f"size {actual_size} differs from the pointer's {pointer.size}")
    if actual_rows is not None and expected_rows is not None and actual_rows != expected_rows:
        problems.append(f"{actual_rows} rows, the commit says {expected_rows}")
    return _result(rev, commit, pointer, expected_rows, actual_md5, actual_size, actual_rows, problems)


def _result(
    rev: str,
    commit: str,
    pointer: Pointer,
    expected_rows: int | None,
    actual_md5: str | None,
    actual_size: int | None,
    actual_rows: int | None,
    problems: list[str],
) -> VerifyResult:
    return VerifyResult(
        rev=rev,
        commit=commit,
        expected_md5=pointer.md5,
        expected_size=pointer.size,
        expected_rows=expected_rows,
        actual_md5=actual_md5,
        actual_size=actual_size,
        actual_rows=actual_rows,
        problems=tuple(problems),
    )
