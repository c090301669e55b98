"""Which orchestrator runs each step of a pipeline's DAG: its cutover file.

The built-in pipeline's file is beside its DAG (`cutover.yaml`, or PIPELINE_CUTOVER_FILE); a
declared pipeline's is beside the project file that declares it (`cutover.<pipeline>.yaml`), so
it travels with the project, to the cluster's DAG folder too. The Airflow DAG reads it to choose
each task's kind; the CLI's `cutover` command reads and writes it; so its format lives here, with
the pipelines it names.

One line per step, `airflow`, `dagster` or `shadow`; a step missing from the file, or no file at all,
runs in Airflow. A shadowed step (a team's own step of a declared pipeline) runs in Airflow, and
Dagster runs it again beside, on a copy of the same inputs, for the two outputs to be compared
(shared_tasks.run.shadow): the stage between observing a step and cutting it over. A `dagster` line
ending in the comment `# forced: <why>` was moved past the shadow gate with `--force`: the versions
its runs publish say so in their history.

Read when the DAG is parsed, so a committed change reaches the next run (through gitSync on the
cluster, like the DAG). A bad file is a DAG import error naming the file and the line, never a
silent default: an unknown step or orchestrator, a step named twice, anything but `step: value` pairs,
text that is not UTF-8, nesting deeper than any such file has (refused as it is read, before a
parser could recurse into it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml

from shared_tasks.files import write_atomically
from shared_tasks.project.declared import DeclaredPipeline, load_project
from shared_tasks.project.names import NAMES, PipelineNames
from shared_tasks.project.pipeline import STEPS, StepSpec, declared_steps

# Tags of a Dagster run launched for a step of an Airflow run: the step works in that run's workspace.
AIRFLOW_DAG_TAG = "airflow/dag_id"
AIRFLOW_RUN_TAG = "airflow/run_id"
AIRFLOW_TASK_TAG = "airflow/task_id"
AIRFLOW_TRY_TAG = "airflow/try_number"
AIRFLOW_TAGS = (AIRFLOW_DAG_TAG, AIRFLOW_RUN_TAG, AIRFLOW_TASK_TAG, AIRFLOW_TRY_TAG)
# What vouches for such a run in Airflow: the task that launches it is of this operator, and pushes
# the launched run's URL (ending `/runs/<Dagster run id>`) as this XCom before it waits on it.
LAUNCHING_OPERATOR = "DagsterStepOperator"
DAGSTER_RUN_XCOM = "dagster_run_url"
# A shadowed step's second task, after the step's own: it launches the shadow in Dagster and waits.
SHADOW_OPERATOR = "DagsterShadowOperator"
SHADOW_TASK_SUFFIX = "__shadow"
MATCHES_AIRFLOW_CHECK = "matches_airflow"  # the shadow's Dagster asset check on the step's asset

FILE_NAME = "cutover.yaml"  # beside the DAG file: in the repository, and in the DAG folder gitSync fills
HEADER = (
    "# Which orchestrator runs each step of DAG {dag_id}: airflow, dagster or shadow.\n"
    "# A step set to dagster keeps its Airflow task, which launches the step's asset in Dagster and waits.\n"
    "# A step set to shadow runs in Airflow, and in Dagster beside it on the same inputs, to compare.\n"
)
FORCED_COMMENT = "forced"  # `step: dagster  # forced: <why>`, written by `cutover STEP dagster --force`


SHADOWABLE = (
    "only a team's own step of a declared pipeline is (its output is kept, for Dagster's to be compared with);"
    " the product's pull and publish are the same code everywhere"
)

# The file is a mapping of scalars; a level or two more still read as a value of the wrong kind (a list
# or mapping), named as such. Anything deeper is refused while the events stream in: composing it
# would recurse once per level.
MAX_NESTING = 3


class Runner(StrEnum):
    AIRFLOW = "airflow"
    DAGSTER = "dagster"
    SHADOW = "shadow"  # Airflow runs it; Dagster runs it too, in the shadow, and the outputs are compared


def shadow_task_id(step: str) -> str:
    return f"{step}{SHADOW_TASK_SUFFIX}"


class CutoverError(ValueError):
    """The cutover file says something that is not a step and an orchestrator."""


@dataclass(frozen=True)
class CutoverSteps:
    """The steps a cutover file may name: those of one pipeline, and the names it is known by."""

    names: PipelineNames
    steps: dict[str, StepSpec]
    params: tuple[str, ...]  # the run's parameters a step launched in Dagster is given
    declared: DeclaredPipeline | None = None

    @classmethod
    def of(cls, pipeline: DeclaredPipeline | None = None) -> CutoverSteps:
        """A declared pipeline's steps, or (None) the built-in pipeline's."""
        if pipeline is None:
            return BUILTIN
        steps = {step.name: step for step in declared_steps(pipeline)}
        return cls(pipeline.names, steps, tuple(pipeline.params), pipeline)

    def file(self, builtin_file: Path) -> Path:
        """Where this pipeline's cutover file is (`builtin_file`, for the built-in pipeline)."""
        return builtin_file if self.declared is None else declared_cutover_file(self.declared)


def declared_cutover_file(pipeline: DeclaredPipeline) -> Path:
    """A declared pipeline's cutover file, beside the project file: it travels with the project."""
    return pipeline.project_dir / f"cutover.{pipeline.name}.yaml"


BUILTIN = CutoverSteps(NAMES, dict(STEPS), ("records",))


def steps_of_dag(dag_id: str, project_file: Path | None) -> CutoverSteps | None:
    """The pipeline whose DAG is `dag_id`: the built-in one, or one the project file declares."""
    if dag_id == NAMES.dag_id:
        return BUILTIN
    if project_file is None:
        return None
    for pipeline in load_project(project_file).pipelines:
        if pipeline.names.dag_id == dag_id:
            return CutoverSteps.of(pipeline)
    return None


@dataclass(frozen=True)
class Cutover:
    runners: dict[str, Runner]
    of: CutoverSteps = BUILTIN
    forced: dict[str, str] = field(default_factory=dict)  # step -> why it was moved without its shadow proof

    def runner(self, step: str) -> Runner:
        return self.runners.get(step, Runner.AIRFLOW)

    def in_dagster(self) -> list[str]:
        return [step for step in self.of.steps if self.runner(step) is Runner.DAGSTER]

    def shadowed(self) -> list[str]:
        return [step for step in self.of.steps if self.runner(step) is Runner.SHADOW]

    def forced_steps(self) -> list[str]:
        """The steps in Dagster that were moved there past the shadow gate."""
        return [step for step in self.in_dagster() if step in self.forced]

    def moved(self, step: str, runner: Runner, forced: str | None = None) -> Cutover:
        """This file with `step` set to `runner`: a forced move says why; any other move of it clears that."""
        others = {name: why for name, why in self.forced.items() if name != step}
        if runner is Runner.DAGSTER and self.runner(step) is Runner.DAGSTER and step in self.forced:
            forced = forced or self.forced[step]  # still where it was forced to
        marked = {step: forced} if forced is not None and runner is Runner.DAGSTER else {}
        return Cutover({**self.runners, step: runner}, self.of, {**others, **marked})

    def to_text(self) -> str:
        header = HEADER.format(dag_id=self.of.names.dag_id)
        return header + "".join(self._line(step) for step in self.of.steps)

    def _line(self, step: str) -> str:
        line = f"{step}: {self.runner(step).value}"
        if step in self.forced_steps():
            why = " ".join(self.forced[step].split())  # one line
            line += f"  # {FORCED_COMMENT}: {why}" if why else f"  # {FORCED_COMMENT}"
        return line + "\n"


def read_cutover(path: Path, of: CutoverSteps = BUILTIN) -> Cutover:
    if not path.exists():
        return Cutover({}, of)
    text = _read_text(path)
    try:
        _check_nesting(path, text)
        node = yaml.compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise CutoverError(f"{path}{where}: not YAML: {error}") from None
    except yaml.YAMLError as error:
        raise CutoverError(f"{path}: not YAML: {error}") from None
    if node is None:
        return Cutover({}, of)
    if not isinstance(node, yaml.MappingNode):
        raise CutoverError(
            f"{path}, line {node.start_mark.line + 1}: expected one `step: airflow|dagster|shadow` per line"
        )
    runners: dict[str, Runner] = {}
    forced: dict[str, str] = {}
    lines = text.splitlines()
    for key, value in node.value:
        step, runner = _line(path, of, key, value, runners)
        runners[step] = runner
        why = _forced_comment(lines, value)
        if runner is Runner.DAGSTER and why is not None:
            forced[step] = why
    return Cutover(runners, of, forced)


def _forced_comment(lines: list[str], value: yaml.Node) -> str | None:
    """Why the step was forced, from a `# forced: <why>` comment after its value; None without one."""
    mark = value.end_mark
    if mark is None or mark.line >= len(lines):
        return None
    rest = lines[mark.line][mark.column :].strip()
    if not rest.startswith("#"):
        return None
    comment = rest[1:].strip()
    word, _, why = comment.partition(":")
    return why.strip() if word.strip() == FORCED_COMMENT else None


def _line(
    path: Path, of: CutoverSteps, key: yaml.Node, value: yaml.Node, earlier: dict[str, Runner]
) -> tuple[str, Runner]:
    """One `step: runner` line, checked against the pipeline's steps and the lines before it."""
    line = key.start_mark.line + 1
    if not isinstance(key, yaml.ScalarNode) or key.value not in of.steps:
        raise CutoverError(
            f"{path}, line {line}: unknown step {key.value!r}; the steps of {of.names.dag_id} are {', '.join(of.steps)}"
        )
    if key.value in earlier:
        raise CutoverError(f"{path}, line {line}: step {key.value!r} is named twice")
    if not isinstance(value, yaml.ScalarNode) or value.value not in set(Runner):
        shown = value.value if isinstance(value, yaml.ScalarNode) else "a list or mapping"
        raise CutoverError(f"{path}, line {line}: step {key.value!r} set to {shown!r}; use airflow, dagster or shadow")
    if value.value == Runner.SHADOW and not of.steps[key.value].declared:
        raise CutoverError(f"{path}, line {line}: step {key.value!r} cannot be shadowed: {SHADOWABLE}")
    return key.value, Runner(value.value)


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CutoverError(f"{path}: cannot be read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CutoverError(
            f"{path}, line {line}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})"
        ) from None


def _check_nesting(path: Path, text: str) -> None:
    """Refuses a list or mapping nested deeper than MAX_NESTING, at the line it opens on."""
    depth = 0
    for event in yaml.parse(text):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                mark = event.start_mark  # always set by the parser
                where = f", line {mark.line + 1}" if mark is not None else ""
                raise CutoverError(
                    f"{path}{where}: lists or mappings nested {depth} deep; "
                    "expected one `step: airflow|dagster|shadow` per line"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def write_cutover(path: Path, cutover: Cutover) -> None:
    write_atomically(path, cutover.to_text())
