"""`dataset-pipeline schema infer`: a Table Schema guessed from a CSV, each guess commented."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dataset_pipeline.cli.app import err, out, reported_errors


def schema_infer(
    csv: Annotated[Path, typer.Argument(help="The CSV to read (all of it, in batches: memory stays flat).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the schema here (YAML) instead of printing it.")
    ] = None,
) -> None:
    """Guess a Table Schema from a CSV: types, missing values, enums, ranges seen, a primary key.

    The file is then validated against the guess, as a pipeline would validate it; what it would
    refuse (a cell a spreadsheet would run as a formula, say) is listed, and the exit code is 1."""
    from shared_tasks.files import write_atomically
    from shared_tasks.validation.dataset_check import validate_dataset
    from shared_tasks.validation.infer import infer_schema
    from shared_tasks.validation.schema import DatasetRules, DataValidationError
    from shared_tasks.validation.table_schema import read_table_schema

    with reported_errors():
        if not csv.is_file():
            raise ValueError(f"{csv}: no such file")
        inferred = infer_schema(csv)
        text = inferred.to_yaml()
        rules = DatasetRules(read_table_schema(inferred.descriptor(), str(csv)))
        if out_file is not None:
            write_atomically(out_file, text)
            err.print(f"wrote {out_file}: {len(inferred.fields)} fields, {inferred.rows:,} rows read", highlight=False)
        else:
            out.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        try:
            validate_dataset([csv], str(csv), rules=rules)
        except DataValidationError as error:
            err.print(f"✗ {csv} breaks the inferred schema: {error}", style="red", markup=False, highlight=False)
            raise typer.Exit(1) from None


def init_cmd(
    folder: Annotated[Path, typer.Argument(help="The project's folder (new, or empty).")],
    from_csv: Annotated[
        Path | None, typer.Option("--from", help="The team's CSV: its schema is inferred, a sample kept for tests.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The pipeline's name (default: from the CSV's file name).")] = None,
) -> None:
    """Write a pipeline project: project file, inferred schema, a package with an example step, and a
    test of it through the product's pytest plugin. Without --from, a copy of the bundled example."""
    from dataset_pipeline.scaffold import init_project

    with reported_errors():
        made = init_project(folder, from_csv, name)
        key = ", ".join(made.primary_key) or "none"
        out.print(
            f"[green]✓[/green] pipeline {made.pipeline} in {made.root}: {made.project_file.name}, "
            f"{made.schema_file.relative_to(made.root)} ({made.rows:,} rows read, key: {key}, {made.strategy})",
            highlight=False,
        )
        out.print(
            f"next: read the schema's comments; `cd {made.root} && pytest`; then "
            f"`PIPELINE_PROJECT_FILE={made.project_file} dataset-pipeline adopt <the CSV>`",
            highlight=False,
        )
