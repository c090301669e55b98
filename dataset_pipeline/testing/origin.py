"""The plugin's real versioning: a bare Git origin and an S3 API on loopback, seeded with the team's data.

A team's tests get what a run gets in production, with nothing of theirs reachable: the S3 API is
moto's server on 127.0.0.1 with fake keys, the origin a bare repository in pytest's temporary
folder, and every test that uses them runs with the caller's Git, DVC, AWS and pipeline settings
scrubbed from its environment (a test can never publish to the team's real origin or bucket).

- `dataset_origin`: the pipeline's dataset on its own origin, its first version the sample
  (`dataset_pipeline_sample` in pytest's ini, default `tests/sample.csv`), adopted as
  `dataset-pipeline adopt` does.
- `make_dataset_origin(data=None)`: the same, seeded with a frame or a CSV the test gives.
- `run_pipeline(params=..., run_id=...)`: the whole pipeline run directly on `dataset_origin`;
  returns the published version (its commit, md5, rows, rows added, ...).
- `publish_foreign_version(data, message=...)`: a version of `dataset_origin` published the way
  a person would, with the `git` and `dvc` commands in a fresh clone and no check at all, to test
  what the pipeline does with bad upstream data. Returns its commit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import polars as pl

    from dataset_pipeline.s3server import S3Server
    from shared_tasks.project.declared import DeclaredPipeline
    from shared_tasks.project.records import PublishedVersion
    from shared_tasks.project.settings import Settings

TEST_BUCKET = "pipeline-test"
SAMPLE_INI = "dataset_pipeline_sample"
# The caller's settings of everything a run talks to; none of them reaches a test that versions.
SCRUBBED_PREFIXES = ("PIPELINE_", "GIT_", "GITSYNC_", "AWS_", "DATASET_PIPELINE_", "DVC_", "AIRFLOW_", "DAGSTER_")
Data = Any  # a polars or pandas DataFrame, or the path of a CSV


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SAMPLE_INI, "the CSV dataset_origin is seeded with (relative to pytest's root)", default="tests/sample.csv"
    )


def hermetic_environment(home: Path) -> dict[str, str]:
    """os.environ without the caller's Git, DVC, AWS and pipeline settings, with S3's fake keys and a
    Git and DVC configuration of its own under `home`."""
    from dataset_pipeline.s3server import FAKE_CREDENTIALS

    env = {key: value for key, value in os.environ.items() if not key.startswith(SCRUBBED_PREFIXES)}
    env.update(FAKE_CREDENTIALS)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        DVC_NO_ANALYTICS="1",
        DVC_GLOBAL_CONFIG_DIR=str(home / ".config" / "dvc"),
        DVC_SYSTEM_CONFIG_DIR=str(home / ".config" / "dvc-system"),
    )
    return env


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3 API on loopback (moto's server), with one bucket; its own fake keys, nobody's real ones."""
    from dataset_pipeline.s3server import FAKE_CREDENTIALS, S3Server, s3_client

    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_CREDENTIALS.items():
            patch.setenv(key, value)
        with S3Server(port=0) as server:
            s3_client(server.endpoint).create_bucket(Bucket=TEST_BUCKET)
            yield server


@pytest.fixture
def versioning_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's process environment made hermetic (see `hermetic_environment`); returns it."""
    env = hermetic_environment(tmp_path / "home")
    for key in [key for key in os.environ if key not in env]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@dataclass(frozen=True)
class DatasetOrigin:
    """A declared pipeline's dataset on a bare Git origin of a test's own, its data on the S3 API."""

    settings: Settings
    origin: Path
    remote_url: str
    workdir: Path

    def head(self) -> str:
        return _git(self.origin, "rev-parse", f"refs/heads/{self.settings.git_branch}")

    def run(self, params: dict[str, Any] | None = None, run_id: str | None = None) -> PublishedVersion:
        """The whole pipeline, every step in order, in this process, as `dataset-pipeline run` runs it."""
        from shared_tasks.project.pipeline import run_pipeline

        return run_pipeline(self.settings, run_id or f"manual__test-{secrets.token_hex(4)}", params=params)

    def publish_foreign(self, data: Data, message: str = "edit the dataset by hand") -> str:
        """`data` as the next version, published with plain `git` and `dvc` in a fresh clone, unchecked."""
        clone = self._clone()
        target = clone / self.settings.data_relpath
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
            target = target / "part-000001.csv"
        elif target.exists():
            target.unlink()  # a checked-out file may be a read-only link into DVC's cache
        _write_csv(data, target)
        self._dvc(clone, "add", "--quiet", self.settings.data_relpath)
        self._dvc(clone, "push", "--quiet", self.settings.pointer_path)
        _git(clone, "add", "--", self.settings.pointer_path)
        _git(clone, "commit", "--quiet", "-m", message)
        _git(clone, "push", "--quiet", "origin", f"HEAD:{self.settings.git_branch}")
        return _git(clone, "rev-parse", "HEAD")

    def read(self, rev: str | None = None, as_text: bool = False) -> pl.DataFrame:
        """The dataset of a version (the branch's head by default) as a step gets it, or every column
        as text (`as_text`: a bad version's values as they are)."""
        import polars as pl

        from shared_tasks.run.team_steps import scan_dataset
        from shared_tasks.validation.schema import DatasetRules
        from shared_tasks.validation.table_schema import load_table_schema

        clone = self._clone(rev)
        data = clone / self.settings.data_relpath
        files = sorted(data.glob("*.csv")) if data.is_dir() else [data]
        if as_text:
            return pl.read_csv([str(path) for path in files], infer_schema=False)
        rules = DatasetRules(load_table_schema(self.settings.declared().schema_path))
        return scan_dataset(files, rules).collect()

    def _clone(self, rev: str | None = None) -> Path:
        clone = self.workdir / f"clone-{secrets.token_hex(4)}"
        _git(self.workdir, "clone", "--quiet", self.settings.git_url, str(clone))
        _git(clone, "config", "user.name", "A. Person")
        _git(clone, "config", "user.email", "person@example.invalid")
        if rev is not None:
            _git(clone, "checkout", "--quiet", rev)
        if (clone / self.settings.pointer_path).exists():
            self._dvc(clone, "pull", "--quiet", self.settings.pointer_path)
        return clone

    def _dvc(self, clone: Path, *args: str) -> None:
        dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc") or "dvc"
        env = {**os.environ, "AWS_ENDPOINT_URL_S3": str(self.settings.s3_endpoint_url)}
        done = subprocess.run([dvc, *args], cwd=clone, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"dvc {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _write_csv(data: Data, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, (str, Path)):
        shutil.copyfile(data, path)
    elif hasattr(data, "write_csv"):  # polars
        data.write_csv(path)
    elif hasattr(data, "to_csv"):  # pandas
        data.to_csv(path, index=False)
    else:
        raise TypeError(f"a version's data is a polars or pandas DataFrame or a CSV's path, not {type(data).__name__}")


@pytest.fixture
def make_dataset_origin(
    pipeline: DeclaredPipeline,
    pytestconfig: pytest.Config,
    s3_server: S3Server,
    versioning_environment: dict[str, str],
    tmp_path: Path,
) -> Callable[..., DatasetOrigin]:
    """`make(data=None)`: a new origin whose first version is `data`, or the sample without it."""
    from dataset_pipeline.seed import create_dvc_origin
    from shared_tasks.project.settings import Settings
    from shared_tasks.run.adopt import adopt_csv

    def make(data: Data | None = None) -> DatasetOrigin:
        root = tmp_path / f"origin-{secrets.token_hex(4)}"
        settings = Settings(
            git_url=(root / "origin.git").as_uri(),
            work_root=root / "work",
            s3_endpoint_url=s3_server.endpoint,
            project_file=pipeline.project_file,
        ).for_pipeline(pipeline.name)
        remote_url = f"s3://{TEST_BUCKET}/{pipeline.name}-{root.name}"
        create_dvc_origin(settings, root / "origin.git", remote_url)
        first = root / "first-version.csv"
        if data is None:
            sample = Path(pytestconfig.rootpath) / str(pytestconfig.getini(SAMPLE_INI))
            if not sample.is_file():
                raise pytest.UsageError(f"no sample to seed the origin with: {sample} ({SAMPLE_INI} in pytest's ini)")
            data = sample
        _write_csv(data, first)
        adopt_csv(settings, first, "adopt-test-sample")
        return DatasetOrigin(settings, root / "origin.git", remote_url, root)

    return make


@pytest.fixture
def dataset_origin(make_dataset_origin: Callable[..., DatasetOrigin]) -> DatasetOrigin:
    return make_dataset_origin()


@pytest.fixture
def run_pipeline(dataset_origin: DatasetOrigin) -> Callable[..., PublishedVersion]:
    return dataset_origin.run


@pytest.fixture
def publish_foreign_version(dataset_origin: DatasetOrigin) -> Callable[..., str]:
    return dataset_origin.publish_foreign
