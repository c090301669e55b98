"""DVC for one checkout, done locally: the remote is a directory in DVC's own layout.

Pull, add and push take milliseconds and import neither DVC nor an S3 client, so the steps (and a
team's steps) run end to end in the fast test lane. What a run relies on is kept as DVC 3 does it:
the same `.dvc` pointer for the same bytes (a file's md5; a directory's `.dir` manifest), the same
cache (`files/md5/ab/cdef...`, read-only objects, checked-out files hard-linked to them), the same
remote layout, the remote's URL chosen as DVC chooses it (the settings', else the repository's
`.dvc/config`), and the same refusals of an untrusted pointer, manifest or configuration.
`tests/test_dvc_contract.py` holds it to the real `dvcops.Dvc`.

The remote's URL is kept as it is (`s3://bucket/prefix`, so a published version names the same
place as on S3) and its objects are kept below `remote_root/bucket/prefix`.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from shared_tasks.files import write_atomically
from shared_tasks.project.records import WrittenFile
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.storage.pointer import Pointer, directory_manifest, manifest_md5
from shared_tasks.validation.schema import Problem
from shared_tasks.versioning.interfaces import DvcError
from shared_tasks.versioning.object_store import (
    READ_ONLY,
    cache_file,
    copy_object,
    files_below,
    keep_in_cache,
    link_into_place,
    md5_of,
    object_path,
)
from shared_tasks.versioning.repo_guard import (
    CONFIG_FILES,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    DatasetCheckout,
    manifest_entries,
    pointer_problems,
    refuse,
    refused_options,
    symlink_problems,
)

_NAMED_SECTION = re.compile(r'^\s*(remote|machine|db)\s*"(.*)"\s*$')


class LocalDvc(DatasetCheckout):
    """The DVC operations of one workspace clone, against a remote kept below `remote_root`."""

    def __init__(
        self, settings: Settings, root: Path, redactor: Redactor, remote_root: Path, cache_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.root = root.resolve()
        self.redact = redactor
        self.remote_root = remote_root
        self.cache_dir = cache_dir or settings.cache_dir

    # The operations ---------------------------------------------------------------------------

    def pull(self) -> None:
        """Check out the pointer's data, each object from the cache, else fetched from the remote into it."""
        config = self._checked_config()
        md5 = self._checked_pointer(config)
        objects = self._objects(config, md5)
        fetch_from = self._remote_dir(config)
        missing = [oid for oid in objects.values() if not self._in_cache(oid, fetch_from)]
        if missing:
            raise DvcError(
                f"dvc pull from remote {self.settings.dvc_remote!r} failed: {len(missing)} object(s) of {md5} "
                f"are neither in the cache nor on the remote (e.g. {', '.join(missing[:3])})"
            )
        if md5.endswith(".dir"):
            self._check_out_directory(objects)
        else:
            link_into_place(self._cached(md5), self.data_path)

    def add(self) -> Pointer:
        self._checked_config()
        return self._added(None)

    def add_and_push(self, written: WrittenFile | None = None) -> tuple[Pointer, str]:
        """`add` then `push`; `written` (the md5 the writer computed) spares hashing a file that is still exactly it."""
        config = self._checked_config()
        pointer = self._added(written)
        self._pushed(config, pointer.md5)
        return pointer, self._remote_url(config)

    def push(self) -> int:
        config = self._checked_config()
        return self._pushed(config, self._checked_pointer(config))

    def missing_on_remote(self) -> list[str]:
        """Named as DVC's cloud status names them: the data's path, and a directory's files below it."""
        config = self._checked_config()
        md5 = self._checked_pointer(config)
        return sorted(self._not_on_remote(config, md5))

    def remote_url(self) -> str:
        return self._remote_url(self._checked_config())

    # Add and push -----------------------------------------------------------------------------

    def _added(self, written: WrittenFile | None) -> Pointer:
        data = self.data_path
        if data.is_dir() and not data.is_symlink():
            files = files_below(data)
            entries = {relpath: cache_file(self.cache_dir, data / relpath, md5_of(data / relpath)) for relpath in files}
            manifest = directory_manifest(entries)
            md5 = manifest_md5(manifest)
            self._keep(md5, manifest)
            size = sum((data / relpath).stat().st_size for relpath in files)
            pointer = self._write_own_pointer(md5, size, len(files))
        elif data.is_file() and not data.is_symlink():
            known = written.md5 if written is not None and written.still_describes(data) else None
            md5 = cache_file(self.cache_dir, data, known or md5_of(data))
            pointer = self._write_own_pointer(md5, data.stat().st_size, None)
        else:
            raise DvcError(f"dvc add failed: {self.settings.data_relpath} is not a file or a directory of files")
        self._ignore_in_git()
        return pointer

    def _pushed(self, config: dict[str, Any], md5: str) -> int:
        """Upload each object the remote lacks, then prove every one is there; returns how many went up."""
        remote = self._remote_dir(config)
        objects = list(self._objects(config, md5).values())
        uploaded = 0
        for oid in sorted(self._not_on_remote(config, md5).values(), key=lambda oid: oid == md5):  # the manifest last
            cached = self._cached(oid)
            if not cached.is_file():
                raise DvcError(
                    f"dvc push to remote {self.settings.dvc_remote!r} failed: object {oid} is not in the cache"
                )
            copy_object(cached, object_path(remote, oid))
            uploaded += 1
        missing = [oid for oid in objects if not object_path(remote, oid).is_file()]
        if missing:
            raise DvcError(
                f"dvc push left {len(missing)} object(s) of {md5} off remote {self.settings.dvc_remote!r} "
                f"(e.g. {', '.join(missing[:3])}): nothing is committed"
            )
        return uploaded

    def _ignore_in_git(self) -> None:
        """The data's entry in the `.gitignore` beside it, appended as `dvc add` appends it."""
        data = PurePosixPath(self.settings.data_relpath)
        gitignore = self.root / str(data.parent) / ".gitignore"
        entry = f"/{data.name}"
        text = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
        if entry in text.splitlines():
            return
        separator = "\n" if text and not text.endswith("\n") else ""
        write_atomically(gitignore, f"{text}{separator}{entry}\n")

    # The cache --------------------------------------------------------------------------------

    def _cached(self, oid: str) -> Path:
        return object_path(self.cache_dir, oid)

    def _keep(self, oid: str, content: bytes) -> None:
        cached = self._cached(oid)
        if not cached.is_file():
            keep_in_cache(cached, content)

    def _in_cache(self, oid: str, remote: Path) -> bool:
        """Whether the object is in the cache, fetched from the remote when it was not."""
        cached = self._cached(oid)
        if cached.is_file():
            return True
        stored = object_path(remote, oid)
        if not stored.is_file():
            return False
        copy_object(stored, cached, mode=READ_ONLY)
        return True

    def _check_out_directory(self, objects: dict[str, str]) -> None:
        """The directory holds exactly the manifest's files, each a link to its cached object."""
        data = self.data_path
        if data.is_symlink() or (data.exists() and not data.is_dir()):
            data.unlink()
        data.mkdir(parents=True, exist_ok=True)
        prefix = f"{self.settings.data_relpath}/"
        wanted = {name.removeprefix(prefix): oid for name, oid in objects.items() if name.startswith(prefix)}
        for relpath in files_below(data):
            if relpath not in wanted:
                (data / relpath).unlink()
        for relpath, oid in wanted.items():
            link_into_place(self._cached(oid), data / relpath)

    # The pointer, the manifest and the configuration, checked as `dvcops.Dvc` checks them -------

    def _checked_config(self) -> dict[str, Any]:
        """The repository's DVC configuration, once it and the places DVC writes are checked."""
        problems = symlink_problems(self.root, self.settings)
        options: dict[str, Any] = {}
        for name in CONFIG_FILES:
            loaded, problem = _load_config(self.root / name, name)
            if problem is not None:
                problems.append(problem)
                continue
            problems.extend(Problem(why, file=name, value=key) for key, why in refused_options(loaded, self.settings))
            _merge(options, loaded)  # config.local over config, as DVC merges its levels
        refuse(self.describe, problems)
        return options

    def _checked_pointer(self, config: dict[str, Any]) -> str:
        Pointer.read(self.pointer_file)  # refuses what is no pointer at all
        md5, problems = pointer_problems(self.pointer_file.read_text(encoding="utf-8"), self.settings)
        refuse(self.describe, problems)
        assert md5 is not None
        if md5.endswith(".dir"):
            self._manifest(config, md5)
        return md5

    def _manifest(self, config: dict[str, Any], md5: str) -> dict[str, str]:
        """A directory's files and their md5s, from its checked manifest (kept in the cache once read)."""
        cached, stored = self._cached(md5), object_path(self._remote_dir(config), md5)
        source = cached if cached.is_file() else stored
        try:
            with source.open("rb") as manifest:
                raw = manifest.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            where = f"neither in the cache nor on remote {self.settings.dvc_remote!r}"
            raise DvcError(f"{self.describe()}: its manifest {md5} is {where}") from None
        parts, problems = manifest_entries(raw, md5, f"manifest {md5}")
        refuse(self.describe, problems)
        self._keep(md5, raw)
        return parts

    def _objects(self, config: dict[str, Any], md5: str) -> dict[str, str]:
        """Each object of the pointer's data by the name DVC gives it: the data's path, a directory's files below it."""
        name = self.settings.data_relpath
        objects = {name: md5}
        if md5.endswith(".dir"):
            objects.update({f"{name}/{relpath}": oid for relpath, oid in self._manifest(config, md5).items()})
        return objects

    def _not_on_remote(self, config: dict[str, Any], md5: str) -> dict[str, str]:
        """The objects DVC's status finds missing. A directory whose manifest is on the remote is taken
        to be there whole, as DVC takes it (its manifest goes up last); a push proves each object."""
        remote = self._remote_dir(config)
        if md5.endswith(".dir") and object_path(remote, md5).is_file():
            return {}
        return {name: oid for name, oid in self._objects(config, md5).items() if not object_path(remote, oid).is_file()}

    def _remote_url(self, config: dict[str, Any]) -> str:
        url = self.settings.dvc_remote_url or config.get("remote", {}).get(self.settings.dvc_remote, {}).get("url")
        if not url:
            raise DvcError(
                f"remote {self.settings.dvc_remote!r} has no URL: set PIPELINE_DVC_REMOTE_URL or name it in .dvc/config"
            )
        return str(url)

    def _remote_dir(self, config: dict[str, Any]) -> Path:
        """Where the remote's objects are kept: `remote_root/bucket/prefix` for `s3://bucket/prefix`."""
        url = self._remote_url(config)
        parts = urlsplit(url)
        segments = [parts.netloc, *parts.path.split("/")]
        if not parts.netloc or any(segment in (".", "..") for segment in segments):
            raise DvcError(self.redact(f"remote {self.settings.dvc_remote!r} has URL {url!r}: not a bucket and prefix"))
        return self.remote_root.joinpath(*filter(None, segments))


def _load_config(path: Path, name: str) -> tuple[dict[str, Any], Problem | None]:
    """A DVC configuration file read as DVC reads it (configobj, keys lower-cased, named sections)."""
    from configobj import ConfigObj, ConfigObjError  # type: ignore[import-untyped]  # DVC's own reader

    if path.is_symlink() or not path.is_file():
        return {}, None  # a symlink is refused by symlink_problems
    if path.stat().st_size > MAX_CONFIG_BYTES:
        return {}, Problem(f"larger than {MAX_CONFIG_BYTES} bytes", file=name)
    try:
        loaded = ConfigObj(path.read_text(encoding="utf-8").splitlines()).dict()
    except (ConfigObjError, UnicodeDecodeError) as error:
        return {}, Problem(f"not a DVC configuration ({error})", file=name)
    options: dict[str, Any] = {}
    for section, values in _lower_keys(loaded).items():
        named = _NAMED_SECTION.match(section)
        if named:
            options.setdefault(named[1], {})[named[2]] = values
        else:
            options[section] = values
    return options, None


def _merge(into: dict[str, Any], options: dict[str, Any]) -> None:
    for key, value in options.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _lower_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {key.lower(): _lower_keys(value) if isinstance(value, dict) else value for key, value in data.items()}
