"""DVC 3's objects as files, in a cache or in a remote kept as a directory, written as DVC writes them.

An object is named by its md5 and lies where DVC 3 puts it (`files/md5/ab/cdef...`). A cached
object is read-only, and a file checked out from the cache is a hard link to it (a copy across file
systems), as DVC's `hardlink` cache type leaves it. Every object is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath

from shared_tasks.files import atomic_path, write_atomically
from shared_tasks.storage.pointer import object_key

READ_ONLY = 0o444  # as DVC keeps its cache objects


def object_path(store: Path, oid: str) -> Path:
    """Where DVC 3 keeps an object in a cache or on a remote."""
    return store / object_key(oid)


def keep_in_cache(path: Path, content: bytes) -> None:
    """An object (a checked manifest) into the cache, read-only as DVC keeps its objects."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, content, mode=READ_ONLY)


def cache_file(cache_dir: Path, path: Path, md5: str) -> str:
    """The file's content in the cache (linked into it when it is new there), and the file a
    read-only link to that object, as DVC's `hardlink` cache type leaves it."""
    cached = object_path(cache_dir, md5)
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        link_into_place(path, cached)
        cached.chmod(READ_ONLY)
    link_into_place(cached, path)
    return md5


def copy_object(source: Path, target: Path, mode: int | None = None) -> None:
    """An object copied from one store to another (an upload, a fetch into the cache)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, mode=mode) as temporary:
        shutil.copyfile(source, temporary)


def link_into_place(source: Path, target: Path) -> None:
    """`target` becomes a hard link to `source` (a copy across file systems), replacing what was there."""
    try:
        if target.exists() and os.path.samefile(source, target):
            return
    except OSError:
        pass
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        temporary.unlink()
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)


def md5_of(path: Path) -> str:
    with path.open("rb") as content:
        return hashlib.file_digest(content, "md5").hexdigest()


def files_below(directory: Path) -> list[str]:
    """Every file below `directory`, as a manifest names it (relative, `/`-separated), sorted."""
    found: list[str] = []
    for folder, _, names in os.walk(directory):
        relative = PurePosixPath(Path(folder).relative_to(directory).as_posix())
        found.extend(str(relative / name) if str(relative) != "." else name for name in names)
    return sorted(found)
