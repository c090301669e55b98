"""Writing a file whole or not at all: a reader, a crash or a second writer never sees half of one.

Every write goes to a temporary file of its own, made with O_EXCL under a random name beside the
target (or in `temp_dir`, on the same file system, where the target's directory must hold nothing
else), and is renamed over the target only when complete. Two writers of one path therefore never
share a temporary file: the last rename wins and the target holds one writer's whole content. On
any exception the temporary file goes and the target keeps what it held.

Durability is the caller's choice, as each write needs it: `fsync` makes the content durable before
the rename, `fsync_directory` the rename itself before the call returns (what a server needs before
it acknowledges a write). A new file gets what `open()` would give it under the umask, or `mode`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

TEMPORARY_SUFFIX = ".tmp"
# The target's name is kept in the temporary one (a stray one says what it was for), its first
# bytes only, so that the whole name stays within the 255 bytes a file name may hold.
_NAME_KEPT = 200
_NAME_ATTEMPTS = 100


def write_atomically(
    target: Path,
    content: bytes | str,
    *,
    encoding: str = "utf-8",
    fsync: bool = False,
    fsync_directory: bool = False,
    mode: int | None = None,
    temp_dir: Path | None = None,
) -> None:
    """`target` now holds `content` (text is encoded with `encoding`), replacing what it held."""
    if isinstance(content, str):
        data = content.encode(encoding)
    elif isinstance(content, bytes | bytearray | memoryview):
        data = bytes(content)
    else:
        raise TypeError(f"content for {target} must be bytes or str, not {type(content).__name__}")
    with atomic_file(target, fsync=fsync, fsync_directory=fsync_directory, mode=mode, temp_dir=temp_dir) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_file(
    target: Path,
    *,
    fsync: bool = False,
    fsync_directory: bool = False,
    mode: int | None = None,
    temp_dir: Path | None = None,
) -> Iterator[BinaryIO]:
    """A binary file to stream into; on a clean exit of the block it replaces `target`."""
    descriptor, temporary = _create_temporary(target, temp_dir)
    with _replacing(temporary, target, fsync_directory), os.fdopen(descriptor, "wb") as handle:
        yield handle
        handle.flush()
        _finish(handle.fileno(), fsync, mode)


@contextlib.contextmanager
def atomic_text_file(
    target: Path,
    *,
    encoding: str = "utf-8",
    newline: str | None = None,
    fsync: bool = False,
    fsync_directory: bool = False,
    mode: int | None = None,
    temp_dir: Path | None = None,
) -> Iterator[TextIO]:
    """A text file to stream into (as `open(..., "w")` makes one); on a clean exit it replaces `target`."""
    descriptor, temporary = _create_temporary(target, temp_dir)
    with (
        _replacing(temporary, target, fsync_directory),
        os.fdopen(descriptor, "w", encoding=encoding, newline=newline) as handle,
    ):
        yield handle
        handle.flush()
        _finish(handle.fileno(), fsync, mode)


@contextlib.contextmanager
def atomic_path(
    target: Path,
    *,
    fsync: bool = False,
    fsync_directory: bool = False,
    mode: int | None = None,
    temp_dir: Path | None = None,
) -> Iterator[Path]:
    """An empty temporary file's path, for writers that take a file name (a copy in the kernel,
    a library that opens the file itself); on a clean exit of the block it replaces `target`."""
    descriptor, temporary = _create_temporary(target, temp_dir)
    os.close(descriptor)
    with _replacing(temporary, target, fsync_directory):
        yield temporary
        if fsync or mode is not None:
            with temporary.open("rb") as written:
                _finish(written.fileno(), fsync, mode)


def sync_directory(directory: Path) -> None:
    """Make the entries of `directory` (a file renamed or unlinked in it) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _create_temporary(target: Path, temp_dir: Path | None) -> tuple[int, Path]:
    """A new file no one else has (O_EXCL), mode 0o666 less the umask as `open()` would make it."""
    directory = target.parent if temp_dir is None else temp_dir
    kept_name = os.fsdecode(os.fsencode(target.name)[:_NAME_KEPT])
    for _ in range(_NAME_ATTEMPTS):
        temporary = directory / f".{kept_name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise FileNotFoundError(f"cannot write {target}: the folder {directory} does not exist") from None
    raise FileExistsError(f"no free temporary name for {target} in {directory} after {_NAME_ATTEMPTS} tries")


@contextlib.contextmanager
def _replacing(temporary: Path, target: Path, durable_rename: bool) -> Iterator[None]:
    """Rename `temporary` over `target` after the block; remove it instead if anything failed."""
    try:
        yield
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable_rename:
        sync_directory(target.parent)


def _finish(descriptor: int, fsync: bool, mode: int | None) -> None:
    if mode is not None:
        os.fchmod(descriptor, mode)
    if fsync:
        os.fsync(descriptor)
