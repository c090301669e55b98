"""Move a repository's dataset from the single CSV file to the partitioned layout.

The migration is itself a version: the same records, now as part files, published like any
run (data to the remote first, then one commit that swaps the pointers), so history and
verify span it and every earlier version stays reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shared_tasks.project.records import Record
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.context import RunContext
from shared_tasks.run.steps import pull_data
from shared_tasks.storage.layout import for_layout
from shared_tasks.storage.parts import part_files, part_name, write_part
from shared_tasks.versioning.history import Mirror, settings_for_commit
from shared_tasks.versioning.versions import commit_message, list_versions

if TYPE_CHECKING:
    import pandas as pd

MIGRATION_ORCHESTRATOR = "migrate"


class MigrationError(RuntimeError):
    """The migration could not be published; the origin is unchanged."""


class MigrationResult(Record):
    commit: str
    md5: str
    rows: int
    parts: int
    already_partitioned: bool


def migrate_to_partitioned(settings: Settings, run_id: str) -> MigrationResult:
    """Publish the branch head's dataset as part files; a no-op when it already is."""
    single = settings.model_copy(update={"layout": Layout.SINGLE_FILE})
    target = settings.model_copy(update={"layout": Layout.PARTITIONED})
    head = _already_partitioned(target)
    if head is not None:
        return head
    pulled = pull_data(single, run_id)
    ctx = RunContext(single, run_id)
    repo = ctx.workspace.repo
    source, directory = repo / single.data_relpath, repo / target.data_relpath
    with ctx.workspace.locked():
        if directory.exists():
            raise MigrationError(f"{target.data_relpath} already exists in the workspace of run {run_id!r}")
        parts = split_into_parts(source, directory, settings.part_rows)
        if not same_records(source, directory, settings.part_rows):
            raise MigrationError("the part files do not hold exactly the file's records; nothing was published")
        source.unlink()
        (repo / single.pointer_path).unlink()
        facts = for_layout(Layout.PARTITIONED, directory).facts()
        pointer, _ = RunContext(target, run_id).dvc.add_and_push()
        if pointer.md5 != facts.md5:
            raise MigrationError(f"DVC recorded {pointer.md5} for the parts, expected {facts.md5}")
        message = commit_message(run_id, MIGRATION_ORCHESTRATOR, 0, pulled.rows)
        ctx.git.commit_paths(message, [single.pointer_path, target.pointer_path, _gitignore(target)])
        outcome = ctx.git.push()
        if not outcome.accepted:
            raise MigrationError(f"the origin moved during the migration ({outcome.detail}); run it again")
    return MigrationResult(
        commit=ctx.git.rev("HEAD"), md5=facts.md5, rows=facts.rows, parts=parts, already_partitioned=False
    )


def _already_partitioned(target: Settings) -> MigrationResult | None:
    """The newest version when the branch head already holds part files."""
    mirror = Mirror(target)
    mirror.refresh()
    ref = mirror.git.origin_ref
    if settings_for_commit(target, mirror.git, ref).layout is not Layout.PARTITIONED:
        return None
    newest = list_versions(mirror.git, ref, target)[0]
    return MigrationResult(
        commit=newest.commit, md5=newest.md5, rows=newest.rows or 0, parts=0, already_partitioned=True
    )


def _gitignore(settings: Settings) -> str:
    return str(Path(settings.data_relpath).parent / ".gitignore")


def split_into_parts(source: Path, directory: Path, part_rows: int) -> int:
    """Write a single-file dataset as part files of `part_rows` records; returns how many."""
    import pandas as pd

    if part_rows < 1:
        raise ValueError(f"part_rows must be at least 1, got {part_rows}")
    directory.mkdir(parents=True, exist_ok=False)
    count = 0
    for count, chunk in enumerate(_chunks(source, part_rows), start=1):
        write_part(directory / part_name(count - 1), chunk)
    if count == 0:
        write_part(directory / part_name(0), pd.read_csv(source, nrows=0))
        count = 1
    return count


def same_records(source: Path, directory: Path, part_rows: int) -> bool:
    """Whether the parts hold exactly the file's records, field by field, one part at a time."""
    import pandas as pd

    parts = iter(part_files(directory))
    compared = 0
    for chunk in _chunks(source, part_rows):
        part = next(parts, None)
        if part is None or not chunk.reset_index(drop=True).equals(pd.read_csv(part, dtype=str, keep_default_na=False)):
            return False
        compared += 1
    leftover = list(parts)
    return not leftover or (compared == 0 and len(leftover) == 1)  # an empty dataset: one header-only part


def _chunks(source: Path, rows: int) -> Iterator[pd.DataFrame]:
    import pandas as pd

    yield from pd.read_csv(source, chunksize=rows, dtype=str, keep_default_na=False)
