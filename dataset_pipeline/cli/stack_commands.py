"""`dataset-pipeline stack up|down|status`: the embedded local stack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dataset_pipeline.cli.app import local_stack, out, print_json, reported_errors
from dataset_pipeline.stack import parse_services
from shared_tasks.project.settings import Layout

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Stack folder (default .stack, or $DATASET_PIPELINE_STACK_DIR).")
]


def stack_up(
    dir_: DirOption = None,
    s3_port: Annotated[int | None, typer.Option(help="Port of the S3 API (default 9000).")] = None,
    airflow_port: Annotated[
        int | None, typer.Option(help="Port of Airflow's API server and UI (default 8080).")
    ] = None,
    dagster_port: Annotated[int | None, typer.Option(help="Port of Dagster's webserver (default 3000).")] = None,
    services: Annotated[
        str | None, typer.Option(help="Orchestrators to run: airflow,dagster (default) or none.")
    ] = None,
    seed_rows: Annotated[int | None, typer.Option(help="Rows of the seed dataset for a new origin.")] = None,
    layout: Annotated[
        Layout | None, typer.Option(help="Dataset layout of a new origin (and of the settings written).")
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(
            help="A project file (or its folder) whose pipelines the orchestrators serve beside the built-in one; "
            "kept for the next `up`. Default: PIPELINE_PROJECT_FILE, else the current folder's project file, "
            "else the one served before."
        ),
    ] = None,
) -> None:
    """Start the stack (idempotent) and seed the origin on first start."""
    with reported_errors():
        chosen = parse_services(services) if services is not None else None
        project = project or _project_here()
        stack = local_stack(
            dir_,
            s3_port=s3_port,
            airflow_port=airflow_port,
            dagster_port=dagster_port,
            services=chosen,
            seed_rows=seed_rows,
            layout=layout,
            project_file=project,
        )
        with out.status("starting the local stack…"):
            status = stack.up()
        _print_status(status)


def _project_here() -> Path | None:
    """The current folder's project file, as `dagster dev` finds its definitions (the environment's first)."""
    from shared_tasks.project.declared import PROJECT_FILE_NAME

    if os.environ.get("PIPELINE_PROJECT_FILE"):
        return None
    here = Path.cwd() / PROJECT_FILE_NAME
    return here if here.is_file() else None


def stack_down(dir_: DirOption = None) -> None:
    """Stop every service of the stack; its state stays for the next `up`."""
    with reported_errors():
        local_stack(dir_).down()
        out.print("local stack stopped; state kept in", str(local_stack(dir_).root))


def stack_status(
    dir_: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Where everything is and whether it runs."""
    with reported_errors():
        status = local_stack(dir_).status()
        if as_json:
            print_json(status)
        else:
            _print_status(status)


def _print_status(status: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("running", "yes" if status["running"] else "no")
    for key in ("git_url", "s3_endpoint", "bucket", "dvc_remote_url", "settings_file"):
        table.add_row(key, str(status[key]))
    if status.get("project_file"):
        table.add_row("project_file", str(status["project_file"]))
    for name, service in status["services"].items():
        if name != "s3":
            table.add_row(f"{name}_url", f"{service['url']} ({'running' if service['running'] else 'stopped'})")
    out.print(table)
