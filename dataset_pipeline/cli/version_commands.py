"""`dataset-pipeline validate|restore|cutover`: trusting a version, rolling one back, moving a step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dataset_pipeline.airflow_stack import cutover_file
from dataset_pipeline.cli.app import (
    PipelineOption,
    current_settings,
    err,
    local_stack,
    out,
    print_json,
    reported_errors,
)
from shared_tasks.project.cutover import (
    BUILTIN,
    SHADOWABLE,
    CutoverSteps,
    Runner,
    read_cutover,
    write_cutover,
)
from shared_tasks.project.settings import ENV_PREFIX

if TYPE_CHECKING:
    from dataset_pipeline.shadow_record import ShadowRecord


def validate_cmd(
    target: Annotated[str, typer.Argument(help="A CSV file, or a commit, branch or tag of the origin.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    pipeline: PipelineOption = None,
) -> None:
    """Check a CSV file, or any version from the remote, against the dataset's schema, record by record."""
    from shared_tasks.validation.schema import rules_of
    from shared_tasks.validation.validate import validate_dataset_file
    from shared_tasks.versioning.history import verify

    with reported_errors():
        if _is_file(target):
            declared = pipeline is not None or f"{ENV_PREFIX}PROJECT_FILE" in os.environ
            rules = rules_of(current_settings(pipeline)) if declared else None  # else the built-in schema
            rows = validate_dataset_file(Path(target), rules)
            out.print(f"[green]✓[/green] {target}: {rows} valid record(s)", highlight=False)
            return
        result = verify(current_settings(pipeline), target, validate=True)
        if as_json:
            print_json(result.to_dict())
        elif result.ok:
            out.print(f"[green]✓[/green] {result.commit[:12]}: {result.actual_rows} valid record(s)", highlight=False)
        for problem in result.problems if not as_json else ():
            err.print(f"✗ {problem}", style="red", highlight=False, markup=False)
        if not result.ok:
            raise typer.Exit(1)


def _is_file(target: str) -> bool:
    """Whether TARGET names a file; a name the file system cannot hold (too long, NUL) names none."""
    try:
        return Path(target).is_file()
    except (OSError, ValueError):
        return False


def restore_cmd(
    rev: Annotated[str, typer.Argument(help="The version whose data the new version holds (commit, branch, tag).")],
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume the restore.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    pipeline: PipelineOption = None,
) -> None:
    """Publish a new version whose data is exactly REV's: history stays append-only and names REV."""
    from shared_tasks.project.pipeline import new_run_id
    from shared_tasks.run.restore import restore_version

    with reported_errors():
        version = restore_version(current_settings(pipeline), rev, run_id or new_run_id("restore"))
        if as_json:
            print_json(version.to_dict())
            return
        state = "already restored" if version.already_published else "restored"
        out.print(
            f"[green]✓[/green] {state} as version [bold]{version.commit[:12]}[/bold]: md5 {version.md5}, "
            f"{version.rows} rows, the data of {rev}",
            highlight=False,
        )


def cutover_cmd(
    step: Annotated[str | None, typer.Argument(help="A step of the pipeline (`cutover` alone lists them).")] = None,
    runner: Annotated[Runner | None, typer.Argument(help="Who runs it from now on.")] = None,
    pipeline: PipelineOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Move a step to Dagster without the shadow runs that prove it.")
    ] = False,
) -> None:
    """Which orchestrator runs each step of the pipeline's DAG; with STEP and airflow|dagster|shadow, set one.

    A team's step moves to Dagster only after matched shadow runs of its current code (see
    `shadow`); moving a step back to Airflow is never held."""
    with reported_errors():
        steps = BUILTIN
        if pipeline is not None or f"{ENV_PREFIX}PROJECT_FILE" in os.environ:
            steps = CutoverSteps.of(current_settings(pipeline).declared())
        path = steps.file(cutover_file())
        cutover = read_cutover(path, steps)
        shadowable = [name for name, spec in steps.steps.items() if spec.declared]
        records = _shadow_records(steps, shadowable)
        if step is not None:
            if step not in steps.steps:
                raise ValueError(
                    f"unknown step {step!r}; the steps of {steps.names.dag_id} are {', '.join(steps.steps)}"
                )
            if runner is None:
                raise ValueError(f"say who runs {step}: airflow, dagster or shadow")
            if runner is Runner.SHADOW and step not in shadowable:
                raise ValueError(f"step {step!r} cannot be shadowed: {SHADOWABLE}")
            forced = None
            if runner is Runner.DAGSTER and step in shadowable and cutover.runner(step) is not Runner.DAGSTER:
                forced = _gate(step, records, force)
            cutover = cutover.moved(step, runner, forced)
            write_cutover(path, cutover)
        table = Table("step", "runs in", "shadow runs of its current code", title=f"{steps.names.dag_id}: {path}")
        for name in steps.steps:
            shadow = records[name].shown() if isinstance(records, dict) and name in records else ""
            runs_in = cutover.runner(name).value + (" (forced)" if name in cutover.forced_steps() else "")
            table.add_row(name, runs_in, shadow if name in shadowable else "")
        out.print(table)
        if isinstance(records, str) and shadowable:
            out.print(f"Shadow runs not shown: {records}", highlight=False)
        if step is not None:
            out.print(
                "Airflow reads the file when it parses the DAG (within seconds on the local stack); "
                "on a cluster, commit and push it: gitSync brings it to Airflow like the DAG.",
                highlight=False,
            )


def _shadow_records(steps: CutoverSteps, shadowable: list[str]) -> dict[str, ShadowRecord] | str:
    """The steps' shadow runs, from Dagster's API (the local stack's, else PIPELINE_DAGSTER_URL's); or
    why they cannot be read."""
    from dataset_pipeline.process import StackError
    from dataset_pipeline.shadow_record import shadow_records
    from orchestrator_clients.dagster_api import DagsterClient
    from orchestrator_clients.errors import OrchestratorApiError

    if not shadowable:
        return {}
    url = os.environ.get("PIPELINE_DAGSTER_URL")
    if not url:
        try:
            service = local_stack().service("dagster")
        except StackError as error:
            return str(error)
        if service.running() is None:  # type: ignore[attr-defined]
            return "Dagster is not running here (start the stack, or set PIPELINE_DAGSTER_URL)"
        url = service.url  # type: ignore[attr-defined]
    try:
        return shadow_records(DagsterClient(url), steps, shadowable)
    except (OrchestratorApiError, OSError) as error:
        return f"Dagster's API at {url} did not answer: {error}"


def _gate(step: str, records: dict[str, ShadowRecord] | str, force: bool) -> str | None:
    """None when the step's shadow runs prove it; else why not, if --force moves it anyway (kept in the
    cutover file, and so in the history of the versions its runs publish)."""
    from dataset_pipeline.shadow_record import gate_refusal, required_matches

    why = records if isinstance(records, str) else gate_refusal(records[step], required_matches())
    if why is None:
        return None
    if not force:
        raise ValueError(
            f"{step} stays where it runs: {why}. Shadow it first (`cutover {step} shadow`, then Airflow runs), "
            "or move it anyway with --force"
        )
    err.print(f"[yellow]moving {step} to Dagster without the proof its shadow runs give: {why}[/yellow]")
    return why
