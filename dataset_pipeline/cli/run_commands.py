"""`dataset-pipeline run|migrate`: making versions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dataset_pipeline.cli.app import current_settings, err, local_stack, out, print_json, reported_errors
from dataset_pipeline.outcome import RunOutcome
from dataset_pipeline.stack import SERVICE_MODULES, StackError
from shared_tasks.project.records import MAX_RECORDS_PER_RUN, StepRecord
from shared_tasks.project.settings import ENV_PREFIX
from shared_tasks.run.workspace import check_run_id

if TYPE_CHECKING:
    from shared_tasks.project.declared import DeclaredPipeline


def run(
    records: Annotated[int, typer.Option(min=1, max=MAX_RECORDS_PER_RUN, help="Generated records to add.")] = 1,
    change_file: Annotated[Path | None, typer.Option(help="CSV of records to add instead of generated ones.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume or retry a run.")] = None,
    via: Annotated[
        str, typer.Option(help="direct (in this process), airflow or dagster (through their APIs).")
    ] = "direct",
    as_json: Annotated[bool, typer.Option("--json", help="Print the new version as JSON.")] = False,
    pipeline: Annotated[
        str | None, typer.Option(help="A declared pipeline of the project file (when it declares several).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="A declared pipeline's run parameter, NAME=VALUE (JSON or text).")
    ] = None,
) -> None:
    """Pull, change and push, directly or through an orchestrator; prints the new version."""
    from shared_tasks.project.pipeline import new_run_id, run_pipeline

    with reported_errors():
        console = err if as_json else out
        if via == "direct":
            settings = current_settings(pipeline)
            params = parse_params(param or [])
            if params and not settings.is_declared:
                raise ValueError("--param is for a declared pipeline (set PIPELINE_PROJECT_FILE)")
            if settings.is_declared:
                params = settings.declared().checked_params(params)  # before anything runs
            the_run_id = run_id or new_run_id("direct")
            console.print(f"run [bold]{the_run_id}[/bold]", highlight=False)
            version = run_pipeline(
                settings,
                the_run_id,
                records=records,
                change_file=change_file,
                on_step=_progress(console),
                params=params,
            )
            printed = version.to_dict()
        else:
            declared, params = None, parse_params(param or [])
            if pipeline is not None or params or ENV_PREFIX + "PROJECT_FILE" in os.environ:
                settings = current_settings(pipeline)
                if settings.is_declared:
                    declared = settings.declared()
                    params = declared.checked_params(params)  # before anything is launched
                elif params:
                    raise ValueError("--param is for a declared pipeline (set PIPELINE_PROJECT_FILE)")
            outcome = _run_via(
                via,
                records=records,
                change_file=change_file,
                run_id=run_id,
                console=console,
                pipeline=declared,
                params=params,
            )
            version, printed = outcome.version, outcome.to_dict()
        if as_json:
            print_json(printed)
        else:
            if version.unchanged:
                out.print(
                    f"unchanged: the run's output leaves the data as version [bold]{version.commit[:12]}[/bold] "
                    f"holds it (md5 {version.md5}, {version.rows} rows); nothing was published",
                    highlight=False,
                )
                return
            state = "already published" if version.already_published else "published"
            out.print(
                f"{state} version [bold]{version.commit[:12]}[/bold]: md5 {version.md5}, "
                f"{version.rows} rows (+{version.rows_added}), {version.s3_url}",
                highlight=False,
            )


def parse_params(given: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs; a value that reads as JSON (3, 2.5, true, "x") is that, else it is text."""
    params: dict[str, Any] = {}
    for pair in given:
        name, equals, raw = pair.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"--param {pair!r} must be NAME=VALUE")
        try:
            params[name.strip()] = json.loads(raw)
        except ValueError:
            params[name.strip()] = raw
    return params


def _run_via(
    via: str,
    records: int,
    change_file: Path | None,
    run_id: str | None,
    console: Console,
    pipeline: DeclaredPipeline | None = None,
    params: dict[str, Any] | None = None,
) -> RunOutcome:
    """Run through an orchestrator's public API, as a user of its UI would."""
    if via not in SERVICE_MODULES:
        raise ValueError(f"--via must be direct, airflow or dagster, got {via!r}")
    if change_file is not None:
        raise ValueError("--change-file is only available with --via direct")
    if run_id is not None:
        check_run_id(run_id)  # as the direct path does, before anything is launched
    stack = local_stack()
    service = stack.service(via)
    if via not in stack.config.services or not service.status()["running"]:
        raise StackError(f"{via} is not running: start it with `dataset-pipeline stack up`")
    return service.run_via(records=records, run_id=run_id, console=console, pipeline=pipeline, params=params)


def _progress(console: Console) -> Callable[[str, str, StepRecord | None], None]:
    started: dict[str, float] = {}
    status = console.status("")

    def on_step(name: str, phase: str, result: StepRecord | None) -> None:
        if phase == "start":
            started[name] = time.monotonic()
            status.update(f"{name}…")
            status.start()
            return
        status.stop()
        seconds = time.monotonic() - started[name]
        described = _describe(name, result.to_dict() if result else {})
        console.print(f"[green]✓[/green] {name:<12} {described} ({seconds:.2f} s)", highlight=False)

    return on_step


def _describe(name: str, result: dict[str, Any]) -> str:
    if name == "pull_data":
        return f"commit {result['commit'][:12]}, {result['rows']} rows, md5 {result['md5']}"
    if "step" in result and "columns" in result:  # a declared pipeline's own step
        kept = "kept before" if result.get("already_done") else "kept"
        return f"{result['rows']} row(s) x {len(result['columns'])} column(s), {kept}, md5 {result['md5']}"
    if name == "modify_data":
        if result.get("already_published"):
            return "already published; nothing to apply"
        return f"+{result['rows_added']} record(s), ids {result['first_id']}..{result['last_id']}"
    return f"commit {result['commit'][:12]} after {result['attempts']} attempt(s)"


def adopt_cmd(
    csv: Annotated[Path, typer.Argument(help="The CSV to publish as the dataset's first version.")],
    pipeline: Annotated[
        str | None, typer.Option(help="The declared pipeline (when the project declares several).")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish a CSV as a declared pipeline's first version (validated against its schema first)."""
    from shared_tasks.project.pipeline import new_run_id
    from shared_tasks.run.adopt import adopt_csv

    with reported_errors():
        settings = current_settings(pipeline)
        result = adopt_csv(settings, csv, run_id or new_run_id("adopt"))
        if as_json:
            print_json(result.to_dict())
        else:
            state = "already published" if result.already_published else "published"
            out.print(
                f"[green]✓[/green] {state} {settings.dataset_path} at {result.commit[:12]}: "
                f"{result.rows} rows, md5 {result.md5}",
                highlight=False,
            )


def migrate_cmd(
    part_rows: Annotated[int | None, typer.Option(min=1, help="Records per part file.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume the migration.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish the dataset as a directory of part files (the partitioned layout), as a new version.

    Afterwards set PIPELINE_LAYOUT=partitioned wherever the steps run.
    """
    from shared_tasks.project.pipeline import new_run_id
    from shared_tasks.run.migrate import migrate_to_partitioned

    with reported_errors():
        settings = current_settings()
        if part_rows is not None:
            settings = settings.model_copy(update={"part_rows": part_rows})
        result = migrate_to_partitioned(settings, run_id or new_run_id("migrate"))
        if as_json:
            print_json(result.to_dict())
        elif result.already_partitioned:
            out.print(f"already partitioned at {result.commit[:12]}: md5 {result.md5}", highlight=False)
        else:
            out.print(
                f"[green]✓[/green] migrated at {result.commit[:12]}: {result.rows} rows in {result.parts} part(s), "
                f"md5 {result.md5}. Set PIPELINE_LAYOUT=partitioned wherever the steps run.",
                highlight=False,
            )
