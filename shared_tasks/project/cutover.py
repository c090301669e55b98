"""Which orchestrator runs each step of DAG `dataset_pipeline`: the cutover file beside the DAG.

The Airflow DAG reads it to choose each task's kind; the CLI's `cutover` command reads and writes
it; so its format lives here, with the pipeline it names.

One line per step, `airflow` or `dagster`; a step missing from the file, or no file at all, runs in
Airflow. Read when the DAG is parsed, so a committed change reaches the next run (through gitSync on
the cluster, like the DAG). A bad file is a DAG import error naming the file and the line, never a
silent default: an unknown step or orchestrator, a step named twice, anything but `step: value` pairs,
text that is not UTF-8, nesting deeper than any such file has (refused as it is read, before a
parser could recurse into it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from shared_tasks.files import write_atomically
from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import PIPELINE

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

FILE_NAME = "cutover.yaml"  # beside the DAG file: in the repository, and in the DAG folder gitSync fills
HEADER = (
    f"# Which orchestrator runs each step of DAG {NAMES.dag_id}: airflow or dagster.\n"
    "# A step set to dagster keeps its Airflow task, which launches the step's asset in Dagster and waits.\n"
)


# The file is a mapping of scalars; a level or two more still read as a value of the wrong kind (a list
# or mapping), named as such. Anything deeper is refused while the events stream in: composing it
# would recurse once per level.
MAX_NESTING = 3


class Runner(StrEnum):
    AIRFLOW = "airflow"
    DAGSTER = "dagster"


class CutoverError(ValueError):
    """The cutover file says something that is not a step and an orchestrator."""


@dataclass(frozen=True)
class Cutover:
    runners: dict[str, Runner]

    def runner(self, step: str) -> Runner:
        return self.runners.get(step, Runner.AIRFLOW)

    def in_dagster(self) -> list[str]:
        return [step.name for step in PIPELINE if self.runner(step.name) is Runner.DAGSTER]

    def to_text(self) -> str:
        return HEADER + "".join(f"{step.name}: {self.runner(step.name).value}\n" for step in PIPELINE)


def read_cutover(path: Path) -> Cutover:
    if not path.exists():
        return Cutover({})
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
        return Cutover({})
    if not isinstance(node, yaml.MappingNode):
        raise CutoverError(f"{path}, line {node.start_mark.line + 1}: expected one `step: airflow|dagster` per line")
    steps = {step.name for step in PIPELINE}
    runners: dict[str, Runner] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if not isinstance(key, yaml.ScalarNode) or key.value not in steps:
            raise CutoverError(
                f"{path}, line {line}: unknown step {key.value!r}; the steps are {', '.join(sorted(steps))}"
            )
        if key.value in runners:
            raise CutoverError(f"{path}, line {line}: step {key.value!r} is named twice")
        if not isinstance(value, yaml.ScalarNode) or value.value not in set(Runner):
            shown = value.value if isinstance(value, yaml.ScalarNode) else "a list or mapping"
            raise CutoverError(f"{path}, line {line}: step {key.value!r} set to {shown!r}; use airflow or dagster")
        runners[key.value] = Runner(value.value)
    return Cutover(runners)


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
                    "expected one `step: airflow|dagster` per line"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def write_cutover(path: Path, cutover: Cutover) -> None:
    write_atomically(path, cutover.to_text())
