"""`dataset-pipeline`: the local stack, a direct run, history and verify."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from dataset_pipeline.outcome import RunOutcome, published
from dataset_pipeline.stack import SERVICE_MODULES, LocalStack, StackConfig, StackError, parse_services
from orchestrator_clients import OrchestratorApiError
from shared_tasks.dvcops import DvcError
from shared_tasks.gitops import GitError
from shared_tasks.settings import ENV_PREFIX, Layout, Settings, load_settings
from shared_tasks.steps import PushConflictError
from shared_tasks.validate import DataValidationError
from shared_tasks.workspace import WorkspaceError

app = typer.Typer(help="Versioned-dataset pipeline: pull, modify, push with DVC and Git.", no_args_is_help=True)
stack_app = typer.Typer(help="The embedded local stack on 127.0.0.1.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")

out = Console(soft_wrap=True)
TABLE_WIDTH = 170  # history rows hold full md5s and run ids: never truncate them
err = Console(stderr=True, soft_wrap=True)

KNOWN_ERRORS = (
    StackError,
    OrchestratorApiError,
    DataValidationError,
    GitError,
    DvcError,
    WorkspaceError,
    PushConflictError,
    ValueError,
    FileNotFoundError,
)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Known failures become one clear line on stderr and exit status 1, never a traceback."""
    try:
        yield
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}" for item in error.errors()
        )
        err.print(f"[red]error:[/red] invalid settings: {fields}", highlight=False)
        raise typer.Exit(1) from None
    except KNOWN_ERRORS as error:
        err.print(f"error: {error}", style="red", highlight=False, markup=False)
        raise typer.Exit(1) from None


def _stack(dir_: Path | None = None, **overrides: Any) -> LocalStack:
    return LocalStack(StackConfig.from_environment(root=dir_, **overrides))


def current_settings() -> Settings:
    """Settings from the environment; without them, from the local stack's settings file."""
    if f"{ENV_PREFIX}GIT_URL" in os.environ:
        return load_settings()
    stack = _stack()
    if not stack.settings_file.exists():
        raise StackError(
            f"no settings: set {ENV_PREFIX}GIT_URL and {ENV_PREFIX}WORK_ROOT, "
            "or start the local stack with `dataset-pipeline stack up`"
        )
    from dotenv import dotenv_values

    os.environ.setdefault(f"{ENV_PREFIX}LAYOUT", stack.layout.value)  # the origin's, even after a migration
    for key, value in dotenv_values(stack.settings_file).items():
        if value is not None:
            os.environ.setdefault(key, value)
    return load_settings()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# stack -------------------------------------------------------------------------------------

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Stack folder (default .stack, or $DATASET_PIPELINE_STACK_DIR).")
]


@stack_app.command("up")
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
) -> None:
    """Start the stack (idempotent) and seed the origin on first start."""
    with reported_errors():
        chosen = parse_services(services) if services is not None else None
        stack = _stack(
            dir_,
            s3_port=s3_port,
            airflow_port=airflow_port,
            dagster_port=dagster_port,
            services=chosen,
            seed_rows=seed_rows,
            layout=layout,
        )
        with out.status("starting the local stack…"):
            status = stack.up()
        _print_status(status)


@stack_app.command("down")
def stack_down(dir_: DirOption = None) -> None:
    """Stop every service of the stack; its state stays for the next `up`."""
    with reported_errors():
        _stack(dir_).down()
        out.print("local stack stopped; state kept in", str(_stack(dir_).root))


@stack_app.command("status")
def stack_status(
    dir_: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Where everything is and whether it runs."""
    with reported_errors():
        status = _stack(dir_).status()
        if as_json:
            _print_json(status)
        else:
            _print_status(status)


def _print_status(status: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_row("running", "yes" if status["running"] else "no")
    for key in ("git_url", "s3_endpoint", "bucket", "dvc_remote_url", "settings_file"):
        table.add_row(key, str(status[key]))
    for name, service in status["services"].items():
        if name != "s3":
            table.add_row(f"{name}_url", f"{service['url']} ({'running' if service['running'] else 'stopped'})")
    out.print(table)


# runs --------------------------------------------------------------------------------------


@app.command("run")
def run(
    records: Annotated[int, typer.Option(min=1, help="Generated records to add.")] = 1,
    change_file: Annotated[Path | None, typer.Option(help="CSV of records to add instead of generated ones.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume or retry a run.")] = None,
    via: Annotated[
        str, typer.Option(help="direct (in this process), airflow or dagster (through their APIs).")
    ] = "direct",
    as_json: Annotated[bool, typer.Option("--json", help="Print the new version as JSON.")] = False,
) -> None:
    """Pull, modify and push, directly or through an orchestrator; prints the new version."""
    from shared_tasks.pipeline import new_run_id, run_pipeline

    with reported_errors():
        console = err if as_json else out
        if via == "direct":
            settings = current_settings()
            the_run_id = run_id or new_run_id("direct")
            console.print(f"run [bold]{the_run_id}[/bold]", highlight=False)
            result = run_pipeline(
                settings, the_run_id, records=records, change_file=change_file, on_step=_progress(console)
            )
            version = published(result)
            printed = version.to_dict()
        else:
            outcome = _run_via(via, records=records, change_file=change_file, run_id=run_id, console=console)
            version, printed = outcome.version, outcome.to_dict()
        if as_json:
            _print_json(printed)
        else:
            state = "already published" if version.already_published else "published"
            out.print(
                f"{state} version [bold]{version.commit[:12]}[/bold]: md5 {version.md5}, "
                f"{version.rows} rows (+{version.rows_added}), {version.s3_url}",
                highlight=False,
            )


def _run_via(via: str, records: int, change_file: Path | None, run_id: str | None, console: Console) -> RunOutcome:
    """Run through an orchestrator's public API, as a user of its UI would."""
    if via not in SERVICE_MODULES:
        raise ValueError(f"--via must be direct, airflow or dagster, got {via!r}")
    if change_file is not None:
        raise ValueError("--change-file is only available with --via direct")
    stack = _stack()
    service = stack.service(via)
    if via not in stack.config.services or not service.status()["running"]:
        raise StackError(f"{via} is not running: start it with `dataset-pipeline stack up`")
    return service.run_via(records=records, run_id=run_id, console=console)


def _progress(console: Console) -> Callable[[str, str, dict[str, Any] | None], None]:
    started: dict[str, float] = {}
    status = console.status("")

    def on_step(name: str, phase: str, result: dict[str, Any] | None) -> None:
        if phase == "start":
            started[name] = time.monotonic()
            status.update(f"{name}…")
            status.start()
            return
        status.stop()
        seconds = time.monotonic() - started[name]
        console.print(f"[green]✓[/green] {name:<12} {_describe(name, result or {})} ({seconds:.2f} s)", highlight=False)

    return on_step


def _describe(name: str, result: dict[str, Any]) -> str:
    if name == "pull_data":
        return f"commit {result['commit'][:12]}, {result['rows']} rows, md5 {result['md5']}"
    if name == "modify_data":
        if result.get("already_published"):
            return "already published; nothing to apply"
        return f"+{result['rows_added']} record(s), ids {result['first_id']}..{result['last_id']}"
    return f"commit {result['commit'][:12]} after {result['attempts']} attempt(s)"


@app.command("history")
def history_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every version of the dataset, newest first."""
    from shared_tasks.history import history

    with reported_errors():
        versions = [version.to_dict() for version in history(current_settings())]
        if as_json:
            _print_json(versions)
            return
        table = Table("commit", "time", "md5", "size", "rows", "added", "orchestrator", "run id")
        for v in versions:
            table.add_row(
                v["commit"][:12],
                v["time"],
                v["md5"],
                str(v["size"]),
                str(v["rows"]),
                str(v["rows_added"]),
                str(v["orchestrator"]),
                str(v["run_id"]),
            )
        Console(width=max(out.width, TABLE_WIDTH)).print(table)


@app.command("verify")
def verify_cmd(
    rev: Annotated[str, typer.Argument(help="Commit, branch or tag of the origin.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fresh clone at REV, pull its data from the remote, compare with the pointer."""
    from shared_tasks.history import verify

    with reported_errors():
        result = verify(current_settings(), rev)
        if as_json:
            _print_json(result.to_dict())
        elif result.ok:
            out.print(
                f"[green]✓[/green] {result.commit[:12]} verified: md5 {result.actual_md5}, {result.actual_rows} rows",
                highlight=False,
            )
        else:
            err.print(f"✗ {result.commit[:12]} failed verification:", style="red", highlight=False)
            for problem in result.problems:
                err.print(f"  - {problem}", highlight=False, markup=False)
        if not result.ok:
            raise typer.Exit(1)


@app.command("compare")
def compare_cmd(
    runs: Annotated[int, typer.Option(min=1, max=100, help="Runs per runner (direct, airflow, dagster).")] = 3,
    records: Annotated[int, typer.Option(min=1, help="Generated records each run adds.")] = 1,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: <stack>/compare).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every figure as JSON.")] = False,
) -> None:
    """Run the pipeline N times directly, through Airflow and through Dagster; report time and memory."""
    from dataset_pipeline.compare import run_comparison
    from dataset_pipeline.compare_report import console_rows, write_report

    with reported_errors():
        stack = _stack()
        if not stack.status()["running"]:
            raise StackError("the local stack is not running: start it with `dataset-pipeline stack up`")
        settings = current_settings()
        console = err if as_json else out
        comparison = run_comparison(stack, settings, runs=runs, records=records, console=console)
        paths = write_report(comparison, out_dir or stack.root / "compare")
        if as_json:
            _print_json(comparison.to_dict())
            return
        header, rows = console_rows(comparison)
        table = Table(*header, title="median seconds")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        out.print(f"report: {paths['html']} (and {paths['markdown'].name}, {paths['plot'].name}, {paths['json'].name})")
        if any(not measure.ok for measure in comparison.measures):
            raise typer.Exit(1)


@app.command("migrate")
def migrate_cmd(
    part_rows: Annotated[int | None, typer.Option(min=1, help="Records per part file.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Reuse a run id to resume the migration.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish the dataset as a directory of part files (the partitioned layout), as a new version.

    Afterwards set PIPELINE_LAYOUT=partitioned wherever the steps run.
    """
    from shared_tasks.migrate import migrate_to_partitioned
    from shared_tasks.pipeline import new_run_id

    with reported_errors():
        settings = current_settings()
        if part_rows is not None:
            settings = settings.model_copy(update={"part_rows": part_rows})
        result = migrate_to_partitioned(settings, run_id or new_run_id("migrate"))
        if as_json:
            _print_json(result.to_dict())
        elif result.already_partitioned:
            out.print(f"already partitioned at {result.commit[:12]}: md5 {result.md5}", highlight=False)
        else:
            out.print(
                f"[green]✓[/green] migrated at {result.commit[:12]}: {result.rows} rows in {result.parts} part(s), "
                f"md5 {result.md5}. Set PIPELINE_LAYOUT=partitioned wherever the steps run.",
                highlight=False,
            )


@app.command("validate")
def validate_cmd(path: Annotated[Path, typer.Argument(help="A dataset or change CSV file.")]) -> None:
    """Check a CSV file against the dataset's schema."""
    from shared_tasks.validate import validate_dataset_file

    with reported_errors():
        rows = validate_dataset_file(path)
        out.print(f"[green]✓[/green] {path}: {rows} valid record(s)", highlight=False)


@app.command("demo")
def demo() -> None:
    """Stack up, two direct runs, one run through each orchestrator, history, verify every version."""
    from shared_tasks.history import history, verify

    stack_up(dir_=None, s3_port=None, airflow_port=None, dagster_port=None, services=None, seed_rows=None, layout=None)
    for _ in range(2):
        run(records=1, change_file=None, run_id=None, via="direct", as_json=False)
    with reported_errors():
        services = _stack().status()["services"]
    for name, service in services.items():
        if name != "s3" and service["running"]:
            out.print(f"run through {name} ({service['url']})", highlight=False)
            run(records=1, change_file=None, run_id=None, via=name, as_json=False)
    history_cmd(as_json=False)
    with reported_errors():
        settings = current_settings()
        failures = 0
        for version in history(settings):
            result = verify(settings, version.commit)
            mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
            out.print(
                f"{mark} verify {version.commit[:12]} ({version.orchestrator}): {result.actual_md5}", highlight=False
            )
            failures += not result.ok
        if failures:
            raise typer.Exit(1)
    out.print("demo complete: every version verifies. Stop the stack with `dataset-pipeline stack down`.")


if __name__ == "__main__":
    app()
