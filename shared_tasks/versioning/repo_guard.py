"""The data repository is untrusted input: what it tells DVC is checked before DVC acts on it.

Anyone with push access to the data repository can commit. DVC takes a repository's `.dvc/config`,
a pointer's fields and a directory manifest as instructions: where to upload (an endpoint, another
remote, `push: false`), who may read (ACLs), which files to write (a manifest's `relpath`, a pointer's
`files`). Here the product decides all of these: the settings say where and how data is stored, the
layout says which names the dataset holds, and a commit that says otherwise is refused, naming the
commit, the file and the key or entry, before DVC reads any of it (the zip-slip rule, applied to DVC).
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from shared_tasks.files import write_atomically
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.storage.parts import PART_PATTERN
from shared_tasks.storage.pointer import Pointer, pointer_text
from shared_tasks.validation.schema import DataValidationError, Problem
from shared_tasks.versioning.gitops import Git, GitError

# A version adds at most one part and small parts merge, so a real manifest holds a few dozen.
MAX_MANIFEST_ENTRIES = 10_000
MAX_ENTRY_NAME_LENGTH = 255  # NAME_MAX of the file systems the workspace lives on
MAX_MANIFEST_BYTES = MAX_MANIFEST_ENTRIES * 128  # an entry is ~70 bytes of JSON
MAX_CONFIG_BYTES = 64 * 1024
MD5 = re.compile(r"^[0-9a-f]{32}$")

# The pointer fields the product writes itself; every other `outs` key DVC accepts (push, remote,
# cache, files, fs_config, ...) and every other top-level key (deps, wdir, frozen, ...) is refused.
POINTER_OUT_FIELDS = ("md5", "size", "nfiles", "hash", "path")
POINTER_TOP_FIELDS = ("outs",)
# `.dvc/config` options a run honours: none that moves data, changes credentials, ACLs, endpoints,
# or the cache's place, link type or modes. The remote's URL is honoured only where the settings
# name none (the local stack); the cluster sets PIPELINE_DVC_REMOTE_URL.
HARMLESS_CORE_OPTIONS = ("analytics", "autostage", "check_update", "interactive")
CONFIG_FILES = (".dvc/config", ".dvc/config.local")
# What DVC writes below the repository besides the data: a symlink committed there would point its writes elsewhere.
DVC_WRITES_BELOW = (".dvc", ".dvc/tmp", ".dvc/cache", ".dvcignore", *CONFIG_FILES)


class UntrustedRepositoryError(DataValidationError):
    """The commit asks DVC for what the product decides itself (where and how data is stored, which
    files the dataset holds); a ValueError, so no retry is spent on it."""


def head_described(root: Path, settings: Settings) -> str:
    """The checked-out commit as an error names it: its hash and who made it."""
    try:
        line = Git(settings, root, Redactor()).output("log", "-1", "--format=%H%x1f%an <%ae>", "HEAD")
        commit, author = line.split("\x1f", 1)
    except (GitError, ValueError):
        return f"the checkout at {root.name}"
    return f"the version at {commit[:12]} (by {author})"


class DatasetCheckout:
    """Where a workspace holds the dataset and its pointer, how the pointer is written, and how an
    error names its commit: the same for every DVC client."""

    settings: Settings
    root: Path

    @property
    def data_path(self) -> Path:
        return self.root / self.settings.data_relpath

    @property
    def pointer_file(self) -> Path:
        return self.root / self.settings.pointer_path

    def describe(self) -> str:
        return head_described(self.root, self.settings)

    def _write_own_pointer(self, md5: str, size: int | None, nfiles: int | None) -> Pointer:
        """The pointer as the product knows it; no field a commit added (push, remote, cache, ...) survives.

        A crash leaves the old pointer or the new one, never half of one.
        """
        text = pointer_text(md5, size, nfiles, PurePosixPath(self.settings.data_relpath).name)
        write_atomically(self.pointer_file, text)
        return Pointer.parse(text)


def refuse(describe: Callable[[], str], problems: list[Problem]) -> None:
    if problems:
        raise UntrustedRepositoryError(describe(), problems)


# --- the workspace: symlinks and DVC's configuration -------------------------------------------


def symlink_problems(root: Path, settings: Settings) -> list[Problem]:
    """Symlinks (or non-regular files) where DVC reads its configuration or writes data, lock files or .gitignore."""
    data = PurePosixPath(settings.data_relpath)
    on_the_way = [str(PurePosixPath(*data.parts[:depth])) for depth in range(1, len(data.parts) + 1)]
    places = [*on_the_way, settings.pointer_path, str(data.parent / ".gitignore"), *DVC_WRITES_BELOW]
    data_path = root / settings.data_relpath
    if data_path.is_dir() and not data_path.is_symlink():
        places.extend(f"{settings.data_relpath}/{entry.name}" for entry in data_path.iterdir())
    problems = []
    for place in dict.fromkeys(places):
        try:
            mode = (root / place).lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            target = str((root / place).readlink())
            problems.append(
                Problem(
                    "a symlink where DVC reads or writes (it may lead out of the workspace)", file=place, value=target
                )
            )
        elif place in CONFIG_FILES and not stat.S_ISREG(mode):
            problems.append(Problem("not a regular file", file=place))
    return problems


def config_problems(root: Path, settings: Settings) -> list[Problem]:
    """Options of the committed `.dvc/config` and `.dvc/config.local` a run does not honour."""
    from dvc.config import Config, ConfigError

    problems = []
    for name in CONFIG_FILES:
        path = root / name
        if not path.is_file() or path.is_symlink():
            continue  # a symlink is refused by symlink_problems
        if path.stat().st_size > MAX_CONFIG_BYTES:
            problems.append(Problem(f"larger than {MAX_CONFIG_BYTES} bytes", file=name))
            continue
        try:
            options = Config.load_file(str(path))
        except (ConfigError, OSError) as error:
            problems.append(Problem(f"not a DVC configuration ({error})", file=name))
            continue
        problems.extend(Problem(why, file=name, value=key) for key, why in refused_options(options, settings))
    return problems


def refused_options(options: Mapping[str, Any], settings: Settings) -> list[tuple[str, str]]:
    """(key, why) for each option of a parsed DVC configuration that a run does not honour."""
    refused = []
    for key_path, value in _leaves(options):
        why = _why_refused(key_path, value, settings)
        if why is not None:
            refused.append((".".join(key_path), why))
    return refused


def _leaves(options: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in options.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, str(key)))
        else:
            yield (*prefix, str(key)), value


def _why_refused(key: tuple[str, ...], value: Any, settings: Settings) -> str | None:
    decided = "where and how data is stored comes from the settings; a repository may not set it"
    match key:
        case ("core", option) if option in HARMLESS_CORE_OPTIONS:
            return None
        case ("core", "remote"):
            if str(value).lower() == settings.dvc_remote.lower():
                return None
            return f"names remote {value!r}; runs use the settings' remote {settings.dvc_remote!r}"
        case ("remote", name, "url") if name == settings.dvc_remote:
            if settings.dvc_remote_url is not None or str(value).startswith("s3://"):
                return None  # the settings' URL wins; else the repository names the bucket (the local stack)
            return "the remote's URL must be an s3:// URL"
        case ("remote", name, _) if name != settings.dvc_remote:
            return f"a remote the settings do not name ({settings.dvc_remote!r} is): {decided}"
    return decided


# --- the pointer ---------------------------------------------------------------------------------


def pointer_problems(text: str, settings: Settings) -> tuple[str | None, list[Problem]]:
    """The pointer's md5 and the fields of it the product does not write itself.

    `text` has been read by Pointer.read, which refuses what is not a pointer at all.
    """
    where = settings.pointer_path
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("outs"), list) or len(data["outs"]) != 1:
        return None, [Problem("must track exactly one output", file=where)]
    out = data["outs"][0]
    if not isinstance(out, dict):
        return None, [Problem("its output is not a mapping", file=where)]
    problems = [
        Problem(
            "a field the product does not write (it would change where or how data is stored)", file=where, value=key
        )
        for key in data
        if key not in POINTER_TOP_FIELDS
    ]
    problems.extend(
        Problem(
            "an outs field the product does not write (it would change where or how data is stored)",
            file=where,
            value=f"outs.{key}",
        )
        for key in out
        if key not in POINTER_OUT_FIELDS
    )
    md5, directory = str(out.get("md5")), settings.layout is Layout.PARTITIONED
    if not MD5.match(md5.removesuffix(".dir")) or md5.endswith(".dir") != directory:
        wanted = "a directory's md5 (32 hex digits and .dir)" if directory else "a file's md5 (32 hex digits)"
        problems.append(
            Problem(f"outs.md5 must be {wanted} in the {settings.layout.value} layout", file=where, value=md5)
        )
    expected_path = PurePosixPath(settings.data_relpath).name
    if out.get("path") != expected_path:
        problems.append(Problem(f"outs.path must be {expected_path!r}", file=where, value=str(out.get("path"))))
    if out.get("hash") != "md5":
        problems.append(Problem("outs.hash must be md5 (DVC 3)", file=where, value=str(out.get("hash"))))
    for key in ("size", "nfiles"):
        if key in out and (type(out[key]) is not int or out[key] < 0):
            problems.append(Problem(f"outs.{key} must be a whole number", file=where, value=str(out[key])))
    return (md5 if not problems else None), problems


# --- a directory's manifest ------------------------------------------------------------------------


def manifest_entries(raw: bytes, md5: str, describe_manifest: str) -> tuple[dict[str, str], list[Problem]]:
    """The part names and md5s of a DVC `.dir` manifest, and every problem with its entries.

    The manifest must be the one its name says (DVC does not check), hold at most
    MAX_MANIFEST_ENTRIES entries of only `relpath` and `md5`, and each `relpath` must be a part
    name of the partitioned layout: a plain file name, so nothing lands outside the dataset's
    directory, whatever the spelling of the climb.
    """
    entries, problems = _manifest_list(raw, md5, describe_manifest)
    parts: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"relpath", "md5"}:
            fields = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            problems.append(
                Problem(f"an entry must hold exactly relpath and md5, not {fields}", file=describe_manifest)
            )
            continue
        relpath, entry_md5 = entry["relpath"], entry["md5"]
        why = entry_name_problem(relpath)
        if why is None and not (isinstance(entry_md5, str) and MD5.match(entry_md5)):
            why = "its md5 is not 32 hex digits"
        if why is None and relpath in parts:
            why = "listed twice"
        if why is not None:
            problems.append(Problem(why, file=describe_manifest, value=str(relpath)))
        else:
            parts[relpath] = entry_md5
    return parts, problems


def _manifest_list(raw: bytes, md5: str, where: str) -> tuple[list[Any], list[Problem]]:
    if len(raw) > MAX_MANIFEST_BYTES:
        return [], [Problem(f"larger than {MAX_MANIFEST_BYTES} bytes", file=where)]
    if hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5.removesuffix(".dir"):
        return [], [Problem("its content does not match its name (a tampered object)", file=where)]
    try:
        entries = json.loads(raw)
    except ValueError as error:
        return [], [Problem(f"not JSON ({error})", file=where)]
    if not isinstance(entries, list) or not entries:
        return [], [Problem("not a list of entries, or an empty one", file=where)]
    if len(entries) > MAX_MANIFEST_ENTRIES:
        return [], [Problem(f"{len(entries)} entries, more than a dataset's {MAX_MANIFEST_ENTRIES}", file=where)]
    return entries, []


def entry_name_problem(relpath: object) -> str | None:
    """Why a manifest entry's relpath is not a part name of this dataset, most specific first."""
    if not isinstance(relpath, str):
        return "relpath is not a string"
    if not relpath:
        return "an empty name"
    if len(relpath.encode("utf-8", "surrogatepass")) > MAX_ENTRY_NAME_LENGTH:
        return f"a name longer than {MAX_ENTRY_NAME_LENGTH} bytes"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in relpath):
        return "a control character in the name"
    return _path_problem(relpath)


def _path_problem(relpath: str) -> str | None:
    if relpath.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relpath):
        return "an absolute path (it writes outside the dataset's directory)"
    if "\\" in relpath:
        return "a backslash in the name (a path separator elsewhere)"
    segments = relpath.split("/")
    if ".." in segments:
        return "climbs with '..' (it writes outside the dataset's directory)"
    if "." in segments or "" in segments:
        return "not a normalised path ('.' or an empty segment)"
    if len(segments) > 1:
        return "a path with directories (parts lie directly in the dataset's directory)"
    if not PART_PATTERN.match(relpath):
        return "not a part name (part-NNNNNN.csv)"
    return None
