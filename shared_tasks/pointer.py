"""DVC's pointer files and remote layout, read without importing DVC.

History, verify and the orchestrators' watchers read pointers from Git; none of them needs DVC's
own (slow to import) machinery for that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml


class PointerError(ValueError):
    """A `.dvc` file that does not say what DVC output it tracks."""


@dataclass(frozen=True)
class Pointer:
    """What a `.dvc` pointer file says about the tracked output."""

    md5: str
    size: int | None
    path: str

    @classmethod
    def parse(cls, text: str) -> Pointer:
        try:
            data = yaml.safe_load(text)
            out = data["outs"][0]
            return cls(md5=str(out["md5"]), size=out.get("size"), path=str(out["path"]))
        except (yaml.YAMLError, KeyError, IndexError, TypeError) as error:
            raise PointerError(f"not a valid .dvc pointer ({type(error).__name__}: {error})") from None

    @classmethod
    def read(cls, path: Path) -> Pointer:
        return cls.parse(path.read_text(encoding="utf-8"))


def s3_object_url(remote_url: str, md5: str) -> str:
    """Where DVC 3 stores a file's content on the remote."""
    return f"{remote_url.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


def directory_md5(entries: dict[str, str]) -> str:
    """DVC 3's hash of a directory from its files' md5s, keyed by relative path."""
    manifest = [{"md5": entries[relpath], "relpath": relpath} for relpath in sorted(entries)]
    text = json.dumps(manifest, sort_keys=True).encode("utf-8")
    return hashlib.md5(text, usedforsecurity=False).hexdigest() + ".dir"
