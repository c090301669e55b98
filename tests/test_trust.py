"""A run builds only on valid data: a version made elsewhere is validated once, and a bad one stops the run at pull."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Settings
from shared_tasks.run.restore import restore_version
from shared_tasks.run.steps import pull_data
from shared_tasks.validation.schema import COLUMN_NAMES, DataValidationError
from shared_tasks.versioning.history import history
from tests.conftest import TEST_SEED_ROWS, bucket_listing, foreign_commit, origin_head

Edit = Callable[[bytes], bytes]


def cell(line: int, column: str, value: bytes) -> Edit:
    """Set one field of one line (1 is the header) of the CSV bytes."""

    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        fields = lines[line - 1].split(b",")
        fields[COLUMN_NAMES.index(column)] = value
        lines[line - 1] = b",".join(fields)
        return b"\n".join(lines)

    return edit


def line_edit(line: int, change: Callable[[bytes], bytes]) -> Edit:
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[line - 1] = change(lines[line - 1])
        return b"\n".join(lines)

    return edit


def duplicate_id(data: bytes) -> bytes:
    lines = data.split(b"\n")
    first_id = lines[1].split(b",")[0]
    return cell(300, "Employee ID", first_id)(data)


# name -> (edit of the dataset's bytes, what the refusal must say)
DAMAGE: dict[str, tuple[Edit, str]] = {
    "renamed column": (lambda d: d.replace(b"Monthly Income", b"Salary", 1), "column 'Monthly Income': missing column"),
    "short row": (line_edit(40, lambda line: line.rsplit(b",", 2)[0]), "line 40: has 23 fields, expected 25"),
    "extra field": (line_edit(41, lambda line: line + b",1"), "line 41: has 26 fields"),
    "blank line": (line_edit(42, lambda line: b""), "line 42"),
    "not an integer": (cell(50, "Age", b"thirty"), "line 50, column 'Age', value 'thirty'"),
    "non-ASCII digits": (cell(51, "Age", "٣٠".encode()), "line 51, column 'Age'"),
    "a float": (cell(52, "Monthly Income", b"5000.5"), "line 52, column 'Monthly Income', value '5000.5'"),
    "out of range": (cell(53, "Age", b"430"), "line 53, column 'Age', value '430': out of range"),
    "not in the domain": (
        cell(54, "Education Level", b"Bachelor"),
        "line 54, column 'Education Level', value 'Bachelor'",
    ),
    "wrong case": (cell(55, "Attrition", b"stayed"), "line 55, column 'Attrition', value 'stayed'"),
    "duplicate id": (duplicate_id, "line 300, column 'Employee ID'"),
    "invalid UTF-8": (cell(60, "Gender", b"M\xe4le"), "not UTF-8"),
    "byte order mark": (lambda d: b"\xef\xbb\xbf" + d, "byte order mark"),
    "NUL character": (cell(61, "Job Role", b"Media\x00"), "line 61, column 'Job Role'"),
    "escape character": (cell(62, "Job Role", b"\x1b[31mMedia"), "line 62, column 'Job Role'"),
    "spreadsheet formula": (cell(63, "Job Role", b"=cmd|' /C calc'!A0"), "looks like a spreadsheet formula"),
}


def damaged(edit: Edit) -> Callable[[Path], None]:
    def write(data: Path) -> None:
        changed = edit(data.read_bytes())
        data.unlink()  # a read-only link into DVC's cache: replaced, never written in place
        data.write_bytes(changed)

    return write


@pytest.mark.slow
def test_every_kind_of_damage_made_elsewhere_stops_the_next_run_and_a_restore_lets_it_go_on(
    settings: Settings, origin: Path, s3: Any, tmp_path: Path
) -> None:
    good = run_pipeline(settings, "good", records=1)
    failures: dict[str, str] = {}
    for number, (name, (edit, expected)) in enumerate(DAMAGE.items()):
        bad = foreign_commit(settings, tmp_path, damaged(edit), message=f"hand edit: {name}")
        head, objects = origin_head(origin), bucket_listing(s3)
        try:
            run_pipeline(settings, f"after-{number}")
            failures[name] = "the run built on it"
        except DataValidationError as error:
            text = str(error)
            named = f"the version at {bad[:12]} (not made by a pipeline run, by A. Person <person@example.invalid>)"
            if named not in text or expected not in text:
                failures[name] = text[:600]
        if (origin_head(origin), bucket_listing(s3)) != (head, objects):
            failures[name] = "the refused run changed the origin or the remote"
        restore_version(settings, good.commit, f"restore-{number}")
    assert failures == {}
    after = run_pipeline(settings, "after-the-restores", records=2)
    assert after.rows == TEST_SEED_ROWS + 3


def record_validations(dataset_check: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The files each whole-dataset validation reads, in order."""
    read: list[list[str]] = []
    original = dataset_check.validate_dataset

    def recording(files: list[Path], *args: Any, **kwargs: Any) -> Any:
        read.append([file.name for file in files])
        return original(files, *args, **kwargs)

    monkeypatch.setattr(dataset_check, "validate_dataset", recording)
    return read


@pytest.mark.slow
def test_a_valid_version_made_elsewhere_is_accepted_and_read_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_tasks.validation import dataset_check

    def appended(data: bytes) -> bytes:
        last = data.rstrip(b"\n").split(b"\n")[-1].split(b",")
        return data + b",".join([b"900001", *last[1:]]) + b"\n"

    foreign_commit(settings, tmp_path, damaged(appended))
    validated: list[list[str]] = []
    original = dataset_check.validate_dataset
    monkeypatch.setattr(
        dataset_check,
        "validate_dataset",
        lambda files, *a, **k: validated.append([f.name for f in files]) or original(files, *a, **k),
    )
    assert pull_data(settings, "first-look").rows == TEST_SEED_ROWS + 1
    assert pull_data(settings, "second-look").rows == TEST_SEED_ROWS + 1
    assert validated == [[settings.dataset_path.rsplit("/", 1)[-1]]]  # once, by the first run only
    version = run_pipeline(settings, "on-top", records=1)
    assert validated == [[settings.dataset_path.rsplit("/", 1)[-1]]]  # its own version: nothing read again
    assert history(settings)[0].commit == version.commit


@pytest.mark.slow
def test_an_id_repeated_across_two_parts_is_refused_and_a_new_valid_part_is_read_alone(
    partitioned: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_tasks.validation import dataset_check

    run_pipeline(partitioned, "known", records=1)  # every part of the head now known valid

    def new_part(ids: list[int]) -> Callable[[Path], None]:
        def write(directory: Path) -> None:
            parts = sorted(directory.iterdir())
            header, row = parts[0].read_bytes().split(b"\n")[:2]
            rows = [b",".join([str(employee).encode(), *row.split(b",")[1:]]) for employee in ids]
            (directory / f"part-{len(parts) + 100:06d}.csv").write_bytes(b"\n".join([header, *rows]) + b"\n")

        return write

    read: list[list[str]] = []
    original = dataset_check.validate_dataset
    monkeypatch.setattr(
        dataset_check,
        "validate_dataset",
        lambda files, *a, **k: read.append([f.name for f in files]) or original(files, *a, **k),
    )
    foreign_commit(partitioned, tmp_path, new_part([800_001, 800_002]))
    pull_data(partitioned, "fine")
    assert read == [["part-000104.csv"]]  # the known parts' id ranges lie apart: only the new part is read

    read.clear()
    repeated = foreign_commit(partitioned, tmp_path, new_part([900_001, 5]))  # 5 is in the first part
    with pytest.raises(DataValidationError) as caught:
        pull_data(partitioned, "repeated")
    assert f"the version at {repeated[:12]}" in str(caught.value)
    assert "duplicate Employee ID" in str(caught.value) and "part-000000.csv" in str(caught.value)
    assert len(read) == 2 and len(read[1]) > 1  # the new part alone, then every part to name the repeat
