"""What a run needs from Git and from DVC, and nothing more.

The steps, publish, restore, history and the pointer readers call only these methods, so a run can
be handed the real clients (`gitops.Git`, `dvcops.Dvc`) or local ones (`local_dvc.LocalDvc`); which
it gets is decided in one place, `backends`. mypy checks that each implementation fits.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from shared_tasks.project.records import WrittenFile
from shared_tasks.storage.pointer import Pointer
from shared_tasks.versioning.gitops import PushOutcome

# (commit, ISO time, author, trailers), as `git log` lists a version.
TrailersEntry = tuple[str, str, str, dict[str, str]]


class DvcError(RuntimeError):
    """A DVC operation failed; the message is already redacted."""


class GitClient(Protocol):
    """Git in one working directory (a clone, or a bare mirror) with the pipeline's identity."""

    @property
    def origin_ref(self) -> str:
        """The remote-tracking ref of the origin's branch."""
        ...

    def run(
        self, *args: str, input_text: str | None = None, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Any git command; a failure raises GitError unless `check` is False."""
        ...

    def output(self, *args: str) -> str: ...

    def clone(self, target: Path) -> None: ...

    def fetch(self) -> None: ...

    def rev(self, ref: str) -> str: ...

    def reset_hard(self, ref: str) -> None: ...

    def commit_paths(self, message: str, paths: Sequence[str]) -> str: ...

    def push(self) -> PushOutcome:
        """A rejection because the origin moved is an outcome (`accepted` False), not an error."""
        ...

    def trailers_log(
        self, ref: str, *paths: str, message_contains: str | None = None, max_count: int | None = None
    ) -> list[TrailersEntry]: ...


class DvcClient(Protocol):
    """The DVC operations of one checkout: its pointer, its data, the cache and the remote."""

    @property
    def data_path(self) -> Path: ...

    @property
    def pointer_file(self) -> Path: ...

    def pull(self) -> None:
        """The pointer's data checked out, from the cache when it holds it, else from the remote."""
        ...

    def add(self) -> Pointer:
        """The data hashed into the cache and the pointer written for it."""
        ...

    def add_and_push(self, written: WrittenFile | None = None) -> tuple[Pointer, str]:
        """`add`, then every object on the remote, proved; returns the pointer and the remote's URL."""
        ...

    def push(self) -> int:
        """The pointer's objects uploaded and proved on the remote; returns how many went up."""
        ...

    def missing_on_remote(self) -> list[str]:
        """The names of the pointer's objects the remote lacks."""
        ...

    def remote_url(self) -> str: ...
