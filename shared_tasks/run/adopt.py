"""A declared pipeline's first version: a team's CSV published as its dataset, as any run publishes.

The CSV is validated whole against the pipeline's schema before anything is written; then the data
goes to the DVC remote first and one commit adds the pointer, pushed with the same bounded retries
as a run's publish (another pipeline may publish to the same branch meanwhile). A branch that
already tracks the dataset is refused: from then on, runs make its versions. Run again with the
same run id, it finds its commit and publishes nothing twice.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shared_tasks.project.records import Record
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.context import RunContext
from shared_tasks.run.publish import PushRejected, retry_lost_races
from shared_tasks.run.trust import remember_valid
from shared_tasks.run.workspace import WorkspaceError
from shared_tasks.storage.parts import part_name
from shared_tasks.versioning.versions import commit_message

ADOPT_ORCHESTRATOR = "adopt"


class AdoptedVersion(Record):
    run_id: str
    commit: str
    md5: str
    rows: int
    already_published: bool = False


def adopt_csv(settings: Settings, csv: Path, run_id: str) -> AdoptedVersion:
    """Publish `csv` as the first version of the settings' (declared) pipeline's dataset."""
    from shared_tasks.validation.dataset_check import validate_dataset  # numpy and polars only where read

    if not settings.is_declared:
        raise ValueError("adopt publishes a declared pipeline's first version: set PIPELINE_PROJECT_FILE")
    ctx = RunContext(settings, run_id)
    if not csv.is_file():
        raise FileNotFoundError(f"{csv} is not a file")
    with ctx.workspace.locked():
        verdict = validate_dataset([csv], f"CSV {csv.name}", spill_dir=ctx.workspace.root, rules=ctx.rules)
        return retry_lost_races(
            settings,
            lambda attempt: _adopt_once(ctx, csv, verdict.records),
            who=f"adopting {csv.name}",
            advice="Nothing was published; run it again with the same run id",
        )


def _adopt_once(ctx: RunContext, csv: Path, rows: int) -> AdoptedVersion:
    settings = ctx.settings
    ctx.clone_at_origin_head()
    done = ctx.published(ctx.git.origin_ref)
    if done is not None and done.md5 is not None:
        return AdoptedVersion(
            run_id=ctx.run_id, commit=done.commit, md5=done.md5, rows=done.rows or rows, already_published=True
        )
    repo = ctx.workspace.repo
    tracked = [path for path in settings.pointer_paths if (repo / path).exists()]
    if tracked:
        raise WorkspaceError(
            f"the branch already tracks {tracked[0]}: the pipeline's runs make its versions from now on"
        )
    data = repo / settings.data_relpath
    data.parent.mkdir(parents=True, exist_ok=True)
    if settings.layout is Layout.PARTITIONED:
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir()
        shutil.copyfile(csv, data / part_name(0))  # one part; runs add parts of their own
    else:
        shutil.copyfile(csv, data)
    pointer, _ = ctx.dvc.add_and_push()
    remember_valid(ctx.catalog, pointer.md5, ctx.rules)
    gitignore = str(Path(settings.data_relpath).parent / ".gitignore")
    ctx.git.commit_paths(commit_message(ctx.run_id, ADOPT_ORCHESTRATOR, rows, rows), [settings.pointer_path, gitignore])
    outcome = ctx.git.push()
    if not outcome.accepted:
        raise PushRejected(outcome.detail)
    return AdoptedVersion(run_id=ctx.run_id, commit=ctx.git.rev("HEAD"), md5=pointer.md5, rows=rows)
