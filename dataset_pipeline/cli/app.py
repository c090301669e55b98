"""The CLI's app and what its commands share: consoles, settings, the stack, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from dataset_pipeline.stack import LocalStack, StackConfig, StackError
from orchestrator_clients import OrchestratorApiError
from shared_tasks.project.settings import ENV_PREFIX, Settings, load_settings
from shared_tasks.run.publish import PushConflictError
from shared_tasks.run.workspace import WorkspaceError
from shared_tasks.validation.validate import DataValidationError
from shared_tasks.versioning.dvcops import DvcError
from shared_tasks.versioning.gitops import GitError

# Every command that works on a pipeline's versions takes it by name (needed when the project file declares several).
PipelineOption = Annotated[
    str | None, typer.Option("--pipeline", help="A pipeline the project file declares (if it declares several).")
]

app = typer.Typer(help="Versioned-dataset pipeline: pull, change, push with DVC and Git.", no_args_is_help=True)
stack_app = typer.Typer(help="The embedded local stack on 127.0.0.1.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
schema_app = typer.Typer(help="Table Schemas: guess one from a CSV.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")

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


def local_stack(dir_: Path | None = None, **overrides: Any) -> LocalStack:
    return LocalStack(StackConfig.from_environment(root=dir_, **overrides))


# The project the local stack serves, once this process read its settings from the stack.
_served_by_stack: list[Path] = []


def current_settings(pipeline: str | None = None) -> Settings:
    """Settings from the environment; without them, from the local stack's settings file. With a
    project file (PIPELINE_PROJECT_FILE, or the one the local stack serves when `pipeline` is named),
    those of its pipeline `pipeline` (needed when it declares several)."""
    if f"{ENV_PREFIX}GIT_URL" not in os.environ:
        stack = local_stack()
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
        if stack.project_file is not None:
            _served_by_stack[:] = [stack.project_file]
    if pipeline is not None and _served_by_stack and f"{ENV_PREFIX}PROJECT_FILE" not in os.environ:
        return Settings(project_file=_served_by_stack[0], pipeline_name=pipeline)  # the stack's project's
    return load_settings(pipeline=pipeline)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
