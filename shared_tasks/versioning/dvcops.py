"""DVC through its Python API: one `Repo` per workspace, absolute paths, pinned DVC.

`dvc.repo.Repo` is not a supported public API, so every call used here is covered by the
tests and DVC is pinned in the lock file. The cache is shared by all runs, and a workspace's
data files may be read-only hardlinks to its objects: nothing writes a data file in place (a
change is a new file renamed over the old one, or a new part), so checking a version out and
`dvc add` cost O(files), not O(bytes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dvc  # noqa: F401 - importing it installs DVC's log handlers, tamed below

from shared_tasks.project.records import WrittenFile
from shared_tasks.project.redact import RedactingFilter, Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.storage.pointer import Pointer, PointerError
from shared_tasks.versioning.interfaces import DvcError as DvcError  # re-exported: callers import it from here
from shared_tasks.versioning.object_store import keep_in_cache
from shared_tasks.versioning.repo_guard import (
    MAX_MANIFEST_BYTES,
    DatasetCheckout,
    config_problems,
    manifest_entries,
    pointer_problems,
    refuse,
    symlink_problems,
)

# Hardlink first: DVC then links a new file into the cache instead of copying it (it does so only
# when hardlink is the first type); copy when the workspace and cache are on different volumes.
CACHE_TYPES = "hardlink,copy"
# DVC's INFO lines are CLI hints ("To track the changes with git, run: ..."), not step
# output; what it still logs passes through the redactor.
_DVC_LOG_REDACTOR = Redactor.from_environment()
logging.getLogger("dvc").setLevel(logging.WARNING)
for _handler in logging.getLogger("dvc").handlers:
    _handler.addFilter(RedactingFilter(_DVC_LOG_REDACTOR))


def repo_config(settings: Settings, cache_dir: Path | None = None) -> dict[str, Any]:
    """Config merged over the committed .dvc/config: nothing of it is written to disk.

    A merge cannot remove what the repository sets, so every repository option that is not
    merged over here or harmless is refused before a Repo is opened (repo_guard.config_problems).
    """
    remote: dict[str, Any] = {}
    if settings.dvc_remote_url:
        remote["url"] = settings.dvc_remote_url
    if settings.s3_endpoint_url:
        remote["endpointurl"] = settings.s3_endpoint_url
    config: dict[str, Any] = {
        "core": {"site_cache_dir": str(settings.site_cache_dir), "analytics": False},
        "cache": {"dir": str(cache_dir or settings.cache_dir), "type": CACHE_TYPES},
    }
    if remote:
        config["remote"] = {settings.dvc_remote: remote}
    return config


def _private_directories(work_root: Path, *below: Path) -> None:
    """The work root and DVC's site cache, the user's own.

    DVC makes its site cache directory (and any missing parent, the work root included) with
    umask 0 and mode 0777, so they are made first, owner-only; a work root this user owns that is
    open to others is closed.
    """
    for directory in (work_root, *below):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stat = work_root.stat()
    if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
        work_root.chmod(0o700)


class Dvc(DatasetCheckout):
    """The DVC operations of one workspace clone."""

    def __init__(self, settings: Settings, root: Path, redactor: Redactor, cache_dir: Path | None = None):
        self.settings = settings
        self.root = root.resolve()
        self.redact = redactor
        self.cache_dir = cache_dir
        _DVC_LOG_REDACTOR.extend(redactor.secrets)
        _private_directories(settings.work_root, settings.site_cache_dir / "repo")

    @contextmanager
    def _repo(self) -> Iterator[Any]:
        """A Repo of the workspace, once its DVC configuration and the places DVC writes are checked
        (opening one already makes .dvc/tmp and its lock)."""
        from dvc.repo import Repo

        refuse(self.describe, symlink_problems(self.root, self.settings) + config_problems(self.root, self.settings))
        try:
            repo = Repo(str(self.root), config=repo_config(self.settings, self.cache_dir))
        except Exception as error:  # DVC raises many unrelated types
            raise DvcError(self.redact(f"cannot open DVC repository: {error}")) from None
        try:
            yield repo
        finally:
            repo.close()

    def _checked_pointer(self, repo: Any) -> str:
        """The pointer's md5, once its fields and (for a directory) every entry of its manifest are
        checked: before DVC reads either. The checked manifest is put in the cache, so DVC uses
        that one and not whatever the remote holds by then."""
        Pointer.read(self.pointer_file)  # refuses what is no pointer at all
        md5, problems = pointer_problems(self.pointer_file.read_text(encoding="utf-8"), self.settings)
        refuse(self.describe, problems)
        assert md5 is not None
        if md5.endswith(".dir"):
            raw, cached = self._manifest(repo, md5)
            _, problems = manifest_entries(raw, md5, f"manifest {md5}")
            refuse(self.describe, problems)
            if not cached:
                keep_in_cache(Path(repo.cache.local.oid_to_path(md5)), raw)
        return md5

    def _manifest(self, repo: Any, md5: str) -> tuple[bytes, bool]:
        """A directory's manifest, at most MAX_MANIFEST_BYTES and one more: from the cache, else the remote."""
        try:
            with open(repo.cache.local.oid_to_path(md5), "rb") as cached:
                return cached.read(MAX_MANIFEST_BYTES + 1), True
        except FileNotFoundError:
            pass
        try:
            remote = repo.cloud.get_remote_odb(self.settings.dvc_remote)
            with remote.fs.open(remote.oid_to_path(md5), mode="rb") as stored:
                return stored.read(MAX_MANIFEST_BYTES + 1), False
        except FileNotFoundError:
            where = f"neither in the cache nor on remote {self.settings.dvc_remote!r}"
            raise DvcError(f"{self.describe()}: its manifest {md5} is {where}") from None
        except Exception as error:
            raise DvcError(
                self.redact(f"cannot read manifest {md5} from the remote: {type(error).__name__}: {error}")
            ) from None

    def _without_foreign_fields(self) -> None:
        """Before `dvc add`, which carries a pointer's other fields into the new one: only the product's own."""
        try:
            pointer = Pointer.read(self.pointer_file)
        except (OSError, PointerError):
            return  # no pointer yet (a new dataset or layout): DVC writes a fresh one
        self._write_own_pointer(pointer.md5, pointer.size, None)

    def _added(self, repo: Any) -> Pointer:
        self._without_foreign_fields()
        stages = self._call("add", repo.add, str(self.data_path))
        out = stages[0].outs[0]
        nfiles = out.meta.nfiles if out.meta.isdir else None
        return self._write_own_pointer(str(out.hash_info.value), out.meta.size, nfiles)

    def _prove_on_remote(self, repo: Any, md5: str) -> None:
        """Every object of the pointer's data (a directory's manifest and each part) is on the
        settings' remote, asked of the remote itself (a HEAD per object), not of a listing cached
        before the upload."""
        remote = self._call("open remote", repo.cloud.get_remote_odb, self.settings.dvc_remote)
        oids = [md5]
        if md5.endswith(".dir"):
            raw, _ = self._manifest(repo, md5)
            parts, problems = manifest_entries(raw, md5, f"manifest {md5}")
            refuse(self.describe, problems)
            oids.extend(sorted(set(parts.values())))
        invalidate = getattr(remote.fs.fs, "invalidate_cache", None)
        if invalidate is not None:
            invalidate()
        missing = [oid for oid in oids if not self._call("check the remote", remote.exists, oid)]
        if missing:
            raise DvcError(
                f"dvc push left {len(missing)} object(s) of {md5} off remote {self.settings.dvc_remote!r} "
                f"(e.g. {', '.join(missing[:3])}): nothing is committed"
            )

    def _call(self, what: str, operation: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return operation(*args, **kwargs)
        except Exception as error:
            raise DvcError(self.redact(f"dvc {what} failed: {type(error).__name__}: {error}")) from None

    def pull(self) -> None:
        """Check out the pointer's data: from the shared cache when it has it, else from the remote.

        Checking out from the cache opens no S3 session, which is most of a warm pull's cost.
        """
        from dvc.exceptions import CheckoutError

        with self._repo() as repo:
            self._checked_pointer(repo)
            try:
                repo.checkout(targets=[str(self.pointer_file)], force=True)
                return
            except CheckoutError:
                pass  # some object is not in the shared cache yet
            except Exception as error:
                raise DvcError(self.redact(f"dvc checkout failed: {type(error).__name__}: {error}")) from None
            self._call(
                f"pull from remote {self.settings.dvc_remote!r}",
                repo.pull,
                targets=[str(self.pointer_file)],
                remote=self.settings.dvc_remote,
                force=True,
            )

    def add(self) -> Pointer:
        with self._repo() as repo:
            return self._added(repo)

    def add_and_push(self, written: WrittenFile | None = None) -> tuple[Pointer, str]:
        """`dvc add` then `dvc push` in one Repo; returns the pointer and the remote's URL.

        `written` is the md5 the modify step computed while writing the file. When the file is
        still exactly that one (same inode, mtime and size), it goes into DVC's state database,
        the same record DVC keeps of files it hashed itself, so `dvc add` need not read the file
        again (a second md5 pass over a 1 GB file is ~1.4 s). The pointer is written from what
        the product knows, and the data is proved to be on the remote before the caller commits it.
        """
        with self._repo() as repo:
            if written is not None and written.still_describes(self.data_path):
                from dvc_data.hashfile.hash_info import HashInfo

                repo.state.save(str(self.data_path), repo.fs, HashInfo("md5", written.md5))
            pointer = self._added(repo)
            self._call(
                f"push to remote {self.settings.dvc_remote!r}",
                repo.push,
                targets=[str(self.pointer_file)],
                remote=self.settings.dvc_remote,
                jobs=self.settings.upload_jobs,
            )
            self._prove_on_remote(repo, pointer.md5)
            url = str(repo.config["remote"][self.settings.dvc_remote]["url"])
        return pointer, url

    def push(self) -> int:
        """Upload the pointer's data and prove it is on the remote."""
        with self._repo() as repo:
            md5 = self._checked_pointer(repo)
            pushed = self._call(
                "push",
                repo.push,
                targets=[str(self.pointer_file)],
                remote=self.settings.dvc_remote,
                jobs=self.settings.upload_jobs,
            )
            self._prove_on_remote(repo, md5)
        return int(pushed or 0)

    def missing_on_remote(self) -> list[str]:
        """The objects of the pointer's data (a directory's manifest and its parts too) the remote lacks."""
        with self._repo() as repo:
            self._checked_pointer(repo)
            status = self._call(
                f"status against remote {self.settings.dvc_remote!r}",
                repo.status,
                targets=[str(self.pointer_file)],
                cloud=True,
                remote=self.settings.dvc_remote,
            )
        return sorted(name for name, state in status.items() if state in ("new", "missing"))

    def remote_url(self) -> str:
        with self._repo() as repo:
            url = repo.config["remote"][self.settings.dvc_remote]["url"]
        return str(url)
