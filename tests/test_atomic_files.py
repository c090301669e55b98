"""Atomic writes: a reader, a crash or a second writer never sees half a file or someone else's.

Writers are made to race for real: each stops half-way through its write (or at its rename) until
the other is there too, and the directory is looked at while both are inside their writes.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.files import atomic_file, atomic_path, atomic_text_file, sync_directory, write_atomically

OLD = b"the old content, whole\n"
HALF = 256 * 1024
BARRIER_SECONDS = 60


def content_of(writer: int) -> bytes:
    """Two halves that differ between writers and from each other, so a mix of any two shows."""
    return bytes([ord("a") + writer]) * HALF + bytes([ord("A") + writer]) * HALF


def temporaries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


# concurrent writers of one path -----------------------------------------------------------------


def write_in_halves(target: str, writer: int, mid_write: Any, looked: Any, report: Any) -> None:
    """One racing writer: half its content, then wait for the other, look at the folder, finish.

    Runs in a thread or in a process of its own; reports what it saw, or the error it met.
    """
    path = Path(target)
    try:
        with atomic_file(path) as handle:
            data = content_of(writer)
            handle.write(data[:HALF])
            handle.flush()
            mid_write.wait(BARRIER_SECONDS)  # both writers are now half-way through
            seen = ([entry.name for entry in temporaries(path.parent)], path.read_bytes())
            looked.wait(BARRIER_SECONDS)  # neither goes on before both have looked
            handle.write(data[HALF:])
        report.put((writer, seen, None))
    except BaseException as error:  # any error at all is what the test reports
        report.put((writer, None, f"{type(error).__name__}: {error}"))


@dataclass(frozen=True)
class Concurrency:
    name: str
    barrier: Callable[[int], Any]
    report: Callable[[], Any]
    start: Callable[..., Any]


def _thread(target: Callable[..., None], args: tuple[Any, ...]) -> Any:
    worker = threading.Thread(target=target, args=args)
    worker.start()
    return worker


SPAWN = multiprocessing.get_context("spawn")


def _process(target: Callable[..., None], args: tuple[Any, ...]) -> Any:
    worker = SPAWN.Process(target=target, args=args)
    worker.start()
    return worker


CONCURRENCY = [
    Concurrency("threads", threading.Barrier, queue.Queue, _thread),
    Concurrency("processes", SPAWN.Barrier, SPAWN.Queue, _process),
]


@pytest.mark.parametrize("concurrency", CONCURRENCY, ids=lambda c: c.name)
def test_two_writers_at_once_leave_one_writers_whole_content(tmp_path: Path, concurrency: Concurrency) -> None:
    target = tmp_path / "data.csv"
    target.write_bytes(OLD)
    mid_write, looked, report = concurrency.barrier(2), concurrency.barrier(2), concurrency.report()
    workers = [concurrency.start(write_in_halves, (str(target), n, mid_write, looked, report)) for n in (0, 1)]
    outcomes = sorted(report.get(timeout=2 * BARRIER_SECONDS) for _ in workers)
    for worker in workers:
        worker.join(BARRIER_SECONDS)

    assert [error for _, _, error in outcomes] == [None, None]
    for _, (temporary_names, target_then), _ in outcomes:
        # The race was on: both were half-way through at once, each in a temporary file of its own,
        # while the target still held the old content whole.
        assert len(set(temporary_names)) == 2, temporary_names
        assert all(name.startswith(".data.csv.") for name in temporary_names)
        assert target_then == OLD
    assert target.read_bytes() in (content_of(0), content_of(1))
    assert temporaries(tmp_path) == []


# a failed write -----------------------------------------------------------------------------------


def _fail_in_file(target: Path) -> None:
    with atomic_file(target) as handle:
        handle.write(b"half of a new")
        raise RuntimeError("failed mid-write")


def _fail_in_text_file(target: Path) -> None:
    with atomic_text_file(target) as handle:
        handle.write("half of a new")
        raise RuntimeError("failed mid-write")


def _fail_by_name(target: Path) -> None:
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"half of a new")
        raise RuntimeError("failed mid-write")


FAILING_WRITES = {"stream": _fail_in_file, "text stream": _fail_in_text_file, "by name": _fail_by_name}


@pytest.mark.parametrize("fail", FAILING_WRITES.values(), ids=FAILING_WRITES.keys())
def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, fail: Callable[[Path], None]
) -> None:
    target = tmp_path / "data.csv"
    target.write_bytes(OLD)
    with pytest.raises(RuntimeError, match="failed mid-write"):
        fail(target)
    assert target.read_bytes() == OLD
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_failure_mid_write_of_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="failed mid-write"):
        _fail_in_file(tmp_path / "new.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["fsync", "rename"])
def test_a_failed_fsync_or_rename_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "data.csv"
    target.write_bytes(OLD)

    def fail(*_: Any) -> None:
        raise OSError(f"{failing} failed")

    monkeypatch.setattr(*((os, "fsync", fail) if failing == "fsync" else (pathlib.Path, "replace", fail)))
    with pytest.raises(OSError, match=f"{failing} failed"):
        write_atomically(target, b"new", fsync=True)
    assert target.read_bytes() == OLD
    assert sorted(tmp_path.iterdir()) == [target]


# what is written, where, how durably ------------------------------------------------------------------


def test_text_bytes_and_streams_write_what_they_were_given(tmp_path: Path) -> None:
    write_atomically(tmp_path / "text", "zürich\n")
    write_atomically(tmp_path / "bytes", b"\x00\xff")
    with atomic_text_file(tmp_path / "rows", newline="") as handle:
        handle.write("a\r\nb\n")
    with atomic_path(tmp_path / "named") as temporary:
        temporary.write_bytes(b"by name")
    assert (tmp_path / "text").read_bytes() == "zürich\n".encode()
    assert (tmp_path / "bytes").read_bytes() == b"\x00\xff"
    assert (tmp_path / "rows").read_bytes() == b"a\r\nb\n"
    assert (tmp_path / "named").read_bytes() == b"by name"
    assert temporaries(tmp_path) == []


def test_a_new_file_gets_the_mode_open_gives_or_the_one_asked_for(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    write_atomically(tmp_path / "default", b"x")
    write_atomically(tmp_path / "read-only", b"x", mode=0o444)
    with atomic_path(tmp_path / "read-only by name", mode=0o440) as temporary:
        temporary.write_bytes(b"x")
    mode_of = {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()}
    assert mode_of["default"] == mode_of["reference"]
    assert (mode_of["read-only"], mode_of["read-only by name"]) == (0o444, 0o440)


def test_the_temporary_file_can_live_in_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that must hold nothing but finished files never sees the temporary one."""
    folder, beside = tmp_path / "parts", tmp_path
    folder.mkdir()
    renamed_from: list[Path] = []
    replace = pathlib.Path.replace

    def recording(self: Path, target: Any) -> Path:
        renamed_from.append(self)
        return replace(self, target)

    monkeypatch.setattr(pathlib.Path, "replace", recording)
    write_atomically(folder / "part-000001.csv", b"a\n", temp_dir=beside)
    assert [path.parent for path in renamed_from] == [beside]
    assert [entry.name for entry in folder.iterdir()] == ["part-000001.csv"]


def _record_durability(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fsyncs (of which file or folder) and renames, in order, from now on."""
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(descriptor: int) -> None:
        opened = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
        events.append(f"fsync {'folder' if opened.is_dir() else 'temporary' if opened.suffix == '.tmp' else opened}")
        fsync(descriptor)

    def recording_replace(source: Any, target: Any, **where: Any) -> None:
        events.append(f"rename to {Path(target).name}")
        replace(source, target, **where)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)  # what Path.replace calls too
    return events


@pytest.mark.parametrize(
    ("fsync", "fsync_directory", "expected"),
    [
        (False, False, ["rename to data.csv"]),
        (True, False, ["fsync temporary", "rename to data.csv"]),
        (True, True, ["fsync temporary", "rename to data.csv", "fsync folder"]),
    ],
    ids=["none", "content", "content and rename"],
)
def test_durability_is_what_the_caller_asks_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool, fsync_directory: bool, expected: list[str]
) -> None:
    events = _record_durability(monkeypatch)
    target = tmp_path / "data.csv"
    write_atomically(target, b"x", fsync=fsync, fsync_directory=fsync_directory)
    assert events == expected
    events.clear()
    with atomic_path(target, fsync=fsync, fsync_directory=fsync_directory) as temporary:
        temporary.write_bytes(b"by name")
    assert events == expected
    events.clear()
    with atomic_text_file(target, fsync=fsync, fsync_directory=fsync_directory) as handle:
        handle.write("streamed")
    assert events == expected
    assert target.read_text() == "streamed"


def test_sync_directory_fsyncs_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _record_durability(monkeypatch)
    sync_directory(tmp_path)
    assert events == ["fsync folder"]


def test_a_target_with_the_longest_name_a_file_may_have(tmp_path: Path) -> None:
    target = tmp_path / ("é" * 127 + "x")  # 255 bytes
    write_atomically(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert temporaries(tmp_path) == []


def test_bad_content_and_a_missing_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"content for .*data\.csv must be bytes or str, not int"):
        write_atomically(tmp_path / "data.csv", 42)  # type: ignore[arg-type]
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=f"cannot write {missing}/data.csv: the folder {missing} does not"):
        write_atomically(missing / "data.csv", b"x")
    assert list(tmp_path.iterdir()) == []


# every place the product writes a file atomically ----------------------------------------------------


@dataclass(frozen=True)
class CallSite:
    """A write of the product: `prepare` sets up what it reads, `write(root, n)` is writer n's write."""

    name: str
    target: str
    write: Callable[[Path, int], None]
    prepare: Callable[[Path], None] = lambda root: None


def _records(writer: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"Employee ID": [10 + writer, 20 + writer], "Name": [f"writer {writer}"] * 2})


def _base_csv(root: Path) -> None:
    (root / "data.csv").write_bytes(b"Employee ID,Name\n1,first\n2,second\n")


def _write_cutover(root: Path, writer: int) -> None:
    from shared_tasks.project.cutover import Cutover, Runner, write_cutover
    from shared_tasks.project.pipeline import PIPELINE

    write_cutover(root / "cutover.yaml", Cutover({PIPELINE[0].name: (Runner.AIRFLOW, Runner.DAGSTER)[writer]}))


def _replace_pointer(root: Path, writer: int) -> None:
    from shared_tasks.files import write_atomically as _replace_text

    _replace_text(root / "data.csv.dvc", f"outs:\n- md5: {writer:032d}\n")


def _keep_in_cache(root: Path, writer: int) -> None:
    from shared_tasks.versioning.object_store import keep_in_cache as _keep_in_cache

    _keep_in_cache(root / "cache" / "ab" / "cdef.dir", f'[{{"md5": "{writer:032d}"}}]'.encode())


def _append(base_rows: int | None) -> Callable[[Path, int], None]:
    def write(root: Path, writer: int) -> None:
        from shared_tasks.storage.dataset import append_records

        append_records(root / "data.csv", _records(writer), base_rows=base_rows)

    return write


def _write_part(root: Path, writer: int) -> None:
    from shared_tasks.storage.parts import write_part

    (root / "data").mkdir(exist_ok=True)
    write_part(root / "data" / "part-000001.csv", _records(writer))


def _sources(root: Path) -> None:
    for writer in (0, 1):
        (root / f"source-{writer}").mkdir(exist_ok=True)
        (root / f"source-{writer}" / "part-000001.csv").write_text(f"Employee ID\n{writer}\n")


def _write_dataset_csv(root: Path, writer: int) -> None:
    from shared_tasks.storage.layout import write_dataset_csv

    write_dataset_csv(root / f"source-{writer}", root / "whole.csv")


def _remember(root: Path, writer: int) -> None:
    from shared_tasks.storage.catalog import FileCatalog

    FileCatalog(root / "memo", None).remember("0" * 32, rows=writer)


def _save_state(root: Path, writer: int) -> None:
    from shared_tasks.run.workspace import RunState, Workspace

    Workspace(root / "run", "a-run").save_state(RunState(run_id="a-run", ran_by={"pull_data": f"writer {writer}"}))


def _write_seed(root: Path, writer: int) -> None:
    from shared_tasks.run.generate import write_seed_dataset

    write_seed_dataset(root / "seed.csv", rows=20, seed=writer)


def _write_ready_file(root: Path, writer: int) -> None:
    from dataset_pipeline.process import write_ready_file

    write_ready_file(root / "s3.ready", {"s3": 100 + writer}, 9000 + writer)


def _write_settings_file(root: Path, writer: int) -> None:
    from dataset_pipeline.stack import LocalStack, StackConfig

    LocalStack(StackConfig(root=root, bucket=f"bucket-{writer}"))._write_settings_file()


# Each of these once wrote through a temporary file of a fixed name (per process at best), which
# two writers in one process shared: one renamed the other's half-written file, or found none.
CALL_SITES = [
    CallSite("cut-over file", "cutover.yaml", _write_cutover),
    CallSite("DVC pointer", "data.csv.dvc", _replace_pointer),
    CallSite("manifest kept in the DVC cache", "cache/ab/cdef.dir", _keep_in_cache),
    CallSite("append, counting", "data.csv", _append(None), _base_csv),
    CallSite("append, hashing while the kernel copies", "data.csv", _append(2), _base_csv),
    CallSite("part", "data/part-000001.csv", _write_part),
    CallSite("whole dataset as one CSV", "whole.csv", _write_dataset_csv, _sources),
    CallSite("catalog memo", "memo/" + "0" * 32 + ".json", _remember),
    CallSite("run state", "run/state.json", _save_state),
    CallSite("seed dataset", "seed.csv", _write_seed),
    CallSite("stack ready file", "s3.ready", _write_ready_file),
    CallSite("stack settings file", "settings.env", _write_settings_file),
]


@pytest.mark.parametrize("site", CALL_SITES, ids=lambda site: site.name)
def test_two_writers_of_a_product_file_never_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: CallSite
) -> None:
    """Both writers hold their finished content and wait for each other at the rename."""
    target = tmp_path / site.target
    site.prepare(tmp_path)
    at_rename: list[list[str]] = []
    meeting = threading.Barrier(2, action=lambda: at_rename.append([path.name for path in temporaries(tmp_path)]))
    replace = pathlib.Path.replace

    def replace_when_both_are_there(self: Path, renamed_to: Any) -> Path:
        meeting.wait(BARRIER_SECONDS)
        return replace(self, renamed_to)

    errors: list[str] = []

    def write(writer: int) -> None:
        try:
            site.write(tmp_path, writer)
        except BaseException as error:  # any error at all is what the test reports
            errors.append(f"writer {writer}: {type(error).__name__}: {error}")

    with monkeypatch.context() as patched:
        patched.setattr(pathlib.Path, "replace", replace_when_both_are_there)
        writers = [threading.Thread(target=write, args=(writer,)) for writer in (0, 1)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(2 * BARRIER_SECONDS)
    raced = target.read_bytes()

    assert errors == []
    assert len(at_rename) == 1 and len(set(at_rename[0])) == 2, at_rename  # two finished temporaries at once
    assert temporaries(tmp_path) == []
    alone = []
    for writer in (0, 1):
        site.prepare(tmp_path)
        site.write(tmp_path, writer)
        alone.append(target.read_bytes())
    assert alone[0] != alone[1]
    assert raced in alone


def _write_object(root: Path, writer: int) -> None:
    from dataset_pipeline.s3server import _write_durably

    (root / "bucket" / "ab").mkdir(parents=True, exist_ok=True)
    _write_durably(root / "bucket" / "ab" / "abcdef.obj", b'{"key": "k"}\n' + bytes([writer]))


def _small_parts(root: Path) -> None:
    (root / "data").mkdir(exist_ok=True)
    for number in range(1, 9):
        (root / "data" / f"part-{number:06d}.csv").write_text(f"Employee ID\n{number}\n")


def _merge_small_tail(root: Path, writer: int) -> None:
    from shared_tasks.storage.catalog import FileCatalog
    from shared_tasks.storage.parts import merge_small_tail

    assert merge_small_tail(root / "data", FileCatalog.unremembered(), {}, part_rows=1_000)


# What each write makes durable, as it did before it used the shared helper: the content (an fsync
# of the temporary file before the rename), and for the S3 API's objects the rename too.
RENAME_ONLY = ("rename",)
CONTENT = ("fsync temporary", "rename")
DURABILITY = {
    **{site.name: RENAME_ONLY for site in CALL_SITES},
    "append, counting": CONTENT,
    "append, hashing while the kernel copies": CONTENT,
    "part": CONTENT,
    "run state": CONTENT,
}
DURABLE_SITES = [
    *CALL_SITES,
    CallSite("S3 API object", "bucket/ab/abcdef.obj", _write_object),
    CallSite("merged tail of parts", "data/part-000001.csv", _merge_small_tail, _small_parts),
]
DURABILITY |= {"S3 API object": ("fsync temporary", "rename", "fsync folder"), "merged tail of parts": CONTENT}


@pytest.mark.parametrize("site", DURABLE_SITES, ids=lambda site: site.name)
def test_each_product_write_is_as_durable_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: CallSite
) -> None:
    site.prepare(tmp_path)
    events = _record_durability(monkeypatch)
    site.write(tmp_path, 0)
    expected = [
        f"rename to {Path(site.target).name}" if event == "rename" else event for event in DURABILITY[site.name]
    ]
    assert events == expected
    assert temporaries(tmp_path) == []


def test_a_part_is_never_half_written_inside_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts and merges are written beside the dataset's folder, which holds only finished parts."""
    _small_parts(tmp_path)
    seen_in_folder: list[list[str]] = []
    replace = pathlib.Path.replace

    def looking(self: Path, target: Any) -> Path:
        seen_in_folder.append(sorted(entry.name for entry in (tmp_path / "data").iterdir()))
        return replace(self, target)

    monkeypatch.setattr(pathlib.Path, "replace", looking)
    _write_part(tmp_path, 0)
    _merge_small_tail(tmp_path, 0)
    parts = [f"part-{number:06d}.csv" for number in range(1, 9)]
    assert seen_in_folder == [parts, parts]
