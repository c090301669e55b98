"""The cutover file: one line per step; anything else is an error naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_tasks.project.cutover import MAX_NESTING, Cutover, CutoverError, Runner, read_cutover, write_cutover
from shared_tasks.project.pipeline import PIPELINE
from tests.conftest import REPO_ROOT


def test_the_committed_file_runs_every_step_in_airflow() -> None:
    cutover = read_cutover(REPO_ROOT / "airflow_dags" / "cutover.yaml")
    assert [cutover.runner(step.name) for step in PIPELINE] == [Runner.AIRFLOW] * len(PIPELINE)


def test_a_missing_or_empty_file_means_every_step_runs_in_airflow(tmp_path: Path) -> None:
    assert read_cutover(tmp_path / "absent.yaml").in_dagster() == []
    (tmp_path / "empty.yaml").write_text("# nothing cut over\n")
    assert read_cutover(tmp_path / "empty.yaml").in_dagster() == []


def test_a_written_file_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    wanted = Cutover({"modify_data": Runner.DAGSTER, "push_data": Runner.DAGSTER})
    write_cutover(path, wanted)
    assert read_cutover(path).in_dagster() == ["modify_data", "push_data"]
    assert path.read_text().startswith("#")  # says what it is to whoever opens it


def test_a_step_forced_to_dagster_keeps_why_in_its_line_until_it_moves_again(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    forced = Cutover({}).moved("modify_data", Runner.DAGSTER, "0 matched shadow run(s)\n of its code")
    write_cutover(path, forced)
    assert "modify_data: dagster  # forced: 0 matched shadow run(s) of its code\n" in path.read_text()
    read = read_cutover(path)
    assert read.forced_steps() == ["modify_data"]
    assert read.forced == {"modify_data": "0 matched shadow run(s) of its code"}
    again = read.moved("modify_data", Runner.DAGSTER)  # set to dagster again: still the forced move it was
    assert again.forced_steps() == ["modify_data"]
    back = read.moved("modify_data", Runner.AIRFLOW).moved("modify_data", Runner.DAGSTER)  # back, then proven
    assert back.forced_steps() == [] and back.in_dagster() == ["modify_data"]
    assert read.moved("push_data", Runner.DAGSTER).forced_steps() == ["modify_data"], "other steps keep theirs"


@pytest.mark.parametrize(
    "line",
    [
        "modify_data: airflow  # forced: a comment on a step Airflow runs means nothing",
        "modify_data: dagster  # forcedly moved",
        "modify_data: dagster  # moved by hand, forced: no",
        "modify_data: dagster",
        "# forced: a comment line of its own\nmodify_data: dagster",
    ],
)
def test_only_a_forced_comment_after_a_dagster_value_marks_a_step_forced(tmp_path: Path, line: str) -> None:
    path = tmp_path / "cutover.yaml"
    path.write_text(line + "\n")
    assert read_cutover(path).forced_steps() == []
    path.write_text("modify_data: dagster # forced\n")
    assert read_cutover(path).forced == {"modify_data": ""}, "the test can fail: a bare marker counts"


def bad_files() -> dict[str, tuple[str, str]]:
    """name -> (file text, what the error must say)."""
    cases = {
        "unknown step": ("pull_data: airflow\nmodfy_data: dagster\n", "line 2: unknown step 'modfy_data'"),
        "named twice": ("push_data: dagster\npush_data: airflow\n", "line 2: step 'push_data' is named twice"),
        "a list": ("- pull_data\n", "line 1: expected one"),
        "a list value": ("pull_data: [airflow]\n", "line 1: step 'pull_data' set to 'a list or mapping'"),
        "not YAML": ("pull_data: 'airflow\n", "not YAML"),
        "a number": ("modify_data: 1\n", "line 1: step 'modify_data' set to '1'"),
    }
    for bad in ("Dagster", "'dagster '", "prefect", "", "yes", "~"):
        cases[f"orchestrator {bad!r}"] = (f"pull_data: airflow\nmodify_data: {bad}\n", "line 2: step 'modify_data'")
    return cases


@pytest.mark.parametrize("case", sorted(bad_files()))
def test_a_bad_file_is_an_error_naming_its_line(tmp_path: Path, case: str) -> None:
    text, expected = bad_files()[case]
    path = tmp_path / "cutover.yaml"
    path.write_text(text)
    with pytest.raises(CutoverError) as caught:
        read_cutover(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)


def nested(depth: int, style: str) -> str:
    """A value nested `depth` lists deep on line 2, in flow style or in block style (one level a line)."""
    if style == "flow":
        return f"pull_data: airflow\nmodify_data: {'[' * depth}dagster{']' * depth}\n"
    return "pull_data: airflow\nmodify_data:\n" + "".join(f"{' ' * level}- \n" for level in range(depth - 1))


@pytest.mark.parametrize(
    ("depth", "style"),
    [(2, "flow"), (2, "block"), (50, "flow"), (50, "block"), (5_000, "flow"), (5_000, "block"), (200_000, "flow")],
)
def test_a_deeply_nested_file_is_an_error_naming_its_line(tmp_path: Path, depth: int, style: str) -> None:
    import yaml

    path = tmp_path / "cutover.yaml"
    path.write_text(nested(depth, style))
    with pytest.raises(CutoverError) as caught:
        read_cutover(path)
    assert str(path) in str(caught.value)
    if depth == 2:  # a list value: the step's own error
        assert "line 2: step 'modify_data' set to 'a list or mapping'" in str(caught.value)
        return
    # The mapping of steps is one level; the list that goes one level too deep opens on this line:
    line = 2 if style == "flow" else 2 + MAX_NESTING
    assert f", line {line}: lists or mappings nested {MAX_NESTING + 1} deep" in str(caught.value)
    if depth == 5_000:  # what composing it did before the depth was checked
        with pytest.raises(RecursionError):
            yaml.compose(path.read_text())


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ("pull_data: airflow\nmodify_data: dagst\xe9r\n".encode("latin-1"), 2),
        (b"\xff\xfepull_data: airflow\n", 1),
        ("# cutover\n\npush_data: airflow # caf\xe9\n".encode("cp1252"), 3),
    ],
)
def test_a_file_that_is_not_utf8_is_an_error_naming_the_file_and_line(tmp_path: Path, data: bytes, line: int) -> None:
    path = tmp_path / "cutover.yaml"
    path.write_bytes(data)
    with pytest.raises(CutoverError) as caught:
        read_cutover(path)
    assert f"{path}, line {line}: not UTF-8 text" in str(caught.value)
    with pytest.raises(UnicodeDecodeError) as plain:  # what reading it as text says: no file named
        path.read_text(encoding="utf-8")
    assert str(path) not in str(plain.value)


def test_a_file_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cutover.yaml"
    path.mkdir()
    with pytest.raises(CutoverError, match=f"{path}: cannot be read"):
        read_cutover(path)
