"""Checks of a published version as it stands in the workspace of the run that made it.

The orchestrators' asset checks call these, so a check reads the data where the steps wrote it,
in either layout, through the same DVC configuration.
"""

from __future__ import annotations

from shared_tasks.project.settings import Settings
from shared_tasks.run.context import RunContext
from shared_tasks.run.workspace import WorkspaceError
from shared_tasks.storage.pointer import Pointer


def _published_context(settings: Settings, run_id: str, md5: str) -> RunContext:
    ctx = RunContext(settings, run_id)
    recorded = Pointer.read(ctx.dvc.pointer_file).md5 if ctx.dvc.pointer_file.exists() else None
    if recorded != md5:
        raise WorkspaceError(f"the workspace of run {run_id!r} holds {recorded}, not the published {md5}")
    return ctx


def validated_rows(settings: Settings, run_id: str, md5: str) -> int:
    """The records of the published data, every one checked against the schema."""
    ctx = _published_context(settings, run_id, md5)
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where a dataset is read

    source = f"the published version {md5}"
    return validate_dataset(ctx.dataset().files(), source, spill_dir=ctx.workspace.root, rules=ctx.rules).records


def missing_on_remote(settings: Settings, run_id: str, md5: str) -> list[str]:
    """The objects of the published data that the DVC remote does not hold."""
    return _published_context(settings, run_id, md5).dvc.missing_on_remote()
