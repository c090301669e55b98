"""`dataset-pipeline history|verify|compare|demo`: what was made, proof it holds, how the runners compare."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dataset_pipeline.cli.app import (
    TABLE_WIDTH,
    PipelineOption,
    current_settings,
    err,
    local_stack,
    out,
    print_json,
    reported_errors,
)
from dataset_pipeline.cli.run_commands import run
from dataset_pipeline.cli.stack_commands import stack_up
from dataset_pipeline.stack import StackError
from shared_tasks.project.settings import ENV_PREFIX
from shared_tasks.versioning.versions import VersionRecord


def history_cmd(as_json: Annotated[bool, typer.Option("--json")] = False, pipeline: PipelineOption = None) -> None:
    """Every version of the dataset, newest first."""
    from shared_tasks.versioning.history import history

    with reported_errors():
        versions = [version.to_dict() for version in history(current_settings(pipeline))]
        if as_json:
            print_json(versions)
            return
        table = Table("commit", "time", "md5", "size", "rows", "change", "orchestrator", "run id")
        for v in versions:
            table.add_row(
                v["commit"][:12],
                v["time"],
                v["md5"],
                str(v["size"]),
                str(v["rows"]),
                _change_of(v),
                _orchestrator_of(v),
                str(v["run_id"]),
            )
        Console(width=max(out.width, TABLE_WIDTH)).print(table)


def _orchestrator_of(version: dict[str, Any]) -> str:
    """The run's orchestrator, and each step another one ran (cut over), marked when moved by force."""
    own = str(version["orchestrator"])
    forced = version.get("forced_steps") or []
    others = [
        f"{step} by {runner}" + (" (forced)" if step in forced else "")
        for step, runner in (version.get("steps_by") or {}).items()
        if runner != own
    ]
    return "; ".join([own, *others])


def _change_of(version: dict[str, Any]) -> str:
    """+added, and for a merge ~updated -deleted; a replace names the version it was computed from."""
    if version.get("computed_from"):
        return f"replaced (from {str(version['computed_from'])[:12]})"
    change = f"+{version['rows_added']}"
    if version.get("rows_updated") is not None:
        change += f" ~{version['rows_updated']} -{version['rows_deleted']}"
    return change


def verify_cmd(
    rev: Annotated[str, typer.Argument(help="Commit, branch or tag of the origin.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    pipeline: PipelineOption = None,
) -> None:
    """Fresh clone at REV, pull its data from the remote, compare with the pointer."""
    from shared_tasks.versioning.history import verify

    with reported_errors():
        result = verify(current_settings(pipeline), rev)
        if as_json:
            print_json(result.to_dict())
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


def compare_cmd(
    runs: Annotated[int, typer.Option(min=1, max=100, help="Runs per runner.")] = 3,
    records: Annotated[int, typer.Option(min=1, help="Generated records each run adds (the built-in pipeline).")] = 1,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report folder (default: <stack>/compare).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every figure as JSON.")] = False,
    runners: Annotated[
        list[str] | None,
        typer.Option(
            "--runner",
            help="A runner to measure (again for more; default all): direct, airflow, dagster, dagster-in-process, "
            "airflow->dagster:STEP (the pipeline's first step of its own by default), airflow->dagster:all, "
            "airflow+shadow:STEP (a declared pipeline's step, run again by Dagster in the shadow).",
        ),
    ] = None,
    pipeline: PipelineOption = None,
    param: Annotated[
        list[str] | None, typer.Option(help="A declared pipeline's run parameter, NAME=VALUE (JSON or text).")
    ] = None,
) -> None:
    """Run the pipeline N times with each runner (directly, through Airflow, through Dagster, and cut over
    from one to the other); report time, where it went, and memory.

    The cut-over runners set the pipeline's cutover file for their runs and put it back as it was."""
    from dataset_pipeline.cli.run_commands import parse_params
    from dataset_pipeline.compare import run_comparison
    from dataset_pipeline.compare_report import console_rows, shadow_rows, write_report
    from dataset_pipeline.compare_runners import Work, runner_names
    from shared_tasks.project.cutover import CutoverSteps

    with reported_errors():
        builtin = pipeline is None and f"{ENV_PREFIX}PROJECT_FILE" not in os.environ
        if builtin:
            runner_names(runners)  # a runner it does not have: named before anything else is asked
        stack = local_stack()
        if not stack.status()["running"]:
            raise StackError("the local stack is not running: start it with `dataset-pipeline stack up`")
        settings = current_settings(pipeline)
        params = parse_params(param or [])
        if settings.is_declared:
            declared = settings.declared()
            work = Work(CutoverSteps.of(declared), params=declared.checked_params(params))
        elif params:
            raise ValueError("--param is for a declared pipeline (set PIPELINE_PROJECT_FILE)")
        else:
            work = Work(records=records)
        chosen = runner_names(runners, work.pipeline)
        console = err if as_json else out
        comparison = run_comparison(stack, settings, runs=runs, work=work, console=console, runners=chosen)
        paths = write_report(comparison, out_dir or stack.root / "compare")
        if as_json:
            print_json(comparison.to_dict())
            return
        header, rows = console_rows(comparison)
        table = Table(*header, title="median seconds")
        for row in rows:
            table.add_row(*row)
        out.print(table)
        header, rows = shadow_rows(comparison)
        if rows:
            shadowed = Table(*header, title="shadowed steps: each side's work, from the same runs")
            for row in rows:
                shadowed.add_row(*row)
            out.print(shadowed)
        others = ", ".join(paths[key].name for key in ("markdown", "plot", "parts_plot", "json"))
        out.print(f"report: {paths['html']} (and {others})")
        if any(not measure.ok for measure in comparison.measures):
            raise typer.Exit(1)


EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "examples" / "station_readings" / "dataset-pipeline.toml"
EXAMPLE_PIPELINE = "station_readings"
EXAMPLE_SEED = EXAMPLE_PROJECT.parent / "seed" / "station_readings.csv"


def demo() -> None:
    """Stack up serving the station-readings example beside the built-in pipeline; for each pipeline, two
    direct runs (the example's first version adopted from its seed) and one through each orchestrator,
    its history, and every version verified."""
    from dataset_pipeline.cli.run_commands import adopt_cmd
    from shared_tasks.versioning.history import history

    with_example = EXAMPLE_PROJECT.is_file() and f"{ENV_PREFIX}PROJECT_FILE" not in os.environ
    stack_up(
        dir_=None,
        s3_port=None,
        airflow_port=None,
        dagster_port=None,
        services=None,
        seed_rows=None,
        layout=None,
        project=EXAMPLE_PROJECT if with_example else None,
    )
    _demo_pipeline(None)
    if with_example:
        out.print(f"\nthe example pipeline {EXAMPLE_PIPELINE} ({EXAMPLE_PROJECT.parent.name}: merge on station + day)")
        with reported_errors():
            adopted = any(version.md5 for version in history(current_settings(EXAMPLE_PIPELINE)))
        if not adopted:
            adopt_cmd(EXAMPLE_SEED, pipeline=EXAMPLE_PIPELINE, run_id=None, as_json=False)
        _demo_pipeline(EXAMPLE_PIPELINE)
    out.print("demo complete: every version verifies. Stop the stack with `dataset-pipeline stack down`.")


def _demo_pipeline(pipeline: str | None) -> None:
    """Two direct runs and one through each running orchestrator, the history, every version verified."""
    from shared_tasks.versioning.history import history, verify

    with reported_errors():
        before = {version.commit for version in history(current_settings(pipeline))}
    for _ in range(2):
        run(records=1, change_file=None, run_id=None, via="direct", as_json=False, pipeline=pipeline, param=None)
    with reported_errors():
        services = local_stack().status()["services"]
    for name, service in services.items():
        if name != "s3" and service["running"]:
            out.print(f"run through {name} ({service['url']})", highlight=False)
            run(records=1, change_file=None, run_id=None, via=name, as_json=False, pipeline=pipeline, param=None)
    history_cmd(as_json=False, pipeline=pipeline)
    with reported_errors():
        settings = current_settings(pipeline)
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
        if pipeline is None:  # what each orchestrator shows of the other's versions: the built-in pipeline's
            made = [version for version in history(settings) if version.commit not in before]
            _show_what_each_orchestrator_sees(made, services)


def _show_what_each_orchestrator_sees(made: list[VersionRecord], services: dict[str, Any]) -> None:
    """A line per version an orchestrator holds of the other's (or the direct runs'), read through its API."""
    from dataset_pipeline.peers import airflow_sees, dagster_sees, wait_until_seen

    running = {name for name, service in services.items() if service["running"]}
    if not {"airflow", "dagster"} <= running:
        return
    stack = local_stack()
    by_airflow = [v.commit for v in made if v.orchestrator == "airflow"]
    elsewhere = [v.commit for v in made if v.orchestrator != "airflow"]
    with stack.service("airflow").client() as airflow:  # type: ignore[attr-defined]
        in_airflow = wait_until_seen(lambda: airflow_sees(airflow), elsewhere)
    in_dagster = wait_until_seen(lambda: dagster_sees(stack.service("dagster").client()), by_airflow)  # type: ignore[attr-defined]
    for commit in by_airflow:
        seen = in_dagster.get(commit)
        shown = f"as Airflow run {seen.run_id}" if seen else "[red]not yet[/red]"
        out.print(f"Dagster shows {commit[:12]} {shown} (its GraphQL API)", highlight=False)
    for commit in elsewhere:
        seen = in_airflow.get(commit)
        shown = f"as made by {seen.made_by}" if seen else "[red]not yet[/red]"
        out.print(f"Airflow shows {commit[:12]} {shown} (its REST API: the dataset Asset's events)", highlight=False)
