"""A pipeline a team declares in a project file: its dataset, schema, parameters, steps and strategy.

The file is TOML: a `dataset-pipeline.toml` holding `[[pipeline]]` tables, or the same tables
under `[tool.dataset-pipeline]` in the team's `pyproject.toml`. The standalone file suits a
repository that is not a Python package or holds several pipelines; the pyproject table keeps a
packaged team project to one file. Both read into the same model, and an error names the file,
the pipeline and the field.

Reading the file imports nothing of the team's: step inputs are declared, not read from the
functions' signatures, so a DAG processor or a code server builds the graph from the file alone.
A step's function is imported when it runs, and its signature is checked against the declaration
then (see `shared_tasks.run.team_steps`).
"""

from __future__ import annotations

import functools
import keyword
import re
import tomllib
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared_tasks.project.names import PipelineNames, check_pipeline_name
from shared_tasks.project.params import ParamSpec

PROJECT_FILE_NAME = "dataset-pipeline.toml"
PYPROJECT_TABLE = "dataset-pipeline"
# The input naming the pulled version; the context is passed as `ctx` when the function takes it.
DATASET_INPUT = "dataset"
CONTEXT_PARAMETER = "ctx"
# Names the product's own steps and assets use: a team step of the same name would be ambiguous.
PRODUCT_STEPS = frozenset(
    {"pull_data", "modify_data", "push_data", "pulled_dataset", "changed_dataset", "published_dataset", "dataset_head"}
)
FUNCTION_PATH = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*")
STEP_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class ProjectFileError(ValueError):
    """A project file that cannot be read, or declares something the product cannot run."""


class Strategy(StrEnum):
    """How a run's output becomes the dataset's new version (dbt's incremental strategies)."""

    APPEND = "append"
    MERGE = "merge"
    REPLACE = "replace"


class DeclaredLayout(StrEnum):
    """As `settings.Layout` (which reads its value from these)."""

    SINGLE_FILE = "single-file"
    PARTITIONED = "partitioned"


class _Declared(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeclaredStep(_Declared):
    """A team step: a plain function, named by import path, and the inputs it takes by name."""

    name: str
    function: str
    inputs: tuple[str, ...] = ()
    description: str = ""
    deterministic: bool = True

    @field_validator("name")
    @classmethod
    def _step_name(cls, value: str) -> str:
        if not STEP_NAME.fullmatch(value) or keyword.iskeyword(value):
            raise ValueError(
                f"step name {value!r} must be lower-case letters, digits and _, a letter first, at most 63"
                " (it is an Airflow task id, a Dagster asset name and a Python parameter name)"
            )
        if value in PRODUCT_STEPS or value in (DATASET_INPUT, CONTEXT_PARAMETER):
            raise ValueError(f"step name {value!r} is taken by the product")
        return value

    @field_validator("function")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not FUNCTION_PATH.fullmatch(value):
            raise ValueError(f"function {value!r} must be an import path `package.module:function`")
        return value


class OutputSpec(_Declared):
    """Which step's output the run publishes, and how it becomes the new version."""

    step: str | None = Field(default=None, description="Default: the last step declared.")
    strategy: Strategy = Strategy.APPEND
    generated_key: str | None = Field(
        default=None, description="append: an integer primaryKey the product assigns (largest + 1, ...)."
    )
    delete_column: str | None = Field(
        default=None,
        description="merge: a boolean column of the output, not of the schema; a row where it is true deletes its key.",
    )

    @model_validator(mode="after")
    def _options_of_the_strategy(self) -> Self:
        if self.generated_key is not None and self.strategy is not Strategy.APPEND:
            raise ValueError("generated_key applies to the append strategy only")
        if self.delete_column is not None and self.strategy is not Strategy.MERGE:
            raise ValueError("delete_column applies to the merge strategy only")
        return self


class DeclaredPipeline(_Declared):
    """One pipeline of a project file, its paths resolved against the file's folder."""

    name: str
    dataset: str = Field(description="Path of the DVC-tracked dataset in the repository (a .csv).")
    layout: DeclaredLayout = DeclaredLayout.SINGLE_FILE
    schema_file: str = Field(alias="schema", description="Table Schema (JSON or YAML), relative to the project file.")
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    steps: tuple[DeclaredStep, ...]
    output: OutputSpec = OutputSpec()
    project_file: Path = Field(default=Path(PROJECT_FILE_NAME), exclude=True)  # the file declaring it

    @property
    def project_dir(self) -> Path:
        return self.project_file.parent

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_pipeline_name(value)

    @field_validator("dataset")
    @classmethod
    def _dataset_path(cls, value: str) -> str:
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or path.suffix != ".csv":
            raise ValueError(f"dataset must be a relative path to a .csv file inside the repository, got {value!r}")
        return str(path)

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for name in value:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(f"parameter name {name!r} must be a Python identifier")
        return value

    @model_validator(mode="after")
    def _graph(self) -> Self:
        if not self.steps:
            raise ValueError("a pipeline declares at least one step")
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(f"step {step.name!r} is declared twice")
            for name in step.inputs:
                if name != DATASET_INPUT and name not in seen:
                    known = ", ".join([DATASET_INPUT, *sorted(seen)])
                    raise ValueError(
                        f"step {step.name!r} takes {name!r}, which is neither the dataset nor a step declared"
                        f" before it (declare steps in the order they run; it may take: {known})"
                    )
            if len(set(step.inputs)) != len(step.inputs):
                raise ValueError(f"step {step.name!r} names an input twice")
            seen.add(step.name)
        output = self.output.step
        if output is not None and output not in seen:
            raise ValueError(f"output step {output!r} is not a declared step")
        return self

    @property
    def names(self) -> PipelineNames:
        return PipelineNames.of(self.name)

    @property
    def output_step(self) -> str:
        return self.output.step or self.steps[-1].name

    @property
    def schema_path(self) -> Path:
        return (self.project_dir / self.schema_file).resolve()

    def step(self, name: str) -> DeclaredStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"pipeline {self.name!r} has no step {name!r} (it has: {', '.join(self.step_names)})")

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    def checked_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """The run's parameters: defaults filled in, each checked; an unknown name is an error."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ValueError(
                f"pipeline {self.name!r} has no parameter {', '.join(map(repr, unknown))}"
                f" (it has: {', '.join(self.params) or 'none'})"
            )
        return {name: spec.check(given.get(name, spec.default), name) for name, spec in self.params.items()}


class PipelineProject(_Declared):
    """Every pipeline one project file declares."""

    source: Path
    pipelines: tuple[DeclaredPipeline, ...]

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        names = [pipeline.name for pipeline in self.pipelines]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"pipeline {twice[0]!r} is declared twice")
        datasets = [pipeline.dataset for pipeline in self.pipelines]
        shared = sorted({path for path in datasets if datasets.count(path) > 1})
        if shared:
            raise ValueError(f"two pipelines version the same dataset {shared[0]!r}")
        return self

    def pipeline(self, name: str | None = None) -> DeclaredPipeline:
        """The pipeline named `name`; with no name, the only one (several need a name)."""
        if name is None:
            if len(self.pipelines) == 1:
                return self.pipelines[0]
            raise ProjectFileError(
                f"{self.source} declares {len(self.pipelines)} pipelines"
                f" ({', '.join(p.name for p in self.pipelines)}): name one with --pipeline or PIPELINE_NAME"
            )
        for pipeline in self.pipelines:
            if pipeline.name == name:
                return pipeline
        raise ProjectFileError(
            f"{self.source} declares no pipeline {name!r} (it declares: {', '.join(p.name for p in self.pipelines)})"
        )


def load_project(path: Path) -> PipelineProject:
    """The project file at `path` (a dataset-pipeline.toml or a pyproject.toml), checked."""
    return _load_project(path.resolve(), path.stat().st_mtime_ns if path.exists() else 0)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectFileError(f"project file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectFileError(f"project file {path} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ProjectFileError(f"project file {path} is not valid TOML: {error}") from None


@functools.lru_cache(maxsize=16)
def _load_project(path: Path, _mtime_ns: int) -> PipelineProject:
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get(PYPROJECT_TABLE)
        if data is None:
            raise ProjectFileError(f"{path} has no [tool.{PYPROJECT_TABLE}] table")
    declared = data.get("pipeline")
    if isinstance(declared, dict):
        declared = [declared]
    if not isinstance(declared, list) or not declared:
        raise ProjectFileError(f"{path} declares no pipeline: add a [[pipeline]] table")
    pipelines = []
    for index, table in enumerate(declared):
        label = table.get("name", f"#{index + 1}") if isinstance(table, dict) else f"#{index + 1}"
        try:
            pipelines.append(DeclaredPipeline.model_validate({**table, "project_file": path}))
        except ValidationError as error:
            raise ProjectFileError(f"{path}, pipeline {label!r}: {_first_problem(error, table)}") from None
        except TypeError:
            raise ProjectFileError(f"{path}, pipeline {label!r}: a [[pipeline]] entry must be a table") from None
    try:
        return PipelineProject(source=path, pipelines=tuple(pipelines))
    except ValidationError as error:
        raise ProjectFileError(f"{path}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def _first_problem(error: ValidationError, table: dict[str, Any]) -> str:
    """The first problem, naming the field as the file spells it (steps[2].function, params.rows)."""
    problem = error.errors()[0]
    where = ""
    for part in problem["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        message = "not a field the product knows (a typo?)"
    return f"field {where}: {message}" if where else message
