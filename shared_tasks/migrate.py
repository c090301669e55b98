"""Move a repository's dataset from the single CSV file to the partitioned layout.

The migration is itself a version: the same records, now as part files, published like any
run (data to the remote first, then one commit that swaps the pointers), so history and
verify span it and every earlier version stays reachable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared_tasks.history import Mirror, settings_for_commit
from shared_tasks.layout import data_facts, same_records, split_into_parts
from shared_tasks.settings import Layout, Settings
from shared_tasks.steps import RunContext, pull_data
from shared_tasks.versions import commit_message, list_versions

MIGRATION_ORCHESTRATOR = "migrate"


class MigrationError(RuntimeError):
    """The migration could not be published; the origin is unchanged."""


@dataclass(frozen=True)
class MigrationResult:
    commit: str
    md5: str
    rows: int
    parts: int
    already_partitioned: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        facts = data_facts(Layout.PARTITIONED, directory)
        target_ctx = RunContext(target, run_id)
        pointer, _ = target_ctx.dvc.add_and_push()
        if pointer.md5 != facts.md5:
            raise MigrationError(f"DVC recorded {pointer.md5} for the parts, expected {facts.md5}")
        message = commit_message(run_id, MIGRATION_ORCHESTRATOR, 0, pulled.rows)
        ctx.git.commit_paths(message, [single.pointer_path, target.pointer_path, _gitignore(target)])
        outcome = ctx.git.push()
        if not outcome.accepted:
            raise MigrationError(f"the origin moved during the migration ({outcome.detail}); run it again")
    return MigrationResult(ctx.git.rev("HEAD"), facts.md5, facts.rows, parts, already_partitioned=False)


def _already_partitioned(target: Settings) -> MigrationResult | None:
    """The newest version when the branch head already holds part files."""
    mirror = Mirror(target)
    mirror.refresh()
    ref = mirror.git.origin_ref
    if settings_for_commit(target, mirror.git, ref).layout is not Layout.PARTITIONED:
        return None
    newest = list_versions(mirror.git, ref, target.pointer_paths)[0]
    return MigrationResult(newest.commit, newest.md5, newest.rows or 0, 0, already_partitioned=True)


def _gitignore(settings: Settings) -> str:
    return str(Path(settings.data_relpath).parent / ".gitignore")
