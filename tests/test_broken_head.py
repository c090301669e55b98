"""A head that lost or broke its pointer is one bad version: refused naming it, mended by `restore`,
and never in the way of reading the versions around it (issue 23, items 4 and 5)."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.restore import restore_version
from shared_tasks.run.steps import pull_data
from shared_tasks.storage.pointer import MAX_POINTER_BYTES, Pointer, PointerError
from shared_tasks.validation.schema import DataValidationError
from shared_tasks.validation.validate import MAX_CHANGE_FILE_BYTES, read_change_file
from shared_tasks.versioning.dvcops import DvcError
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_SEED_ROWS, cli, foreign_commit, origin_head

Change = Callable[[Path, Settings], None]

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 9)}]\n" for level in range(8)
)


def _write(text: str) -> Change:
    def change(clone: Path, settings: Settings) -> None:
        (clone / settings.pointer_path).write_text(text)
        run(clone, "git", "add", "--", settings.pointer_path)

    return change


def _rewritten(edit: Callable[[str], str]) -> Change:
    def change(clone: Path, settings: Settings) -> None:
        pointer = clone / settings.pointer_path
        pointer.write_text(edit(pointer.read_text()))
        run(clone, "git", "add", "--", settings.pointer_path)

    return change


def _deleted(clone: Path, settings: Settings) -> None:
    run(clone, "git", "rm", "--quiet", "--", settings.pointer_path)


def _renamed(clone: Path, settings: Settings) -> None:
    run(clone, "git", "mv", "--", settings.pointer_path, f"{settings.pointer_path}.old")


def _symlink(clone: Path, settings: Settings) -> None:
    pointer = clone / settings.pointer_path
    pointer.unlink()
    pointer.symlink_to("/etc/hostname")
    run(clone, "git", "add", "--", settings.pointer_path)


def _symlinked_directory(clone: Path, settings: Settings) -> None:
    parent = str(PurePosixPath(settings.pointer_path).parent)
    run(clone, "git", "rm", "-r", "--quiet", "--", parent)
    (clone / parent).symlink_to("/tmp")
    run(clone, "git", "add", "--", parent)


def _directory(clone: Path, settings: Settings) -> None:
    run(clone, "git", "rm", "--quiet", "--", settings.pointer_path)
    (clone / settings.pointer_path).mkdir()
    (clone / settings.pointer_path / "inside").write_text("a file in a directory\n")
    run(clone, "git", "add", "--", settings.pointer_path)


def _submodule(clone: Path, settings: Settings) -> None:
    head = run(clone, "git", "rev-parse", "HEAD")
    run(clone, "git", "rm", "--quiet", "--", settings.pointer_path)
    run(clone, "git", "update-index", "--add", "--cacheinfo", f"160000,{head},{settings.pointer_path}")


def _rule(directory: str, rule: Callable[[Settings], str]) -> Change:
    def change(clone: Path, settings: Settings) -> None:
        ignore = clone / directory / ".dvcignore"
        ignore.write_text((ignore.read_text() if ignore.exists() else "") + rule(settings) + "\n")
        run(clone, "git", "add", "-f", "--", str(PurePosixPath(directory, ".dvcignore")))

    return change


def _reencoded(clone: Path, settings: Settings) -> None:
    (clone / ".gitattributes").write_text("*.dvc working-tree-encoding=UTF-16\n")
    run(clone, "git", "add", "--", ".gitattributes")


def _data_in_git(clone: Path, settings: Settings) -> None:
    data = clone / settings.data_relpath
    if settings.layout is Layout.PARTITIONED:
        data.mkdir(exist_ok=True)
        (data / "part-000000.csv").write_text("in Git itself\n")
    else:
        data.write_text("in Git itself\n")
    run(clone, "git", "add", "-f", "--", settings.data_relpath)


@dataclass(frozen=True)
class Breakage:
    change: Change
    says: str  # what the refusal, history and verify say of the bad commit


# Every way a head can lose or break its pointer, or what Git and DVC make of it.
BREAKAGES: dict[str, Breakage] = {
    "deleted": Breakage(_deleted, "is deleted or renamed"),
    "renamed": Breakage(_renamed, "is deleted or renamed"),
    "not YAML": Breakage(_write("outs: [\n- md5: {\n"), "is not valid YAML (line"),
    "YAML bomb": Breakage(_write(BILLION_LAUGHS), "uses a YAML alias"),
    "nested without end": Breakage(_write("[" * 50_000), "nests deeper than"),
    "too large": Breakage(
        _rewritten(lambda text: text + "#" * MAX_POINTER_BYTES), f"more than the {MAX_POINTER_BYTES}"
    ),
    "YAML but no pointer": Breakage(_write("hello: world\n"), "names no output"),
    "md5 not an md5": Breakage(
        _rewritten(lambda text: text.replace("md5: ", "md5: ../../", 1)), "is not an md5 (32 hex digits"
    ),
    "symlink": Breakage(_symlink, "is a symlink, not a file"),
    "symlinked directory": Breakage(_symlinked_directory, "data is a symlink"),
    "directory": Breakage(_directory, "is a directory, not a file"),
    "submodule": Breakage(_submodule, "is a submodule, not a file"),
    "pointer in .dvcignore": Breakage(_rule("", lambda s: "*.dvc"), ".dvcignore (rule '*.dvc') hides"),
    "data in .dvcignore": Breakage(
        _rule("data", lambda s: f"/{PurePosixPath(s.data_relpath).name}"), "data/.dvcignore (rule '/employee"
    ),
    "re-encoded by .gitattributes": Breakage(_reencoded, "sets working-tree-encoding=UTF-16"),
    "data tracked in Git": Breakage(_data_in_git, "is tracked in Git itself"),
}


def run(cwd: Path, *args: str) -> str:
    completed = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, f"{' '.join(args)}: {completed.stderr[-2000:]}"
    return completed.stdout.strip()


def plain_git_commit(settings: Settings, workdir: Path, change: Change, message: str) -> str:
    """A commit made with plain `git` by someone with push access (no DVC: the pointer's data stays put)."""
    clone = workdir / f"breaker-{secrets.token_hex(4)}"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True, env=os.environ)
    run(clone, "git", "config", "user.name", "A. Person")
    run(clone, "git", "config", "user.email", "person@example.invalid")
    change(clone, settings)
    run(clone, "git", "commit", "--quiet", "--no-verify", "-m", message)
    run(clone, "git", "push", "--quiet", "origin", f"HEAD:{settings.git_branch}")
    return run(clone, "git", "rev-parse", "HEAD")


@pytest.fixture(params=[Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def layout_settings(request: pytest.FixtureRequest) -> Settings:
    settings: Settings = request.getfixturevalue("settings" if request.param is Layout.SINGLE_FILE else "partitioned")
    return settings


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BREAKAGES))
def test_a_broken_head_is_refused_naming_it_restored_from_any_head_and_read_past(
    layout_settings: Settings, tmp_path: Path, name: str
) -> None:
    settings, breakage = layout_settings, BREAKAGES[name]
    good = history(settings)[0]
    bad = plain_git_commit(settings, tmp_path, breakage.change, f"break the head: {name}")

    with pytest.raises(DataValidationError) as refused:
        pull_data(settings, "on-the-broken-head")
    named = f"the version at {bad[:12]}"
    assert named in str(refused.value) and breakage.says in str(refused.value), str(refused.value)
    assert "Error" not in str(refused.value) and "yaml." not in str(refused.value)  # a sentence, not internals

    listed = {version.commit: version for version in history(settings)}  # read past the bad commit
    assert listed[good.commit].ok
    assert listed[bad].problem is not None and breakage.says in listed[bad].problem
    assert listed[bad].md5 is None
    checked = verify(settings, bad)
    assert not checked.ok and bad[:12] in checked.problems[0] and breakage.says in checked.problems[0]

    restored = restore_version(settings, good.commit, "restore-the-good-one")
    assert (restored.md5, restored.rows) == (good.md5, good.rows)
    after = run_pipeline(settings, "after-the-restore", records=1)
    assert after.rows == TEST_SEED_ROWS + 1
    versions = history(settings)
    assert [v.commit for v in versions[:2]] == [after.commit, restored.commit] and all(v.ok for v in versions[:2])
    assert verify(settings, after.commit).ok  # a later version verifies, the bad one before it notwithstanding


@pytest.mark.slow
def test_a_pointer_naming_data_the_remote_lacks_is_refused_naming_the_commit(
    settings: Settings, tmp_path: Path
) -> None:
    absent = "0123456789abcdef0123456789abcdef"
    bad = plain_git_commit(
        settings, tmp_path, _rewritten(lambda text: _with_md5(text, absent)), "point at nothing on the remote"
    )
    with pytest.raises(DvcError) as refused:
        pull_data(settings, "missing-objects")
    assert f"the version at {bad[:12]} (not made by a pipeline run, by A. Person" in str(refused.value)
    assert history(settings)[0].md5 == absent  # a readable pointer: history lists it, verify finds it wanting
    assert not verify(settings, bad).ok


def _with_md5(text: str, md5: str) -> str:
    lines = [f"- md5: {md5}" if line.startswith("- md5: ") else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_foreign_part_numbered_too_high_is_refused_and_the_pipeline_goes_on_after_a_restore(
    partitioned: Settings, tmp_path: Path
) -> None:
    good = history(partitioned)[0]

    def last_part(directory: Path) -> None:
        first = sorted(directory.iterdir())[0]
        header, row = first.read_bytes().split(b"\n")[:2]
        record = b",".join([b"900001", *row.split(b",")[1:]])
        (directory / "part-999999.csv").write_bytes(header + b"\n" + record + b"\n")

    bad = foreign_commit(partitioned, tmp_path, last_part, message="a part with the last name there is")
    head = origin_head(Path(partitioned.git_url.removeprefix("file://")))
    with pytest.raises(DataValidationError) as refused:
        run_pipeline(partitioned, "after-the-last-part")
    assert f"the version at {bad[:12]}" in str(refused.value)
    assert "'part-999999.csv' is numbered above 899999" in str(refused.value)
    assert origin_head(Path(partitioned.git_url.removeprefix("file://"))) == head
    restore_version(partitioned, good.commit, "restore-before-the-last-part")
    assert run_pipeline(partitioned, "goes-on", records=1).rows == TEST_SEED_ROWS + 1


# --- pointers and change files, without a repository ---------------------------------------------------

VALID_POINTER = "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 12\n  hash: md5\n  path: data.csv\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (BILLION_LAUGHS, "uses a YAML alias"),
        ("[" * 100_000, f"more than a pointer's {MAX_POINTER_BYTES}"),
        ("[" * 1_000, "nests deeper than"),
        ("outs: [\n", "is not valid YAML (line 2, column 1)"),
        ("!!python/object/apply:os.system ['true']\n", "is not valid YAML"),
        ("- a list\n", "is not a YAML mapping"),
        ("outs: []\n", "names no output"),
        (VALID_POINTER + "- md5: 0123456789abcdef0123456789abcdef\n  path: b\n", "names 2 outputs"),
        (VALID_POINTER.replace("0123456789abcdef0123456789abcdef", "x" * 500), "is not an md5"),
        (VALID_POINTER.replace("size: 12", "size: -1"), "its size -1 is not a number of bytes"),
        (VALID_POINTER.replace("size: 12", "size: true"), "its size True is not a number of bytes"),
        (VALID_POINTER.replace("path: data.csv", "path: 7"), "its path 7 is not a path"),
    ],
)
def test_a_pointer_that_is_not_one_is_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(PointerError) as refused:
        Pointer.parse(text)
    assert says in str(refused.value) and len(str(refused.value)) < 200


def test_a_valid_pointer_is_read() -> None:
    assert Pointer.parse(VALID_POINTER) == Pointer(md5="0123456789abcdef0123456789abcdef", size=12, path="data.csv")


def test_a_pointer_file_that_is_a_link_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "real.dvc").write_text(VALID_POINTER)
    (tmp_path / "link.dvc").symlink_to(tmp_path / "real.dvc")
    os.mkfifo(tmp_path / "fifo.dvc")
    assert Pointer.read(tmp_path / "real.dvc").size == 12
    for name in ("link.dvc", "fifo.dvc"):
        with pytest.raises(PointerError):
            Pointer.read(tmp_path / name)


def test_a_change_file_is_a_regular_file_of_bounded_size(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.csv")  # opening it for reading would wait for a writer for ever
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(MAX_CHANGE_FILE_BYTES + 1)  # sparse: no disk used
    for path, says in [
        (Path("/dev/zero"), "is not a regular file"),
        (tmp_path / "fifo.csv", "is not a regular file"),
        (tmp_path, "is not a regular file"),
        (huge, f"is larger than {MAX_CHANGE_FILE_BYTES} bytes"),
    ]:
        with pytest.raises(DataValidationError, match=says):
            read_change_file(path)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["x" * 300, "a\tb"])
def test_validate_with_an_argument_that_is_neither_a_file_nor_a_revision_says_so(
    settings_env: dict[str, str], target: str
) -> None:
    refused = cli("validate", target, env=settings_env, timeout=120)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert "not a revision" in refused.stderr or "no commit" in refused.stderr
