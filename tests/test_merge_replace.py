"""How a declared pipeline's output becomes a version by `merge` and by `replace`.

The station-readings example (examples/station_readings) merges on its compound primaryKey
(station, day) with dates and decimals, and deletes by a marker column; a retention job over the
same dataset replaces it. Each runs on a real bare Git origin with DVC's remote a folder, in both
layouts; what a run published is read back from the origin and the remote.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from shared_tasks.project.declared import ProjectFileError, load_project
from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.adopt import adopt_csv
from shared_tasks.run.steps import pull_data, push_data, run_declared_step
from shared_tasks.validation.schema import DataValidationError, rules_of
from shared_tasks.versioning.history import history, verify
from shared_tasks.versioning.local_dvc import LocalDvc
from tests.conftest import REPO_ROOT, LocalVersioning, git
from tests.team_project import use_settings_env

STATION_PROJECT = REPO_ROOT / "examples" / "station_readings"
SEED = STATION_PROJECT / "seed" / "station_readings.csv"
SEED_ROWS = 100
KEY = ["station", "day"]


@dataclass
class Stations:
    settings: Settings
    origin: Path
    remote_root: Path
    project_dir: Path
    seed_commit: str
    tmp: Path

    def head(self) -> pd.DataFrame:
        """The head version's data as strings, read from a fresh clone of the origin and the remote."""
        clone = self.tmp / f"read-{len(list(self.tmp.glob('read-*')))}"
        git(self.tmp, "clone", "--quiet", self.origin.as_uri(), str(clone))
        LocalDvc(self.settings, clone, Redactor(), self.remote_root, cache_dir=self.tmp / "read-cache").pull()
        data = clone / self.settings.data_relpath
        files = sorted(data.glob("part-*.csv")) if data.is_dir() else [data]
        frames = [pd.read_csv(file, dtype=str, keep_default_na=False) for file in files]
        return pd.concat(frames, ignore_index=True)

    def parts(self) -> dict[str, str]:
        """The head's part files and their md5s (partitioned layout), from the pointer's manifest."""
        clone = self.tmp / f"parts-{len(list(self.tmp.glob('parts-*')))}"
        git(self.tmp, "clone", "--quiet", self.origin.as_uri(), str(clone))
        LocalDvc(self.settings, clone, Redactor(), self.remote_root, cache_dir=self.tmp / "read-cache").pull()
        import hashlib

        data = clone / self.settings.data_relpath
        return {p.name: hashlib.md5(p.read_bytes(), usedforsecurity=False).hexdigest() for p in sorted(data.iterdir())}


def project_copy(tmp: Path, layout: Layout, edit: dict[str, str] | None = None) -> Path:
    """The example project in a folder of its own, in `layout`, with `edit`'s replacements made."""
    folder = tmp / f"station-project-{layout.value}-{len(list(tmp.glob('station-project-*')))}"
    shutil.copytree(STATION_PROJECT, folder)
    toml = folder / "dataset-pipeline.toml"
    text = toml.read_text().replace('layout = "partitioned"', f'layout = "{layout.value}"')
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    toml.write_text(text)
    return toml


@pytest.fixture(params=[Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def stations(request: pytest.FixtureRequest, local_versioning: LocalVersioning, tmp_path: Path) -> Iterator[Stations]:
    toml = project_copy(tmp_path, request.param)
    settings = local_versioning.settings.model_copy(update={"project_file": toml}).for_pipeline(None)
    adopted = adopt_csv(settings, SEED, "adopt-stations")
    yield Stations(
        settings, local_versioning.origin, local_versioning.remote_root, toml.parent, adopted.commit, tmp_path
    )
    sys.modules.pop("station_steps", None)


def keyed(frame: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    return {(row[0], row[1]): list(row) for row in frame.values.tolist()}


def test_the_shipped_seed_is_the_examples_own_and_fits_its_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(STATION_PROJECT))
    import station_steps  # type: ignore[import-not-found]

    assert SEED.read_text() == station_steps.seed_readings().write_csv(), "seed/ is seed_readings() as written"
    from shared_tasks.validation.dataset_check import validate_dataset

    settings = Settings(
        git_url="file:///unused", work_root=tmp_path, project_file=STATION_PROJECT / "dataset-pipeline.toml"
    )
    assert validate_dataset([SEED], "seed", rules=rules_of(settings.for_pipeline(None))).records == SEED_ROWS


def test_a_merge_inserts_the_new_days_and_updates_the_corrected_ones_in_place(stations: Stations) -> None:
    seed = pd.read_csv(SEED, dtype=str, keep_default_na=False)
    version = run_pipeline(stations.settings, "manual__merge-1", params={"days": 2, "corrections": 3})
    assert (version.rows, version.rows_added, version.rows_updated, version.rows_deleted) == (SEED_ROWS + 10, 10, 3, 0)
    newest = history(stations.settings)[0]
    assert (newest.rows_added, newest.rows_updated, newest.rows_deleted) == (10, 3, 0)
    head = stations.head()
    assert not head.duplicated(KEY).any() and len(head) == SEED_ROWS + 10
    corrected = head[head["quality"] == "corrected"]
    assert len(corrected) == 3, "three corrections, each updating the row of its key"
    held = head.iloc[:SEED_ROWS] if stations.settings.layout is Layout.SINGLE_FILE else head
    if stations.settings.layout is Layout.SINGLE_FILE:
        assert held[KEY].values.tolist() == seed[KEY].values.tolist(), "updated in place: the rows' order is kept"
    before, after = keyed(seed), keyed(head)
    untouched = [key for key in before if after[key][4] != "corrected"]
    assert len(untouched) == SEED_ROWS - 3 and all(after[key] == before[key] for key in untouched), "kept as written"
    new_days = sorted(set(head["day"]) - set(seed["day"]))
    assert new_days == ["2026-01-21", "2026-01-22"]
    assert verify(stations.settings, version.commit, validate=True).ok


def test_retiring_a_station_deletes_every_reading_of_it(stations: Stations, monkeypatch: pytest.MonkeyPatch) -> None:
    version = run_pipeline(stations.settings, "manual__retire", params={"days": 1, "corrections": 0, "retire": "CAR03"})
    assert version.rows == SEED_ROWS - 20 + 4
    newest = history(stations.settings)[0]
    assert (newest.rows_added, newest.rows_updated, newest.rows_deleted) == (4, 0, 20)
    head = stations.head()
    assert "CAR03" not in set(head["station"]) and len(head) == SEED_ROWS - 20 + 4
    assert verify(stations.settings, version.commit, validate=True).ok
    shown = history_table(stations.settings, monkeypatch)
    assert "+4 ~0 -20" in shown and "+100" in shown, shown


def history_table(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """`dataset-pipeline history` as a person reads it, for the settings' pipeline."""
    from typer.testing import CliRunner

    from dataset_pipeline.cli import app

    use_settings_env(monkeypatch, settings)
    shown = CliRunner().invoke(app, ["history"])
    assert shown.exit_code == 0, shown.output
    return shown.output


def test_merges_racing_to_publish_each_apply_their_keys_on_the_head_they_lost_to(stations: Stations) -> None:
    """Every run pulls the seed and computes first; then all publish at once. Each that lost re-applies its
    kept output by key on the new head, so each key holds the value of the last run (by history) that wrote it."""
    runs = [f"manual__race-{index}" for index in range(4)]
    outputs: dict[str, pd.DataFrame] = {}
    for run in runs:
        pull_data(stations.settings, run)
        for step in ("collect_readings", "quality_check"):
            run_declared_step(stations.settings, run, step, {"days": 1, "corrections": 4})
        outputs[run] = pd.read_parquet(
            next(stations.settings.work_root.rglob(f"*{run}*/outputs/quality_check.parquet"))
        )
    barrier = threading.Barrier(len(runs))
    published: dict[str, object] = {}
    errors: list[BaseException] = []

    def publish(run: str) -> None:
        barrier.wait()
        try:
            published[run] = push_data(stations.settings, run)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    versions = [v for v in reversed(history(stations.settings)) if v.run_id in runs]
    order = [v.run_id for v in versions]
    assert sorted(order) == sorted(runs), "one version per run"
    parents = [git(stations.origin, "rev-parse", f"{v.commit}^") for v in versions]
    assert parents[0] == stations.seed_commit and parents[1:] == [v.commit for v in versions[:-1]], (
        "all but the first built on a head they did not pull"
    )
    assert [v.rows_added for v in versions] == [5, 0, 0, 0], "the new day's keys: inserted once, then updated"
    expected = keyed(pd.read_csv(SEED, dtype=str, keep_default_na=False))
    for run in order:  # oldest first: a later run's value wins
        frame = outputs[run]
        for row in frame.itertuples(index=False):
            expected[(row.station, row.day.isoformat())] = [
                row.station,
                row.day.isoformat(),
                f"{row.temperature_c:.1f}",
                "" if pd.isna(row.rainfall_mm) else f"{row.rainfall_mm:.1f}",
                row.quality,
            ]
    head = stations.head()
    assert keyed(head) == expected
    assert verify(stations.settings, history(stations.settings)[0].commit, validate=True).ok


def test_a_merge_rewrites_only_the_parts_holding_its_keys(local_partitioned: LocalVersioning, tmp_path: Path) -> None:
    toml = project_copy(tmp_path, Layout.PARTITIONED)
    settings = local_partitioned.settings.model_copy(update={"project_file": toml}).for_pipeline(None)
    settings = settings.model_copy(update={"part_rows": 1000})
    adopt_csv(settings, SEED, "adopt-parts")
    stations = Stations(settings, local_partitioned.origin, local_partitioned.remote_root, toml.parent, "", tmp_path)
    for day in range(3):  # three parts of new days after the seed's
        run_pipeline(settings, f"manual__day-{day}", params={"days": 1, "corrections": 0})
    before = stations.parts()
    assert len(before) == 4
    version = run_pipeline(settings, "manual__fix", params={"days": 1, "corrections": 1})
    after = stations.parts()
    changed = sorted(name for name in before if after.get(name) != before[name])
    added = sorted(set(after) - set(before))
    assert len(changed) == 1 and len(added) == 1, (changed, added)
    newest = history(settings)[0]
    assert (newest.rows_added, newest.rows_updated) == (5, 1) and newest.commit == version.commit


def replace_project(tmp: Path, layout: Layout) -> Path:
    steps = textwrap.dedent(
        """\
        [[pipeline.steps]]
        name = "keep_recent"
        function = "station_steps:keep_recent"
        inputs = ["dataset"]

        [pipeline.output]
        strategy = "replace"
        """
    )
    toml = project_copy(tmp, layout)
    text = toml.read_text()
    head = text[: text.index("[[pipeline.steps]]")].replace("[pipeline.params.days]", "[pipeline.params.keep_days]")
    toml.write_text(head.replace('name = "station_readings"', 'name = "station_retention"') + steps)
    return toml


@pytest.mark.parametrize("layout", [Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def test_a_replace_publishes_its_output_whole_and_after_a_lost_race_on_top_naming_its_base(
    layout: Layout, local_versioning: LocalVersioning, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = replace_project(tmp_path, layout)
    settings = local_versioning.settings.model_copy(update={"project_file": toml}).for_pipeline(None)
    seed = adopt_csv(settings, SEED, "adopt-retention")
    stations = Stations(
        settings, local_versioning.origin, local_versioning.remote_root, toml.parent, seed.commit, tmp_path
    )
    slow = "manual__keep-10"
    pull_data(settings, slow)
    run_declared_step(settings, slow, "keep_recent", {"keep_days": 10})
    fast = run_pipeline(settings, "manual__keep-15", params={"keep_days": 15})
    assert fast.rows == 75
    version = push_data(settings, slow)
    assert git(local_versioning.origin, "rev-parse", f"{version.commit}^") == fast.commit, "published on top"
    newest = history(settings)[0]
    assert newest.rows == 50 and newest.computed_from == seed.commit, "history names the version it was computed from"
    head = stations.head()
    assert sorted(set(head["day"]))[0] == "2026-01-11" and len(head) == 50
    assert verify(settings, version.commit, validate=True).ok
    assert f"replaced (from {seed.commit[:12]})" in history_table(settings, monkeypatch)
    sys.modules.pop("station_steps", None)


# --- what a merge refuses: every kind of bad output, and nothing is published ------------------------

BAD_OUTPUTS = {
    "duplicate key": (
        "pl.DataFrame({'station': ['ABE01', 'ABE01'], 'day': [D, D], 'temperature_c': [1.0, 2.0],"
        " 'rainfall_mm': [0.0, 0.0], 'quality': ['raw', 'raw']})",
        r"'station'.*'day'|primary ?key|unique|duplicate",
    ),
    "bad key in an upsert": (
        "pl.DataFrame({'station': ['abe01'], 'day': [D], 'temperature_c': [1.0], 'rainfall_mm': [0.0],"
        " 'quality': ['raw']})",
        r"line 2, column 'station', value 'abe01'",
    ),
    "out of range": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [99.5], 'rainfall_mm': [0.0],"
        " 'quality': ['raw']})",
        r"line 2, column 'temperature_c', value '99.5'",
    ),
    "required missing": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [1.0], 'rainfall_mm': [0.0],"
        " 'quality': [None]}, schema_overrides={'quality': pl.String})",
        r"line 2, column 'quality'",
    ),
    "not in the enum": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [1.0], 'rainfall_mm': [0.0],"
        " 'quality': ['great']})",
        r"line 2, column 'quality', value 'great'",
    ),
    "a column the schema lacks": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [1.0], 'rainfall_mm': [0.0],"
        " 'quality': ['raw'], 'humidity': [3]})",
        r"column 'humidity'.*not a field of the schema",
    ),
    "a field missing": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [1.0], 'quality': ['raw']})",
        r"column 'rainfall_mm'.*missing",
    ),
    "written and deleted": (
        "pl.DataFrame({'station': ['ABE01', 'ABE01'], 'day': [D, D], 'temperature_c': [1.0, None],"
        " 'rainfall_mm': [0.0, None], 'quality': ['raw', None], 'retracted': [False, True]})",
        r"both written and deleted",
    ),
    "marker not boolean": (
        "pl.DataFrame({'station': ['ABE01'], 'day': [D], 'temperature_c': [1.0], 'rainfall_mm': [0.0],"
        " 'quality': ['raw'], 'retracted': ['yes']})",
        r"column 'retracted'.*true or false",
    ),
    "deleting a bad key": (
        "pl.DataFrame({'station': ['ABE01', 'nowhere'], 'day': [D, D], 'temperature_c': [1.0, None],"
        " 'rainfall_mm': [0.0, None], 'quality': ['raw', None], 'retracted': [False, True]})",
        r"(?s)rows deleting a key.*line 3, column 'station', value 'nowhere'",
    ),
    "out of range after a delete": (
        "pl.DataFrame({'station': ['ABE01', 'BRI02'], 'day': [D, D], 'temperature_c': [None, 99.5],"
        " 'rainfall_mm': [None, 0.0], 'quality': [None, 'raw'], 'retracted': [True, False]})",
        r"line 3, column 'temperature_c', value '99.5'",
    ),
    "deleting a missing key": (
        "pl.DataFrame({'station': ['ABE01', 'ABE01'], 'day': [D, None], 'temperature_c': [1.0, None],"
        " 'rainfall_mm': [0.0, None], 'quality': ['raw', None], 'retracted': [False, True]})",
        r"(?s)rows deleting a key.*line 3, column 'day'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_a_bad_merge_output_is_refused_naming_what_is_wrong_and_nothing_is_published(
    case: str, local_versioning: LocalVersioning, tmp_path: Path
) -> None:
    frame, message = BAD_OUTPUTS[case]
    package = f"bad_merge_{abs(hash(case))}"
    toml = project_copy(tmp_path, Layout.SINGLE_FILE)
    (toml.parent / f"{package}.py").write_text(
        f"import datetime\nimport polars as pl\nD = datetime.date(2026, 1, 5)\n\ndef emit(ctx):\n    return {frame}\n"
    )
    text = toml.read_text()
    steps = f'[[pipeline.steps]]\nname = "emit"\nfunction = "{package}:emit"\n\n[pipeline.output]\n'
    steps += 'strategy = "merge"\ndelete_column = "retracted"\n'
    toml.write_text(text[: text.index("[[pipeline.steps]]")] + steps)
    settings = local_versioning.settings.model_copy(update={"project_file": toml}).for_pipeline(None)
    adopted = adopt_csv(settings, SEED, "adopt-bad")
    with pytest.raises(DataValidationError, match=message):
        run_pipeline(settings, "manual__bad", params={})
    assert git(local_versioning.origin, "rev-parse", "main") == adopted.commit, "nothing was published"
    sys.modules.pop(package, None)


@pytest.mark.parametrize(
    ("output", "named"),
    [
        ('strategy = "append"\ndelete_column = "gone"', "delete_column applies to the merge strategy only"),
        ('strategy = "replace"\ngenerated_key = "id"', "generated_key applies to the append strategy only"),
        ('strategy = "upsert"', "output.strategy"),
    ],
)
def test_an_option_of_another_strategy_is_refused_naming_it(output: str, named: str, tmp_path: Path) -> None:
    toml = project_copy(tmp_path, Layout.SINGLE_FILE, {'strategy = "merge"\ndelete_column = "retracted"': output})
    with pytest.raises(ProjectFileError, match=named):
        load_project(toml)


@pytest.mark.parametrize(
    ("schema_edit", "named"),
    [
        (('"primaryKey": ["station", "day"],', ""), "merge needs a primaryKey"),
        (('"name": "quality"', '"name": "retracted"'), "delete_column 'retracted' is a field of"),
    ],
)
def test_a_merge_without_a_key_or_with_a_marker_the_schema_holds_is_refused(
    schema_edit: tuple[str, str], named: str, tmp_path: Path
) -> None:
    toml = project_copy(tmp_path, Layout.SINGLE_FILE)
    schema = toml.parent / "schemas" / "station_readings.schema.json"
    schema.write_text(schema.read_text().replace(*schema_edit))
    settings = Settings(git_url="file:///unused", work_root=tmp_path, project_file=toml).for_pipeline(None)
    with pytest.raises(ValueError, match=named):
        rules_of(settings)


def test_a_merge_that_fails_at_any_write_publishes_exactly_its_version_on_retry(
    local_partitioned: LocalVersioning, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file the publish of a partitioned merge replaces (the rewritten parts, the run's state,
    DVC's cache, pointer and remote objects) fails in turn; the retry restores the pulled data and publishes the
    same version as a run that never failed."""
    import os

    toml = project_copy(tmp_path, Layout.PARTITIONED)
    base = local_partitioned.settings.model_copy(update={"project_file": toml}).for_pipeline(None)
    adopt_csv(base, SEED, "adopt-faults")
    template = tmp_path / "template"
    shutil.copytree(local_partitioned.origin, template / "origin.git")
    shutil.copytree(local_partitioned.remote_root, template / "remote")
    params = {"days": 1, "corrections": 6}
    real_replace = os.replace

    def publish_failing_at(point: int | None, root: Path) -> tuple[int, str | None]:
        shutil.copytree(template, root)
        settings = base.model_copy(update={"git_url": (root / "origin.git").as_uri(), "work_root": root / "work"})
        from shared_tasks.versioning.backends import LocalBackends, using_backends

        calls = 0

        def failing_replace(source: object, target: object) -> None:
            nonlocal calls
            if "file-facts" in Path(str(target)).parts:  # a remembered fact: rewritten at will, not a state change
                real_replace(source, target)  # type: ignore[arg-type]
                return
            calls += 1
            if calls == point:
                raise OSError(f"injected failure at replace #{point}")
            real_replace(source, target)  # type: ignore[arg-type]

        with using_backends(LocalBackends(root / "remote")):
            run = "manual__faults"
            pull_data(settings, run)
            for step in ("collect_readings", "quality_check"):
                run_declared_step(settings, run, step, params)
            monkeypatch.setattr(os, "replace", failing_replace)
            try:
                push_data(settings, run)
            except OSError as error:
                assert f"#{point}" in str(error)
            finally:
                monkeypatch.setattr(os, "replace", real_replace)
            failed_at = calls
            version = push_data(settings, run)
            versions = history(settings)
            assert [v.run_id for v in versions].count(run) == 1, "exactly one version"
            assert verify(settings, version.commit, validate=True).ok
            return failed_at, version.md5

    writes, clean_md5 = publish_failing_at(None, tmp_path / "clean")
    assert writes >= 4, f"a partitioned merge replaces several files: {writes}"
    for point in range(1, writes + 1):
        failed_at, md5 = publish_failing_at(point, tmp_path / f"fail-{point}")
        assert failed_at == point, "the failure took effect"
        assert md5 == clean_md5, f"failing at write {point} changed what was published"


KEYED_SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "price", "type": "number", "constraints": {"required": True}},
        {"name": "note", "type": "string"},
    ],
    "primaryKey": ["id", "price"],
}


@pytest.mark.parametrize("layout", [Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def test_merge_keys_match_by_value_and_the_rows_it_keeps_are_written_back_byte_for_byte(
    layout: Layout, tmp_path: Path
) -> None:
    import json

    from shared_tasks.storage.keyed import KeyedChange
    from shared_tasks.storage.layout import for_layout
    from shared_tasks.validation.schema import DatasetRules
    from shared_tasks.validation.table_schema import load_table_schema

    schema = tmp_path / "keyed.schema.json"
    schema.write_text(json.dumps(KEYED_SCHEMA))
    rules = DatasetRules(load_table_schema(schema))
    kept_rows = '1,2.5,""\n3,4,"a, quoted ""note"""\n'
    text = "id,price,note\n" + "07,1.50,old\n" + kept_rows + "9,9,gone\n"
    target = tmp_path / ("data" if layout is Layout.PARTITIONED else "data.csv")
    if layout is Layout.PARTITIONED:
        target.mkdir()
        (target / "part-000000.csv").write_text(text)
    else:
        target.write_text(text)
    fields = [rules.table.field("id"), rules.table.field("price")]
    upserts = pd.DataFrame({"id": [7, 11], "price": [1.5, 0.25], "note": ["new", "inserted"]})
    deletes = pd.DataFrame({"id": [9], "price": [9.0]})
    change = KeyedChange.of(fields, rules.table.names, upserts, deletes)
    done = for_layout(layout, target, rules=rules).merge(change, part_rows=100)
    assert (done.counts.updated, done.counts.inserted, done.counts.deleted) == (1, 1, 1)
    files = sorted(target.iterdir()) if layout is Layout.PARTITIONED else [target]
    merged = "".join(
        file.read_text() if index == 0 else file.read_text().split("\n", 1)[1] for index, file in enumerate(files)
    )
    assert merged == "id,price,note\n7,1.5,new\n" + kept_rows + "11,0.25,inserted\n", merged


# --- both orchestrators: every example's graph, and the merge materialized by Dagster -----------------

EXAMPLE_PROJECTS = sorted((REPO_ROOT / "examples").glob("*/dataset-pipeline.toml"))


@pytest.mark.parametrize("project_file", EXAMPLE_PROJECTS, ids=lambda path: path.parent.name)
def test_every_example_pipelines_airflow_tasks_and_edges_equal_its_dagster_assets_and_dependencies(
    project_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from dagster_assets.declared_pipelines import pipeline_definitions
    from shared_tasks.project.pipeline import pipeline_steps
    from tests.test_airflow_dag import load_dag

    load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(project_file))
    dags = importlib.import_module("airflow_dags.declared_pipelines")
    for pipeline in load_project(project_file).pipelines:
        settings = Settings(git_url="file:///unused", work_root=tmp_path, project_file=project_file)
        settings = settings.for_pipeline(pipeline.name)
        dag = getattr(dags, f"{pipeline.name}_pipeline")
        airflow = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
        assets, _ = pipeline_definitions(pipeline)
        step_of = {step.output: step.name for step in pipeline_steps(settings)}
        dagster = {step_of[a.key.path[-1]]: {step_of[k.path[-1]] for k in a.asset_deps[a.key]} for a in assets}
        assert airflow == dagster and len(airflow) == len(pipeline.steps) + 2


def test_dagster_materializes_a_merge_and_shows_what_it_updated(
    stations: Stations, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from dagster_assets.declared_pipelines import DeclaredPipelineSettings, pipeline_definitions
    from dagster_assets.resources import NoStoredOutputs

    use_settings_env(monkeypatch, stations.settings)
    assets, job = pipeline_definitions(stations.settings.declared())
    assert job.name == "station_readings_pipeline"
    resources = {"declared_settings": DeclaredPipelineSettings(), "io_manager": NoStoredOutputs()}
    config = {"ops": {"station_readings__pulled_dataset": {"config": {"days": 1, "corrections": 2}}}}
    result = dg.materialize(assets, resources=resources, run_config=config)
    assert result.success
    published = result.asset_materializations_for_node("station_readings__published_dataset")[0]
    claims = {key: entry.value for key, entry in published.metadata.items()}
    assert (claims["rows"], claims["rows_added"], claims["rows_updated"], claims["rows_deleted"]) == (
        SEED_ROWS + 5,
        5,
        2,
        0,
    )
    newest = history(stations.settings)[0]
    assert newest.commit == claims["commit"] and newest.orchestrator == "dagster" and newest.rows_updated == 2
