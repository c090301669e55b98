"""The pytest plugin's real versioning (dataset_pipeline.testing), used here as a team's tests use it.

The product's tests load the plugin (pyproject's addopts); these override its `pipeline` fixture
with the bundled example (a partitioned dataset merged on a key) and with a small project whose
runs change nothing, and read every outcome back from the origin and the S3 API themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from dataset_pipeline.cli import app
from dataset_pipeline.dagster_runs import version_of_run
from dataset_pipeline.scaffold import init_project
from dataset_pipeline.testing.origin import TEST_BUCKET, DatasetOrigin
from shared_tasks.project.declared import DeclaredPipeline, load_project
from shared_tasks.run.restore import RestoreError, restore_version
from shared_tasks.validation.schema import DataValidationError
from shared_tasks.versioning.history import history, verify
from tests.conftest import git

pytestmark = pytest.mark.slow  # a real S3 API and Git origins, DVC's commands

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "station_readings"
EXAMPLE_SEED = EXAMPLE / "seed" / "station_readings.csv"


@pytest.fixture
def pipeline(request: pytest.FixtureRequest) -> DeclaredPipeline:
    """The bundled example, or the project a test asks for with `unchanging_project`."""
    if "unchanging_project" in request.fixturenames:
        return request.getfixturevalue("unchanging_project")  # type: ignore[no-any-return]
    return load_project(EXAMPLE / "dataset-pipeline.toml").pipeline()


def objects_under(s3: Any, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=TEST_BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_the_origin_is_a_bare_git_repository_and_an_s3_remote_holding_the_data_given(
    make_dataset_origin: Callable[..., DatasetOrigin], read_dataset: Callable[[Path], pl.DataFrame], s3: Any
) -> None:
    given = read_dataset(EXAMPLE_SEED).head(30)
    made = make_dataset_origin(given)
    assert git(made.origin, "rev-parse", "--is-bare-repository") == "true"
    (adopted,) = history(made.settings)
    assert (adopted.commit, adopted.orchestrator, adopted.rows) == (made.head(), "adopt", 30)
    prefix = made.remote_url.removeprefix(f"s3://{TEST_BUCKET}/")
    assert any(key.endswith(adopted.md5.removesuffix(".dir")[2:] + ".dir") for key in objects_under(s3, prefix))
    assert made.read().equals(given)
    assert verify(made.settings, adopted.commit, validate=True).ok
    other = make_dataset_origin(given.head(5))
    assert other.origin != made.origin and other.read().height == 5, "each call makes an origin of its own"


def test_run_pipeline_publishes_the_whole_pipelines_version_on_the_origin(
    make_dataset_origin: Callable[..., DatasetOrigin],
) -> None:
    made = make_dataset_origin(EXAMPLE_SEED)
    before = made.read()
    version = made.run(params={"days": 2, "corrections": 3}, run_id="manual__plugin")
    assert version.commit == made.head() and not version.unchanged
    assert (version.rows_updated, version.rows_added) == (3, version.rows - before.height)
    assert version.rows_added > 0
    after = made.read(version.commit)
    assert after.height == version.rows and after.columns == before.columns
    assert [v.commit for v in history(made.settings)][:1] == [version.commit]
    assert verify(made.settings, version.commit, validate=True).ok
    again = made.run(params={"days": 2, "corrections": 3}, run_id="manual__plugin")
    assert again.already_published and again.commit == version.commit == made.head(), "a retry publishes nothing"


def test_a_foreign_version_is_published_unchecked_and_the_next_run_refuses_to_build_on_it(
    dataset_origin: DatasetOrigin,
    publish_foreign_version: Callable[..., str],
    run_pipeline: Callable[..., Any],
    s3: Any,
) -> None:
    bad = dataset_origin.read().cast(pl.String)
    bad[0, "temperature_c"] = "=1+2"
    before = dataset_origin.head()
    foreign = publish_foreign_version(bad, message="a hand edit that breaks the schema")
    assert foreign != before and git(dataset_origin.origin, "log", "-1", "--format=%an", foreign) == "A. Person"
    assert dataset_origin.read(foreign, as_text=True)["temperature_c"][0] == "=1+2", "published as given, unchecked"
    prefix = dataset_origin.remote_url.removeprefix(f"s3://{TEST_BUCKET}/")
    objects = objects_under(s3, prefix)
    with pytest.raises(
        DataValidationError,
        match=f"(?s){foreign[:12]}.*not made by a pipeline run.*column .temperature_c., value .=1\\+2.",
    ):
        run_pipeline()
    assert dataset_origin.head() == foreign and objects_under(s3, prefix) == objects, "nothing published"


@pytest.fixture
def dataset_origin(make_dataset_origin: Callable[..., DatasetOrigin]) -> DatasetOrigin:
    """Seeded with the example's own seed (the plugin's default is the project's tests/sample.csv)."""
    return make_dataset_origin(EXAMPLE_SEED)


# --- A run whose output leaves the dataset as it is --------------------------------------------

UNCHANGING_STEPS = {
    "merge": '''
import polars as pl


def refresh(dataset: pl.LazyFrame) -> pl.DataFrame:
    """Rows of the dataset as they are: merged, they change nothing."""
    return dataset.head(4).collect()
''',
    "replace": '''
import polars as pl


def refresh(dataset: pl.LazyFrame) -> pl.DataFrame:
    """The whole dataset as it is: replacing it changes nothing."""
    return dataset.collect()
''',
}


@pytest.fixture(params=["merge", "replace"], ids=["merge-of-unchanged-rows", "replace-by-the-same-rows"])
def unchanging_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeclaredPipeline]:
    """A project made by `init` from the example's seed, its step one whose output changes nothing."""
    import sys

    strategy = request.param
    made = init_project(tmp_path / "project", EXAMPLE_SEED, name=f"unchanging_{strategy}")
    package = made.root / f"unchanging_{strategy}_steps"
    (package / "steps.py").write_text(UNCHANGING_STEPS[strategy], encoding="utf-8")
    toml = made.project_file.read_text(encoding="utf-8")
    made.project_file.write_text(toml.replace('strategy = "merge"', f'strategy = "{strategy}"'), encoding="utf-8")
    declared = load_project(made.project_file).pipeline()
    assert declared.output.strategy.value == strategy
    yield declared
    for name in [module for module in sys.modules if module.split(".")[0] == package.name]:
        del sys.modules[name]


def test_a_run_that_changes_nothing_publishes_nothing_and_says_so(
    unchanging_project: DeclaredPipeline, make_dataset_origin: Callable[..., DatasetOrigin], s3: Any
) -> None:
    made = make_dataset_origin(EXAMPLE_SEED)
    (adopted,) = history(made.settings)
    prefix = made.remote_url.removeprefix(f"s3://{TEST_BUCKET}/")
    objects = objects_under(s3, prefix)
    version = made.run(run_id="manual__unchanged")
    assert version.unchanged and (version.commit, version.md5) == (adopted.commit, adopted.md5)
    assert (version.rows_added, version.rows_updated, version.rows_deleted) == (0, 0, 0)
    assert made.head() == adopted.commit and [v.commit for v in history(made.settings)] == [adopted.commit]
    assert objects_under(s3, prefix) == objects, "no object uploaded"
    retried = made.run(run_id="manual__unchanged")
    assert retried.unchanged and retried.commit == adopted.commit
    env = {
        "PIPELINE_GIT_URL": made.settings.git_url,
        "PIPELINE_WORK_ROOT": str(made.settings.work_root),
        "AWS_ENDPOINT_URL_S3": str(made.settings.s3_endpoint_url),
        "PIPELINE_PROJECT_FILE": str(unchanging_project.project_file),
    }
    printed = CliRunner().invoke(app, ["run", "--run-id", "manual__unchanged-cli"], env=env)
    assert printed.exit_code == 0, printed.output
    assert "unchanged" in printed.output and adopted.commit[:12] in printed.output, printed.output
    # Through Dagster: its publish asset's metadata is the record, and no version names the run.
    claims = {key: value for key, value in version.to_dict().items() if value is not None}
    shown = version_of_run(history(made.settings), "dagster-run-1", claims, made.remote_url)
    assert shown is not None and shown.unchanged and (shown.commit, shown.run_id) == (adopted.commit, "dagster-run-1")
    assert version_of_run(history(made.settings), "dagster-run-1", {**claims, "unchanged": False}, "") is None
    with pytest.raises(RestoreError, match=f"already holds {adopted.commit[:12]}'s data .*nothing to restore"):
        restore_version(made.settings, adopted.commit, "manual__restore-the-head")
    assert made.head() == adopted.commit
