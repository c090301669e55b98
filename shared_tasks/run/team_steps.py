"""A team's own step: its function called with its declared inputs, its output kept once.

The product wraps the team's plain functions: it hands each the pulled version (`dataset`, a
lazy polars frame, so a step that does not read it pays nothing) and the kept outputs of the
steps it names, plus a `StepContext`; it keeps what the function returns as Parquet in the run's
workspace, written once and atomically. A retry of a step whose output is kept returns its
record without calling the function again; a retry of one that did not finish calls it again with
the same inputs and the same seed, so a deterministic step makes the same rows.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_tasks.files import atomic_path
from shared_tasks.project.declared import CONTEXT_PARAMETER, DATASET_INPUT, DeclaredPipeline, DeclaredStep
from shared_tasks.project.records import StepOutput
from shared_tasks.run.context import RunContext
from shared_tasks.run.workspace import RunState, WorkspaceError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import polars as pl

    from shared_tasks.validation.schema import DatasetRules


class StepDefinitionError(ValueError):
    """A declared step whose function cannot be called as declared (a wrong path or signature)."""


class StepOutputError(ValueError):
    """A step returned something that is not a frame."""


@dataclass(frozen=True)
class StepContext:
    """What a team's step gets besides its inputs: nothing about settings, Git or DVC."""

    run_id: str
    step: str
    params: Mapping[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("dataset_pipeline.step"))

    @property
    def seed(self) -> int:
        """From the run id and the step's name: a retry of the step draws the same numbers."""
        return int.from_bytes(hashlib.sha256(f"{self.run_id}\0{self.step}".encode()).digest()[:8], "big")

    @property
    def rng(self) -> np.random.Generator:
        import numpy as np

        return np.random.default_rng(self.seed)


def output_file(ctx: RunContext, step: str) -> Path:
    return ctx.workspace.root / "outputs" / f"{step}.parquet"


def load_step_function(pipeline: DeclaredPipeline, step: DeclaredStep) -> Callable[..., Any]:
    """The step's function, its parameters checked against the inputs declared for it."""
    module_name, _, name = step.function.partition(":")
    project_dir = str(pipeline.project_dir)
    if project_dir not in sys.path:
        sys.path.append(project_dir)  # a team package beside its project file, not installed
    where = f"pipeline {pipeline.name!r}, step {step.name!r}"
    try:
        function = getattr(importlib.import_module(module_name), name)
    except ImportError as error:
        raise StepDefinitionError(f"{where}: cannot import {module_name!r}: {error}") from None
    except AttributeError:
        raise StepDefinitionError(f"{where}: module {module_name!r} has no function {name!r}") from None
    if not callable(function):
        raise StepDefinitionError(f"{where}: {step.function} is not a function")
    parameters = inspect.signature(function).parameters
    taken = [p for p in parameters if p != CONTEXT_PARAMETER]
    if sorted(taken) != sorted(step.inputs):
        raise StepDefinitionError(
            f"{where}: {step.function} takes ({', '.join(taken) or 'nothing'}) besides {CONTEXT_PARAMETER!r},"
            f" but the project file declares inputs ({', '.join(step.inputs) or 'none'})"
        )
    return function  # type: ignore[no-any-return]


def run_team_step(
    ctx: RunContext, pipeline: DeclaredPipeline, step_name: str, params: Mapping[str, Any], runner: str
) -> StepOutput:
    """The step's kept output: made now, or found made by an earlier attempt."""
    step = pipeline.step(step_name)
    workspace = ctx.workspace
    with workspace.locked():
        state = workspace.load_state()
        if state.pulled is None:
            raise WorkspaceError(f"pull_data has not run for run {ctx.run_id!r}; run it first")
        state = _fixed_params(state, pipeline, params)
        kept = state.outputs.get(step.name)
        if kept is not None and _still_kept(ctx, kept):
            return kept.model_copy(update={"already_done": True})
        function = load_step_function(pipeline, step)
        arguments = {name: _input(ctx, state, pipeline, function, name) for name in step.inputs}
        if CONTEXT_PARAMETER in inspect.signature(function).parameters:
            arguments[CONTEXT_PARAMETER] = StepContext(
                ctx.run_id, step.name, dict(state.params or {}), logging.getLogger(f"dataset_pipeline.step.{step.name}")
            )
        returned = function(**arguments)
        output = _keep(ctx, step.name, returned)
        state = state.model_copy(update={"outputs": {**state.outputs, step.name: output}})
        workspace.save_state(state.ran(step.name, runner))
    return output


def _fixed_params(state: RunState, pipeline: DeclaredPipeline, given: Mapping[str, Any]) -> RunState:
    """The run's parameters, fixed by its first team step: a retry with others is refused."""
    checked = pipeline.checked_params(dict(given))
    if state.params is None:
        return state.model_copy(update={"params": checked})
    if dict(state.params) != checked:
        raise WorkspaceError(
            f"run {state.run_id!r} already runs with parameters {dict(state.params)}, not {checked}; use a new run id"
        )
    return state


def _still_kept(ctx: RunContext, kept: StepOutput) -> bool:
    path = output_file(ctx, kept.step)
    return path.is_file() and hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() == kept.md5


def _input(
    ctx: RunContext, state: RunState, pipeline: DeclaredPipeline, function: Callable[..., Any], name: str
) -> Any:
    annotation = str(inspect.signature(function).parameters[name].annotation)
    if name == DATASET_INPUT:
        lazy = _dataset_frame(ctx)
        if "LazyFrame" in annotation or "polars" in annotation or "pl." in annotation:
            return lazy if "LazyFrame" in annotation else lazy.collect()
        return lazy.collect().to_pandas()
    kept = state.outputs.get(name)
    if kept is None or not _still_kept(ctx, kept):
        raise WorkspaceError(
            f"step {name!r} of run {ctx.run_id!r} has no kept output; run it before the steps that take it"
        )
    import polars as pl

    return as_annotated(pl.read_parquet(output_file(ctx, name)), annotation)


def as_annotated(frame: Any, annotation: str) -> Any:
    """A frame (pandas or polars) as the step's parameter is annotated: a polars LazyFrame or
    DataFrame, else pandas."""
    import polars as pl

    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    elif not isinstance(frame, pl.DataFrame):
        frame = pl.from_pandas(frame)
    if "LazyFrame" in annotation:
        return frame.lazy()
    if "polars" in annotation or "pl." in annotation:
        return frame
    return frame.to_pandas()


def call_step(
    pipeline: DeclaredPipeline, step_name: str, inputs: Mapping[str, Any], params: Mapping[str, Any], run_id: str
) -> Any:
    """The team's step called as a run calls it, on frames given in memory (tests of a team's steps):
    each input as its parameter is annotated, the run's parameters checked, the same seeded context.
    Returns the frame it returned, checked to be one."""
    step = pipeline.step(step_name)
    function = load_step_function(pipeline, step)
    missing = [name for name in step.inputs if name not in inputs]
    extra = [name for name in inputs if name not in step.inputs]
    if missing or extra:
        raise StepDefinitionError(
            f"step {step.name!r} takes ({', '.join(step.inputs) or 'no inputs'}); "
            + (f"missing {', '.join(missing)}" if missing else f"not {', '.join(extra)}")
        )
    parameters = inspect.signature(function).parameters
    arguments = {name: as_annotated(inputs[name], str(parameters[name].annotation)) for name in step.inputs}
    if CONTEXT_PARAMETER in parameters:
        checked = pipeline.checked_params(dict(params))
        arguments[CONTEXT_PARAMETER] = StepContext(
            run_id, step.name, checked, logging.getLogger(f"dataset_pipeline.step.{step.name}")
        )
    returned = function(**arguments)
    _as_arrow(returned, step.name)  # a frame, or an error naming the step
    return returned


def _dataset_frame(ctx: RunContext) -> pl.LazyFrame:
    return scan_dataset(ctx.dataset().files(), ctx.rules)


def scan_dataset(files: Sequence[Path], rules: DatasetRules) -> pl.LazyFrame:
    """A dataset's files read lazily as a step gets them: the schema's integers and numbers typed, the rest text."""
    import polars as pl

    types = {"integer": pl.Int64, "number": pl.Float64}
    schema = {column.name: types.get(column.type, pl.String) for column in rules.table.fields}
    return pl.scan_csv([str(path) for path in files], schema=schema)


def _keep(ctx: RunContext, step: str, returned: Any) -> StepOutput:
    table = _as_arrow(returned, step)
    import pyarrow.parquet as pq

    path = output_file(ctx, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, fsync=True, fsync_directory=True) as temporary:
        pq.write_table(table, temporary)
    md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return StepOutput(run_id=ctx.run_id, step=step, rows=table.num_rows, columns=list(table.column_names), md5=md5)


def _as_arrow(returned: Any, step: str) -> Any:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    if isinstance(returned, pl.LazyFrame):
        returned = returned.collect()
    if isinstance(returned, pl.DataFrame):
        return returned.to_arrow()
    if isinstance(returned, pd.DataFrame):
        return pa.Table.from_pandas(returned, preserve_index=False)
    raise StepOutputError(f"step {step!r} returned {type(returned).__name__}, not a pandas or polars DataFrame")


def read_output(ctx: RunContext, step: str) -> pd.DataFrame:
    """A kept output as pandas, for applying it to the dataset. Whole numbers stay whole where some
    are missing (pandas' nullable Int64, not float64), so `1607` is not written back as `1607.0`."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    def whole(arrow_type: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
        return pd.Int64Dtype() if pa.types.is_integer(arrow_type) else None

    frame: pd.DataFrame = pq.read_table(output_file(ctx, step)).to_pandas(types_mapper=whole)
    return frame
