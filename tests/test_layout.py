"""The partitioned layout: a directory of CSV parts, versioned at the cost of the change.

The run contract is the same as for the single file (the class below reruns it on a
partitioned origin); what differs is what a version uploads, and the migration between them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.generate import write_seed_dataset
from shared_tasks.run.migrate import migrate_to_partitioned, same_records, split_into_parts
from shared_tasks.run.workspace import WorkspaceError
from shared_tasks.storage.dataset import file_facts
from shared_tasks.storage.layout import Partitioned, for_layout, read_dataset, write_dataset_csv
from shared_tasks.storage.parts import MERGE_FAN_IN, part_files
from shared_tasks.storage.pointer import directory_md5
from shared_tasks.versioning.history import history, verify
from tests.conftest import TEST_BUCKET, TEST_SEED_ROWS, cli
from tests.contract import RunContract
from tests.test_steps import dataset_at


@pytest.mark.slow
class TestPartitionedRun(RunContract):
    """The shared run contract, on an origin that holds part files."""

    orchestrator: ClassVar[str] = "direct"

    @pytest.fixture
    def settings(self, partitioned: Settings) -> Settings:
        return partitioned

    @pytest.fixture
    def origin(self, partitioned: Settings) -> Path:
        return Path(partitioned.git_url.removeprefix("file://"))

    def publish(self, settings: Settings, records: int) -> dict[str, Any]:
        self.runs = getattr(self, "runs", 0) + 1
        return run_pipeline(settings, f"partitioned-{self.runs}", records=records).to_dict()


def _objects(s3: Any) -> dict[str, int]:
    listing = s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix="datasets/")
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}


@pytest.mark.slow
def test_a_partitioned_version_uploads_only_its_new_part(partitioned: Settings, s3: Any, tmp_path: Path) -> None:
    before = _objects(s3)
    version = run_pipeline(partitioned, "small-change", records=3)
    uploaded = {key: size for key, size in _objects(s3).items() if key not in before}
    new_part_size = file_facts(_workspace_part(partitioned, "small-change", "part-000003.csv")).size
    assert version.md5.endswith(".dir")
    assert len(uploaded) == 2  # the new part and the directory's manifest
    assert new_part_size in uploaded.values()
    assert sum(uploaded.values()) < new_part_size + 1_000
    final = dataset_at(partitioned, version.commit, tmp_path)
    assert len(final) == TEST_SEED_ROWS + 3 and final["Employee ID"].is_unique


def test_small_parts_merge_by_tier_and_every_record_stays_in_order(tmp_path: Path) -> None:
    from shared_tasks.run.generate import generate_records
    from shared_tasks.storage.dataset import records_to_csv_bytes

    write_seed_dataset(tmp_path / "seed.csv", rows=1_000)
    directory = tmp_path / "employee_attrition"
    split_into_parts(tmp_path / "seed.csv", directory, part_rows=400)  # 400, 400 and 200 rows
    write_dataset_csv(directory, tmp_path / "before.csv")
    expected = (tmp_path / "before.csv").read_bytes()
    for number in range(70):
        change = generate_records(1, seed=number, first_id=5_000 + number)
        Partitioned(directory).append(change, part_rows=400)
        expected += records_to_csv_bytes(change)

    write_dataset_csv(directory, tmp_path / "after.csv")
    assert (tmp_path / "after.csv").read_bytes() == expected
    rows = [len(pd.read_csv(part)) for part in part_files(directory)]
    # 70 one-record parts: 64 merged (eight merges of eight, then one of those eight), 6 still waiting
    assert MERGE_FAN_IN == 8 and rows == [400, 400, 200, 64, 1, 1, 1, 1, 1, 1]


@pytest.mark.slow
def test_a_version_that_merges_parts_verifies_like_any_other(partitioned: Settings, s3: Any) -> None:
    versions = [run_pipeline(partitioned, f"merge-{number}", records=1) for number in range(MERGE_FAN_IN)]
    merged_in = part_files(_workspace_part(partitioned, f"merge-{MERGE_FAN_IN - 1}", "part-000003.csv").parent)
    assert [len(pd.read_csv(part)) for part in merged_in] == [400, 400, 200, MERGE_FAN_IN]
    assert versions[-1].rows == TEST_SEED_ROWS + MERGE_FAN_IN
    for version in (versions[-2], versions[-1]):
        assert verify(partitioned, version.commit).ok
    assert [v.md5 for v in history(partitioned)[:2]] == [versions[-1].md5, versions[-2].md5]


@pytest.mark.slow
def test_a_pull_puts_back_a_directory_left_half_changed(partitioned: Settings) -> None:
    from shared_tasks.run.context import RunContext
    from shared_tasks.run.steps import pull_data

    first = pull_data(partitioned, "dirty")
    directory = RunContext(partitioned, "dirty").dvc.data_path
    (directory / "part-000001.csv").unlink()
    (directory / "part-000009.csv").write_text((directory / "part-000000.csv").read_text())
    again = pull_data(partitioned, "dirty")
    assert again.md5 == first.md5
    assert [part.name for part in part_files(directory)] == ["part-000000.csv", "part-000001.csv", "part-000002.csv"]


def _workspace_part(settings: Settings, run_id: str, name: str) -> Path:
    from shared_tasks.run.workspace import Workspace

    return Workspace.for_run(settings.work_root, run_id).repo / settings.data_relpath / name


def test_directory_md5_is_the_one_dvc_records(tmp_path: Path) -> None:
    from dvc.repo import Repo

    os.system(f"git init --quiet {tmp_path}")
    with Repo.init(str(tmp_path)) as repo:
        data = tmp_path / "parts"
        data.mkdir()
        (data / "part-000000.csv").write_text("a\n1\n")
        (data / "part-000001.csv").write_text("a\n2\n")
        repo.add(str(data))
    recorded = (tmp_path / "parts.dvc").read_text()
    expected = directory_md5({p.name: file_facts(p).md5 for p in sorted(data.iterdir())})
    assert f"md5: {expected}" in recorded


def test_split_and_read_round_trip(tmp_path: Path) -> None:
    single = tmp_path / "employee_attrition.csv"
    write_seed_dataset(single, rows=1_001)
    count = split_into_parts(single, tmp_path / "employee_attrition", part_rows=250)
    parts = part_files(tmp_path / "employee_attrition")
    assert count == len(parts) == 5
    assert for_layout(Layout.PARTITIONED, tmp_path / "employee_attrition").facts().rows == 1_001
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "employee_attrition"), pd.read_csv(single))
    joined = tmp_path / "joined.csv"
    write_dataset_csv(tmp_path / "employee_attrition", joined)
    assert joined.read_bytes() == single.read_bytes()
    assert same_records(single, tmp_path / "employee_attrition", part_rows=250)
    parts[2].write_text(parts[2].read_text().replace("Male", "Female", 1))  # one field changed
    assert not same_records(single, tmp_path / "employee_attrition", part_rows=250)


def test_a_stray_file_among_the_parts_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "employee_attrition"
    directory.mkdir()
    (directory / "part-000000.csv").write_text("x\n")
    (directory / "notes.txt").write_text("x\n")
    with pytest.raises(ValueError, match=r"unexpected entry 'notes\.txt'"):
        part_files(directory)


@pytest.mark.slow
def test_migration_keeps_every_record_and_every_earlier_version(settings: Settings, tmp_path: Path) -> None:
    earlier = run_pipeline(settings, "before-migration", records=2)
    target = settings.model_copy(update={"layout": Layout.PARTITIONED, "part_rows": 300})
    migrated = migrate_to_partitioned(target, "migration-1")
    assert (migrated.parts, migrated.rows, migrated.already_partitioned) == (4, TEST_SEED_ROWS + 2, False)

    versions = history(target)
    assert [v.run_id for v in versions[:2]] == ["migration-1", "before-migration"]
    assert versions[0].md5.endswith(".dir") and versions[0].rows_added == 0
    for version in versions:
        result = verify(target, version.commit)
        assert result.ok, (version.commit, result.problems)
    before = dataset_at(settings, earlier.commit, tmp_path)
    after = dataset_at(target, migrated.commit, tmp_path)
    pd.testing.assert_frame_equal(before, after)

    assert migrate_to_partitioned(target, "migration-2").already_partitioned
    with pytest.raises(WorkspaceError, match="PIPELINE_LAYOUT=single-file does not match"):
        run_pipeline(settings, "stale-layout")
    later = run_pipeline(target, "after-migration", records=1)
    assert later.rows == TEST_SEED_ROWS + 3
    assert json.loads(later.model_dump_json())["md5"].endswith(".dir")


@pytest.mark.slow
def test_the_cli_migrates_and_runs_go_on_in_the_new_layout(settings_env: dict[str, str], settings: Settings) -> None:
    migrated = cli("migrate", "--part-rows", "500", "--json", env=settings_env)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["parts"] == 2
    stale = cli("run", env=settings_env)
    assert stale.returncode == 1 and "PIPELINE_LAYOUT=single-file does not match" in stale.stderr
    ran = cli("run", "--json", env={**settings_env, "PIPELINE_LAYOUT": "partitioned"})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["rows"] == TEST_SEED_ROWS + 1
    assert history(settings)[0].md5 == json.loads(ran.stdout)["md5"]


@pytest.mark.slow
def test_parts_are_checked_out_as_links_into_the_read_only_cache(partitioned: Settings) -> None:
    from shared_tasks.run.steps import modify_data, pull_data
    from shared_tasks.run.workspace import Workspace

    pull_data(partitioned, "linked")
    parts = part_files(Workspace.for_run(partitioned.work_root, "linked").repo / partitioned.data_relpath)
    assert all(part.stat().st_nlink >= 2 for part in parts)  # shared with the cache, not copied
    cached = {path.stat().st_ino: path for path in partitioned.cache_dir.rglob("*") if path.is_file()}
    before = {part.stat().st_ino: file_facts(cached[part.stat().st_ino]).md5 for part in parts}
    modify_data(partitioned, "linked", records=5)  # a new part: no cached object changes
    assert {ino: file_facts(cached[ino]).md5 for ino in before} == before


@pytest.mark.slow
def test_a_run_reads_only_the_parts_it_has_not_seen(partitioned: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared_tasks.storage.catalog as catalog
    from shared_tasks.run.context import RunContext
    from shared_tasks.run.steps import modify_data, pull_data, push_data

    run_pipeline(partitioned, "first", records=2)  # every part seen once: its facts are known by md5
    read: list[str] = []
    original = catalog.file_facts
    monkeypatch.setattr(catalog, "file_facts", lambda path: read.append(path.name) or original(path))

    pull_data(partitioned, "second")
    modify_data(partitioned, "second", records=1)
    assert read == ["part-000004.csv"]  # the part this run wrote, nothing it pulled

    ctx = RunContext(partitioned, "second")
    remembered = ctx.dataset().facts()
    monkeypatch.setattr(catalog, "file_facts", original)
    assert remembered == for_layout(Layout.PARTITIONED, ctx.dvc.data_path).facts()  # the same facts, read in full
    version = push_data(partitioned, "second")
    assert (version.rows, version.md5) == (TEST_SEED_ROWS + 3, remembered.md5)
    assert verify(partitioned, version.commit).ok


@pytest.mark.slow
def test_a_warm_single_file_run_hashes_the_file_once_and_scans_no_ids(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared_tasks.storage.catalog as catalog
    import shared_tasks.storage.dataset as dataset
    import shared_tasks.storage.layout as layout
    from shared_tasks.run.context import RunContext
    from shared_tasks.run.steps import modify_data, pull_data, push_data

    run_pipeline(settings, "first", records=2)  # the head version's facts are now known by md5
    calls: list[str] = []
    with monkeypatch.context() as patched:  # undone alone: the test's hermetic environment stays
        for module, name in (
            (catalog, "file_facts"),
            (catalog, "scan_ids"),
            (layout, "scan_ids"),
            (dataset, "_copy_and_count"),
        ):
            original = getattr(module, name)
            patched.setattr(module, name, lambda *a, _n=name, _o=original: calls.append(_n) or _o(*a))

        pull_data(settings, "second")
        summary = modify_data(settings, "second", records=3)
        assert calls == []  # the one md5 pass is the copy's own

    ctx = RunContext(settings, "second")
    full = for_layout(Layout.SINGLE_FILE, ctx.dvc.data_path).facts()
    assert (summary.md5, summary.rows) == (full.md5, full.rows) == (full.md5, TEST_SEED_ROWS + 5)
    assert summary.first_id == for_layout(Layout.SINGLE_FILE, ctx.dvc.data_path).largest_id() - 2
    version = push_data(settings, "second")
    assert (version.md5, version.rows) == (full.md5, TEST_SEED_ROWS + 5)
    assert verify(settings, version.commit).ok


@pytest.mark.slow
def test_dvc_add_trusts_the_writers_md5_only_while_the_file_is_unchanged(settings: Settings) -> None:
    from shared_tasks.project.records import WrittenFile
    from shared_tasks.run.context import RunContext
    from shared_tasks.run.steps import pull_data

    pull_data(settings, "trust")
    dvc = RunContext(settings, "trust").dvc
    text = dvc.data_path.read_text(encoding="utf-8")
    claimed = "0" * 32  # not the file's md5: only a trusted record can put it in the pointer

    def rewrite(content: str) -> None:
        dvc.data_path.unlink()  # a read-only link into the cache: replaced, never written
        dvc.data_path.write_text(content, encoding="utf-8")

    rewrite(text + text.splitlines()[-1] + "\n")
    stale = WrittenFile.of(dvc.data_path, claimed)
    os.utime(dvc.data_path, ns=(stale.mtime_ns + 1_000_000, stale.mtime_ns + 1_000_000))
    pointer, _ = dvc.add_and_push(stale)  # changed after it was written: DVC reads it
    assert pointer.md5 == file_facts(dvc.data_path).md5 != claimed

    rewrite(text + "\n")
    pointer, _ = dvc.add_and_push(WrittenFile.of(dvc.data_path, claimed))
    assert pointer.md5 == claimed  # unchanged since written: DVC took the writer's md5
