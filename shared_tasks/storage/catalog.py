"""What is known about data files by their content, so a run reads only the files it has not seen.

A cached object is immutable and named by its md5: a workspace file (the single file or a part)
that is a link to the cache object of the md5 its pointer or manifest records has that md5 (no need
to hash it again), and an md5 names the file's row count and largest id for good (kept as small
files under `memo_dir`, shared by all runs). Anything else is read and hashed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared_tasks.files import write_atomically
from shared_tasks.storage.dataset import FileFacts, file_facts, id_range, scan_ids
from shared_tasks.storage.pointer import object_key
from shared_tasks.validation.schema import ID_COLUMN


class FileCatalog:
    def __init__(self, memo_dir: Path | None, cache_dir: Path | None) -> None:
        self.memo_dir = memo_dir
        self.cache_dir = cache_dir

    @classmethod
    def unremembered(cls) -> FileCatalog:
        """A catalog that knows nothing and keeps nothing: every file is read."""
        return cls(None, None)

    def _object(self, md5: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / object_key(md5)

    def manifest(self, directory_md5: str | None) -> dict[str, str]:
        """A directory pointer's manifest from the cache: part name -> md5 (empty when unknown)."""
        if not directory_md5 or self.cache_dir is None:
            return {}
        try:
            entries = json.loads(self._object(directory_md5).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(entry["relpath"]): str(entry["md5"]) for entry in entries}

    def facts(self, file: Path, recorded_md5: str | None) -> FileFacts:
        """md5, size and records of `file`, read only when it is not the cache object of `recorded_md5`."""
        if recorded_md5 and self.is_cached_object(file, recorded_md5):
            rows = self.recall(recorded_md5).get("rows")
            if isinstance(rows, int):
                return FileFacts(md5=recorded_md5, size=file.stat().st_size, rows=rows)
        facts = file_facts(file)
        self.remember(facts.md5, rows=facts.rows)
        return facts

    def largest_id(self, file: Path, md5: str, column: str = ID_COLUMN) -> int:
        """The largest id (in the generated key `column`) of the file whose content is `md5`."""
        known = self.recall(md5).get("largest_id")
        if isinstance(known, int):
            return known
        largest = scan_ids(file, column=column)[0]
        self.remember(md5, largest_id=largest)
        return largest

    def id_range(self, file: Path, md5: str, column: str = ID_COLUMN) -> tuple[int, int] | None:
        """The smallest and largest id (generated key `column`) of the file whose content is `md5`."""
        known = self.recall(md5)
        if isinstance(known.get("smallest_id"), int) and isinstance(known.get("largest_id"), int):
            return int(known["smallest_id"]), int(known["largest_id"])
        found = id_range(file, column)
        if found is not None:
            self.remember(md5, smallest_id=found[0], largest_id=found[1])
        return found

    def recall(self, md5: str) -> dict[str, Any]:
        if self.memo_dir is None:
            return {}
        try:
            known = json.loads((self.memo_dir / f"{md5}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def remember(self, md5: str, **facts: Any) -> None:
        """Add facts about the content `md5`; a fact once known stays true (the content never changes)."""
        if self.memo_dir is None:
            return
        self.memo_dir.mkdir(parents=True, exist_ok=True)
        merged = {**self.recall(md5), **facts}
        write_atomically(self.memo_dir / f"{md5}.json", json.dumps(merged, sort_keys=True))

    def is_cached_object(self, file: Path, md5: str) -> bool:
        if self.cache_dir is None:
            return False
        try:
            return file.stat().st_ino == self._object(md5).stat().st_ino
        except OSError:
            return False
