"""DVC's pointer files and remote layout, read without importing DVC.

History, verify and the orchestrators' watchers read pointers from Git; none of them needs DVC's
own (slow to import) machinery for that. A pointer comes from the data repository, which anyone
with push access writes, so it is read as untrusted input: bounded in size, by a safe loader that
takes no aliases (a YAML bomb) and no deep nesting, each field checked for its type. Its problems
are said in a sentence, never in PyYAML's exception names.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# DVC writes ~120 bytes; a pointer with comments and metadata stays far below this.
MAX_POINTER_BYTES = 64 * 1024
# outs -> [0] -> meta -> ...: DVC's own pointers nest four deep.
MAX_POINTER_DEPTH = 16
MD5_PATTERN = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


class PointerError(ValueError):
    """A `.dvc` file that does not say what DVC output it tracks."""


class _PointerLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (each may repeat a whole subtree) and with bounded nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise PointerError("uses a YAML alias (DVC writes none, and aliases can expand without bound)")
        self._depth += 1
        try:
            if self._depth > MAX_POINTER_DEPTH:
                raise PointerError(f"nests deeper than {MAX_POINTER_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _loaded(text: str) -> Any:
    if len(text) > MAX_POINTER_BYTES:
        raise PointerError(f"is {len(text)} characters long, more than a pointer's {MAX_POINTER_BYTES}")
    loader = _PointerLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PointerError(f"is not valid YAML{where}") from None
    except (yaml.YAMLError, RecursionError):
        raise PointerError("is not valid YAML") from None
    finally:
        loader.dispose()


def _output(data: Any) -> dict[Any, Any]:
    if not isinstance(data, dict):
        raise PointerError("is not a YAML mapping with `outs`")
    outs = data.get("outs")
    if not isinstance(outs, list) or not outs:
        raise PointerError("names no output (`outs` is missing or empty)")
    if len(outs) != 1:
        raise PointerError(f"names {len(outs)} outputs; the dataset's pointer names one")
    out = outs[0]
    if not isinstance(out, dict):
        raise PointerError("its output is not a mapping")
    return out


@dataclass(frozen=True)
class Pointer:
    """What a `.dvc` pointer file says about the tracked output."""

    md5: str
    size: int | None
    path: str

    @classmethod
    def parse(cls, text: str) -> Pointer:
        out = _output(_loaded(text))
        md5, size, path = out.get("md5"), out.get("size"), out.get("path")
        if not isinstance(md5, str) or not MD5_PATTERN.match(md5):
            raise PointerError(f"its md5 {_shown(md5)} is not an md5 (32 hex digits, or a directory's with .dir)")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise PointerError(f"its size {_shown(size)} is not a number of bytes")
        if not isinstance(path, str) or not path:
            raise PointerError(f"its path {_shown(path)} is not a path")
        return cls(md5=md5, size=size, path=path)

    @classmethod
    def read(cls, path: Path) -> Pointer:
        """The pointer in a checked-out file: a regular file (no link, FIFO or device), bounded, UTF-8."""
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            raise PointerError(f"cannot be read ({error.strerror})") from None
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise PointerError("is not a regular file")
            data = handle.read(MAX_POINTER_BYTES + 1)
        if len(data) > MAX_POINTER_BYTES:
            raise PointerError(f"is larger than a pointer's {MAX_POINTER_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PointerError("is not UTF-8 text") from None
        return cls.parse(text)


def _shown(value: Any) -> str:
    """A field's value as an error quotes it: short, whatever its size."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def pointer_text(md5: str, size: int | None, nfiles: int | None, path: str) -> str:
    """A pointer as the product publishes it: only what it knows itself, in DVC 3's own form.

    Fields a commit added to the pointer (`push: false`, `remote: other`, `cache: false`, ...) are
    never carried into a version the product publishes.
    """
    out: dict[str, object] = {"md5": md5}
    if size is not None:
        out["size"] = size
    if nfiles is not None:
        out["nfiles"] = nfiles
    out.update(hash="md5", path=path)
    return yaml.safe_dump({"outs": [out]}, sort_keys=False, default_flow_style=False)


def object_key(md5: str) -> str:
    """Where DVC 3 keeps an object below a cache or a remote, by its md5."""
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def s3_object_url(remote_url: str, md5: str) -> str:
    """Where DVC 3 stores a file's content on the remote."""
    return f"{remote_url.rstrip('/')}/{object_key(md5)}"


def directory_manifest(entries: dict[str, str]) -> bytes:
    """DVC 3's `.dir` object of a directory: its files' md5s, keyed by relative path, as DVC stores it."""
    manifest = [{"md5": entries[relpath], "relpath": relpath} for relpath in sorted(entries)]
    return json.dumps(manifest, sort_keys=True).encode("utf-8")


def directory_md5(entries: dict[str, str]) -> str:
    """DVC 3's hash of a directory from its files' md5s, keyed by relative path."""
    return manifest_md5(directory_manifest(entries))


def manifest_md5(manifest: bytes) -> str:
    """DVC 3's hash of a directory from its `.dir` manifest: the manifest's md5, and `.dir`."""
    return hashlib.md5(manifest, usedforsecurity=False).hexdigest() + ".dir"
