"""No version is built on blindly: the data a run starts from is validated, once per content.

Verdicts are remembered by md5 in the file catalog: for the whole dataset (its pointer's md5) and
for each file of it (the single file, or each part with its id range). A version the pipeline made
itself (a valid base plus a validated change whose ids lie above the base's) is remembered valid
when it is made, so pulling it costs nothing. A version made elsewhere is validated in one
streaming pass over the files not already known valid; parts known valid whose id ranges lie apart
are not read again, since no id can repeat across them. A version that fails stops the run at
pull, naming the commit, who made it, and the first problems with their count.

Verdicts are keyed by the rules' fingerprint (the Table Schema's content and the generated key's
rules): a changed schema file is a new key, and every version is validated against it once.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from shared_tasks.project.records import PulledVersion
from shared_tasks.project.settings import Layout
from shared_tasks.run.context import RunContext
from shared_tasks.storage.catalog import FileCatalog
from shared_tasks.storage.pointer import Pointer
from shared_tasks.validation.schema import DatasetRules, DataValidationError, employee_rules
from shared_tasks.versioning.interfaces import DvcError
from shared_tasks.versioning.versions import described, newest_version

if TYPE_CHECKING:
    from shared_tasks.validation.dataset_check import FileVerdict


def verdict_key(rules: DatasetRules | None = None) -> str:
    """The catalog fact a valid verdict under `rules` is remembered under (the schema is read on first use)."""
    return "valid-" + (rules or employee_rules()).fingerprint[:12]


def known_valid(catalog: FileCatalog, md5: str, rules: DatasetRules | None = None) -> bool:
    return catalog.recall(md5).get(verdict_key(rules)) is True


def remember_valid(catalog: FileCatalog, md5: str, rules: DatasetRules | None = None) -> None:
    catalog.remember(md5, **{verdict_key(rules): True})


def remember_own_version(ctx: RunContext, md5: str, *written_md5s: str) -> None:
    """A version this run made: a valid base with validated records applied, so valid as a whole, and
    so is each file it wrote (the file, a new or rewritten part, alone or merged with others)."""
    for valid in (md5, *written_md5s):
        remember_valid(ctx.catalog, valid, ctx.rules)


def pull_head_data(ctx: RunContext) -> PulledVersion:
    """The checked-out commit's data in the workspace, validated (once per content) and checked against its pointer."""
    ctx.checked_pointer()
    try:
        ctx.dvc.pull()
    except DvcError as error:  # e.g. objects missing from the remote: a bad version, named
        raise DvcError(f"{_source(ctx)}: {error}") from None
    pointer_md5 = Pointer.read(ctx.dvc.pointer_file).md5
    if not known_valid(ctx.catalog, pointer_md5, ctx.rules):
        _validate(ctx, pointer_md5)
    facts = ctx.dataset().facts()
    if facts.md5 != pointer_md5:
        raise DvcError(f"pulled {ctx.settings.data_relpath} has md5 {facts.md5}, its pointer says {pointer_md5}")
    return PulledVersion(run_id=ctx.run_id, commit=ctx.git.rev("HEAD"), md5=facts.md5, size=facts.size, rows=facts.rows)


def _validate(ctx: RunContext, pointer_md5: str) -> None:
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where a dataset is read

    try:
        files = ctx.dataset().files()
    except DataValidationError as error:  # a stray or out-of-range part name
        raise DataValidationError(_source(ctx), error.problems, error.total) from None
    recorded = ctx.catalog.manifest(pointer_md5) if ctx.settings.layout is Layout.PARTITIONED else {}
    known = {
        file.name
        for file in files
        if recorded.get(file.name) and known_valid(ctx.catalog, recorded[file.name], ctx.rules)
    }
    unread = [file for file in files if file.name not in known]
    try:
        verdicts = (
            validate_dataset(unread, _source(ctx), spill_dir=ctx.workspace.root, rules=ctx.rules) if unread else None
        )
        for verdict in verdicts.files if verdicts else ():
            _remember_file(ctx.catalog, verdict, ctx.rules)
        if known and not _ranges_apart(ctx, files, recorded, verdicts.files if verdicts else ()):
            validate_dataset(files, _source(ctx), spill_dir=ctx.workspace.root, rules=ctx.rules)  # ids across parts
    except DataValidationError as error:
        raise DataValidationError(_source(ctx), error.problems, error.total) from None
    remember_valid(ctx.catalog, pointer_md5, ctx.rules)


def _remember_file(catalog: FileCatalog, verdict: FileVerdict, rules: DatasetRules) -> None:
    facts = {"rows": verdict.records, verdict_key(rules): True}
    if verdict.smallest_id is not None and verdict.largest_id is not None:
        facts.update(smallest_id=verdict.smallest_id, largest_id=verdict.largest_id)
    catalog.remember(verdict.md5, **facts)


def _ranges_apart(ctx: RunContext, files: list[Path], recorded: dict[str, str], read: tuple[FileVerdict, ...]) -> bool:
    """Whether the parts' id ranges are disjoint: then no id repeats across them."""
    key = ctx.rules.generated_key
    if key is None:
        return False  # no generated key: the unique keys are checked across every part
    ranges = []
    for file in files:
        md5 = recorded.get(file.name) or next((v.md5 for v in read if v.path == file), None)
        if md5 is None:
            return False
        span = ctx.catalog.id_range(file, md5, key)
        if span is not None:
            ranges.append(span)
    ranges.sort()
    return all(previous[1] < current[0] for previous, current in itertools.pairwise(ranges))


def _source(ctx: RunContext) -> str:
    return described(ctx.git.rev("HEAD"), newest_version(ctx.git, "HEAD", ctx.settings))
