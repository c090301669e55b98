"""The one place a run's Git and DVC clients are made.

A run (`RunContext`) and verify ask the backends in use for their clients. By default those are the
real ones: the git binary, and DVC against the settings' remote. `LocalBackends` keep the real git
(a local binary on a local origin costs a few milliseconds a command, and the run uses git's
index, attributes and plumbing, which no small fake would reproduce faithfully) and put DVC's
remote in a local directory (`local_dvc`), so a whole run takes well under a second and imports no
DVC or S3 client. Tests choose them with `using_backends`; nothing else branches on which is in use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.versioning.gitops import Git
from shared_tasks.versioning.interfaces import DvcClient, GitClient
from shared_tasks.versioning.local_dvc import LocalDvc


class Backends:
    """The real clients: git, and DVC's own Python API (imported only when a DVC client is made)."""

    def git(self, settings: Settings, cwd: Path, redactor: Redactor) -> GitClient:
        return Git(settings, cwd, redactor)

    def dvc(self, settings: Settings, root: Path, redactor: Redactor, cache_dir: Path | None = None) -> DvcClient:
        from shared_tasks.versioning.dvcops import Dvc

        return Dvc(settings, root, redactor, cache_dir)


@dataclass(frozen=True)
class LocalBackends(Backends):
    """Real git; DVC with its remote kept below `remote_root` (`s3://bucket/prefix` at `remote_root/bucket/prefix`)."""

    remote_root: Path

    def dvc(self, settings: Settings, root: Path, redactor: Redactor, cache_dir: Path | None = None) -> DvcClient:
        return LocalDvc(settings, root, redactor, self.remote_root, cache_dir)


REAL_BACKENDS = Backends()
_in_use: list[Backends] = [REAL_BACKENDS]


def backends_in_use() -> Backends:
    return _in_use[-1]


@contextmanager
def using_backends(backends: Backends) -> Iterator[Backends]:
    """Runs in this process (every thread) use `backends` inside the block."""
    _in_use.append(backends)
    try:
        yield backends
    finally:
        del _in_use[max(index for index, used in enumerate(_in_use) if used is backends)]
