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

from shared_tasks.dataset import file_facts
from shared_tasks.generate import write_seed_dataset
from shared_tasks.history import history, verify
from shared_tasks.layout import (
    data_facts,
    directory_md5,
    part_files,
    read_dataset,
    same_records,
    split_into_parts,
    write_dataset_csv,
)
from shared_tasks.migrate import migrate_to_partitioned
from shared_tasks.pipeline import run_pipeline
from shared_tasks.settings import Layout, Settings
from shared_tasks.workspace import WorkspaceError
from tests.conftest import TEST_BUCKET, TEST_SEED_ROWS, cli
from tests.contract import RunContract
from tests.test_steps import dataset_at


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
        return run_pipeline(settings, f"partitioned-{self.runs}", records=records)


def _objects(s3: Any) -> dict[str, int]:
    listing = s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix="datasets/")
    return {item["Key"]: item["Size"] for item in listing.get("Contents", [])}


def test_a_partitioned_version_uploads_only_its_new_part(partitioned: Settings, s3: Any, tmp_path: Path) -> None:
    before = _objects(s3)
    version = run_pipeline(partitioned, "small-change", records=3)
    uploaded = {key: size for key, size in _objects(s3).items() if key not in before}
    new_part_size = file_facts(_workspace_part(partitioned, "small-change", "part-000003.csv")).size
    assert version["md5"].endswith(".dir")
    assert len(uploaded) == 2  # the new part and the directory's manifest
    assert new_part_size in uploaded.values()
    assert sum(uploaded.values()) < new_part_size + 1_000
    final = dataset_at(partitioned, version["commit"], tmp_path)
    assert len(final) == TEST_SEED_ROWS + 3 and final["Employee ID"].is_unique


def _workspace_part(settings: Settings, run_id: str, name: str) -> Path:
    from shared_tasks.workspace import Workspace

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
    assert data_facts(Layout.PARTITIONED, tmp_path / "employee_attrition").rows == 1_001
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
    before = dataset_at(settings, earlier["commit"], tmp_path)
    after = dataset_at(target, migrated.commit, tmp_path)
    pd.testing.assert_frame_equal(before, after)

    assert migrate_to_partitioned(target, "migration-2").already_partitioned
    with pytest.raises(WorkspaceError, match="PIPELINE_LAYOUT=single-file does not match"):
        run_pipeline(settings, "stale-layout")
    later = run_pipeline(target, "after-migration", records=1)
    assert later["rows"] == TEST_SEED_ROWS + 3
    assert json.loads(json.dumps(later))["md5"].endswith(".dir")


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


def test_parts_are_checked_out_as_links_into_the_read_only_cache(partitioned: Settings) -> None:
    from shared_tasks.steps import modify_data, pull_data
    from shared_tasks.workspace import Workspace

    pull_data(partitioned, "linked")
    parts = part_files(Workspace.for_run(partitioned.work_root, "linked").repo / partitioned.data_relpath)
    assert all(part.stat().st_nlink >= 2 for part in parts)  # shared with the cache, not copied
    cached = {path.stat().st_ino: path for path in partitioned.cache_dir.rglob("*") if path.is_file()}
    before = {part.stat().st_ino: file_facts(cached[part.stat().st_ino]).md5 for part in parts}
    modify_data(partitioned, "linked", records=5)  # a new part: no cached object changes
    assert {ino: file_facts(cached[ino]).md5 for ino in before} == before


def test_a_run_reads_only_the_parts_it_has_not_seen(partitioned: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared_tasks.layout as layout
    from shared_tasks.steps import RunContext, modify_data, pull_data, push_data

    run_pipeline(partitioned, "first", records=2)  # every part seen once: its facts are known by md5
    read: list[str] = []
    original = layout.file_facts
    monkeypatch.setattr(layout, "file_facts", lambda path: read.append(path.name) or original(path))

    pull_data(partitioned, "second")
    modify_data(partitioned, "second", records=1)
    assert read == ["part-000004.csv"]  # the part this run wrote, nothing it pulled

    ctx = RunContext(partitioned, "second")
    remembered = layout.data_facts(Layout.PARTITIONED, ctx.dvc.data_path, ctx.catalog, ctx.pointer_md5())
    monkeypatch.setattr(layout, "file_facts", original)
    assert remembered == layout.data_facts(Layout.PARTITIONED, ctx.dvc.data_path)  # the same facts, read in full
    version = push_data(partitioned, "second")
    assert (version.rows, version.md5) == (TEST_SEED_ROWS + 3, remembered.md5)
    assert verify(partitioned, version.commit).ok
