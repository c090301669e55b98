"""Fixtures: a hermetic environment, a real S3 API on loopback, real bare Git origins.

Modelled on DVC's own test fixtures: the origin is seeded once per session (template) and
copied per test. The S3 API (moto's server on 127.0.0.1 with fake credentials, `s3_server`) and
the hermetic environment are the ones the product's pytest plugin gives a team's tests
(`dataset_pipeline.testing`, opted into in pyproject's addopts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlunsplit

import pytest

from dataset_pipeline.s3server import S3Server, s3_client
from dataset_pipeline.seed import create_origin
from dataset_pipeline.testing.origin import SCRUBBED_PREFIXES, TEST_BUCKET
from dataset_pipeline.testing.origin import hermetic_environment as plugin_environment
from shared_tasks.project.cutover import Cutover, write_cutover
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.versioning.backends import LocalBackends, using_backends
from shared_tasks.versioning.gitops import Git
from shared_tasks.versioning.local_dvc import LocalDvc

TEST_REMOTE_URL = f"s3://{TEST_BUCKET}/datasets"
TEST_SEED_ROWS = 1_000
CHROMIUM = "/usr/bin/chromium"
PART_ROWS = 400  # a partitioned origin holds the seed as three parts
REPO_ROOT = Path(__file__).resolve().parents[1]


def fake_secret(kind: str = "tok") -> str:
    """A throwaway credential made when the tests run: no credential-shaped value is kept in the tree."""
    return f"{kind}_{secrets.token_hex(16)}"


def url_with_userinfo(user: str, password: str, host: str, path: str = "/") -> str:
    """An https URL carrying credentials, the shape the product must refuse and redact."""
    return urlunsplit(("https", f"{user}:{password}@{host}", path, "", ""))


# A person's shell credentials, set where a stack is started: no stack process may inherit them.
CALLER_CREDENTIALS = {"GITHUB_TOKEN": "caller-token-4f1c", "PIPELINE_GIT_PASSWORD": "caller-password-9a2e"}


def environ_of(pid: int) -> str:
    """A process's environment as /proc shows it (what it was started with); empty once it is gone."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def runs(pid: int) -> bool:
    """Whether a process runs. A zombie does not: it has exited, and an orphan waits for the machine's
    init to reap it, which in a container may never happen."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


# Every DAG a test builds, in this process or another, reads this cutover file (every step in
# Airflow), never the repository's own, which a person porting a step may have changed.
SESSION_CUTOVER = Path(tempfile.mkdtemp(prefix="pipeline-tests-")) / "cutover.yaml"
write_cutover(SESSION_CUTOVER, Cutover({}))
os.environ["PIPELINE_CUTOVER_FILE"] = str(SESSION_CUTOVER)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(SESSION_CUTOVER.parent, ignore_errors=True)


def hermetic_environment(home: Path) -> dict[str, str]:
    """The variables every test (and every process it starts) runs with: the plugin's, and the
    session's cutover file."""
    return {**plugin_environment(home), "PIPELINE_CUTOVER_FILE": str(SESSION_CUTOVER)}


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def isolate(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own git, DVC and AWS configuration never reaches a test."""
    for key in list(os.environ):
        if key.startswith(SCRUBBED_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in hermetic_environment(session_home).items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    """A boto3 client of the loopback S3 API."""
    return s3_client(s3_server.endpoint)


def make_settings(git_url: str, work_root: Path, endpoint: str, **extra: Any) -> Settings:
    return Settings(git_url=git_url, work_root=work_root, s3_endpoint_url=endpoint, **extra)


def seed_origin_template(root: Path, endpoint: str, session_home: Path, **extra: Any) -> Path:
    """A seeded bare origin made once per session, in the hermetic environment; tests copy it."""
    previous = dict(os.environ)
    os.environ.update(hermetic_environment(session_home))
    try:
        settings = make_settings("file:///unused", root / "work", endpoint, **extra)
        create_origin(settings, root / "origin.git", TEST_REMOTE_URL, rows=TEST_SEED_ROWS)
    finally:
        os.environ.clear()
        os.environ.update(previous)
    return root / "origin.git"


@pytest.fixture(scope="session")
def origin_template(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, session_home: Path) -> Path:
    return seed_origin_template(tmp_path_factory.mktemp("template"), s3_server.endpoint, session_home)


@pytest.fixture(scope="session")
def partitioned_template(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, session_home: Path) -> Path:
    root = tmp_path_factory.mktemp("partitioned-template")
    return seed_origin_template(root, s3_server.endpoint, session_home, layout=Layout.PARTITIONED, part_rows=PART_ROWS)


@pytest.fixture
def partitioned(tmp_path: Path, partitioned_template: Path, s3_server: S3Server) -> Settings:
    """Settings of a test's own origin holding the seed as part files."""
    origin = tmp_path / "partitioned.git"
    shutil.copytree(partitioned_template, origin)
    return make_settings(origin.as_uri(), tmp_path / "work", s3_server.endpoint, layout=Layout.PARTITIONED)


@pytest.fixture
def origin(tmp_path: Path, origin_template: Path) -> Path:
    """A bare origin of this test's own, holding the seed version."""
    target = tmp_path / "origin.git"
    shutil.copytree(origin_template, target)
    return target


@pytest.fixture
def settings(origin: Path, tmp_path: Path, s3_server: S3Server) -> Settings:
    return make_settings(origin.as_uri(), tmp_path / "work", s3_server.endpoint)


@pytest.fixture
def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a separate process needs to run the steps on this test's origin."""
    env = dict(os.environ)
    env.update(
        PIPELINE_GIT_URL=settings.git_url,
        PIPELINE_WORK_ROOT=str(settings.work_root),
        AWS_ENDPOINT_URL_S3=str(settings.s3_endpoint_url),
    )
    return env


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


# --- Local versioning: real bare Git origins, DVC's remote a local folder (no S3 API, no DVC) ------

# What `dvc init` writes, and the remote the seed names (.dvc/config), byte for byte.
DVC_INIT_FILES = {
    ".dvc/.gitignore": "/config.local\n/tmp\n/cache\n",
    ".dvcignore": (
        "# Add patterns of files dvc should ignore, which could improve\n"
        "# the performance. Learn more at\n"
        "# https://dvc.org/doc/user-guide/dvcignore\n"
    ),
    ".dvc/config": f"[core]\n    remote = storage\n['remote \"storage\"']\n    url = {TEST_REMOTE_URL}\n",
}


@dataclasses.dataclass(frozen=True)
class LocalVersioning:
    """A test's own origin and DVC remote folder, with the local backends in use for the test."""

    settings: Settings
    origin: Path
    remote_root: Path

    def remote_object(self, oid: str, remote_url: str = TEST_REMOTE_URL) -> Path:
        """Where the remote keeps an object (DVC 3's layout below the bucket's folder)."""
        bucket_and_prefix = remote_url.removeprefix("s3://")
        return self.remote_root / bucket_and_prefix / "files" / "md5" / oid[:2] / oid[2:]

    def remote_objects(self) -> dict[str, bytes]:
        return {str(path.relative_to(self.remote_root)): path.read_bytes() for path in _files(self.remote_root)}


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def seed_local_origin(root: Path, session_home: Path, **extra: Any) -> Path:
    """A bare origin holding the seed version, its data in a remote folder: `create_origin` with the
    local backends (git, and DVC's files as `dvc init` and `dvc add` write them)."""
    from dataset_pipeline.seed import SEED_RUN_ID, write_seed
    from shared_tasks.versioning.versions import commit_message

    previous = dict(os.environ)
    os.environ.update(hermetic_environment(session_home))
    try:
        settings = Settings(git_url="file:///unused", work_root=root / "work", **extra)
        origin, work = root / "origin.git", root / "seed"
        work.mkdir(parents=True)
        seed_git = Git(settings, work, Redactor())
        seed_git.run("init", "--quiet", "--bare", "--initial-branch=main", str(origin))
        seed_git.run("init", "--quiet", "--initial-branch=main")
        for name, text in DVC_INIT_FILES.items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text, encoding="utf-8")
        write_seed(settings, work, rows=TEST_SEED_ROWS, seed=0)
        LocalDvc(settings, work, Redactor(), root / "remote").add_and_push()
        gitignore = str(Path(settings.data_relpath).parent / ".gitignore")
        seed_git.run("add", "--", *DVC_INIT_FILES, settings.pointer_path, gitignore)
        message = commit_message(SEED_RUN_ID, "seed", TEST_SEED_ROWS, TEST_SEED_ROWS)
        seed_git.run("commit", "--quiet", "--file", "-", input_text=message)
        seed_git.run("push", "--quiet", origin.as_uri(), "HEAD:refs/heads/main")
    finally:
        os.environ.clear()
        os.environ.update(previous)
    return root


@pytest.fixture(scope="session")
def local_origin_template(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Path:
    return seed_local_origin(tmp_path_factory.mktemp("local-template"), session_home)


@pytest.fixture(scope="session")
def local_partitioned_template(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> Path:
    root = tmp_path_factory.mktemp("local-partitioned-template")
    return seed_local_origin(root, session_home, layout=Layout.PARTITIONED, part_rows=PART_ROWS)


def local_versioning_from(template: Path, tmp_path: Path, **extra: Any) -> Iterator[LocalVersioning]:
    origin, remote_root = tmp_path / "origin.git", tmp_path / "remote"
    shutil.copytree(template / "origin.git", origin)
    shutil.copytree(template / "remote", remote_root)
    settings = Settings(git_url=origin.as_uri(), work_root=tmp_path / "work", **extra)
    with using_backends(LocalBackends(remote_root)):
        yield LocalVersioning(settings, origin, remote_root)


@pytest.fixture
def local_versioning(tmp_path: Path, local_origin_template: Path) -> Iterator[LocalVersioning]:
    """A test's own origin (the seed, one CSV file) and remote folder; runs in the test use them."""
    yield from local_versioning_from(local_origin_template, tmp_path)


@pytest.fixture
def local_partitioned(tmp_path: Path, local_partitioned_template: Path) -> Iterator[LocalVersioning]:
    """As `local_versioning`, the seed held as part files."""
    yield from local_versioning_from(local_partitioned_template, tmp_path, layout=Layout.PARTITIONED)


def local_foreign_commit(
    versioning: LocalVersioning, workdir: Path, edit: Callable[[Path], None], message: str = "edit the dataset by hand"
) -> str:
    """`foreign_commit` on a local origin: a fresh clone, its data pulled, edited, added and pushed
    as a person would (here with the local DVC), then the commit pushed. Returns the commit."""
    settings = versioning.settings
    clone = workdir / f"foreign-{secrets.token_hex(4)}"
    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True, capture_output=True)
    dvc = LocalDvc(settings, clone, Redactor(), versioning.remote_root, cache_dir=workdir / "foreign-cache")
    dvc.pull()
    edit(dvc.data_path)
    dvc.add_and_push()
    git(clone, "-c", "user.name=A. Person", "-c", "user.email=person@example.invalid", "commit", "-q", "-am", message)
    git(clone, "push", "--quiet", "origin", f"HEAD:{settings.git_branch}")
    return git(clone, "rev-parse", "HEAD")


def origin_head(origin: Path) -> str:
    return git(origin, "rev-parse", "refs/heads/main")


def bucket_listing(s3: Any) -> dict[str, str]:
    listing: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=TEST_BUCKET):
        for item in page.get("Contents", []):
            listing[item["Key"]] = item["ETag"]
    return listing


def cli(
    *args: str, env: dict[str, str], timeout: float = 300, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dataset_pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def foreign_commit(
    settings: Settings, workdir: Path, edit: Callable[[Path], None], message: str = "edit the dataset by hand"
) -> str:
    """Publish a version the way a person would, with plain `git` and `dvc` in a fresh clone.

    `edit(data)` changes the checked-out dataset (a file, or a directory of parts); nothing of this
    project's code takes part. Returns the commit, pushed to the origin's branch.
    """
    (commit,) = foreign_commits(settings, workdir, [edit], message)
    return commit


def foreign_commits(
    settings: Settings,
    workdir: Path,
    edits: Sequence[Callable[[Path], None]],
    message: str = "edit the dataset by hand",
    before_push: Callable[[], None] | None = None,
) -> list[str]:
    """Several versions made by hand as `foreign_commit` makes one, a commit each, pushed at once (a burst).

    `before_push` runs after the data is on the remote and before the branch names it.
    """
    clone = workdir / f"foreign-{secrets.token_hex(4)}"
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": str(settings.s3_endpoint_url)}
    dvc = str(Path(sys.executable).with_name("dvc"))

    def run(*args: str) -> str:
        completed = subprocess.run(args, cwd=clone, env=env, capture_output=True, text=True, check=False)
        assert completed.returncode == 0, f"{' '.join(args)}: {completed.stderr[-2000:]}"
        return completed.stdout.strip()

    subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True, env=env)
    run("git", "config", "user.name", "A. Person")
    run("git", "config", "user.email", "person@example.invalid")
    run(dvc, "pull", "--quiet", settings.pointer_path)
    data = clone / settings.data_relpath
    commits = []
    for number, edit in enumerate(edits, 1):
        edit(data)
        run(dvc, "add", "--quiet", settings.data_relpath)
        run(dvc, "push", "--quiet", settings.pointer_path)
        run("git", "add", settings.pointer_path)
        run("git", "commit", "--quiet", "-m", message if len(edits) == 1 else f"{message} ({number})")
        commits.append(run("git", "rev-parse", "HEAD"))
    if before_push is not None:
        before_push()
    run("git", "push", "--quiet", "origin", f"HEAD:{settings.git_branch}")
    return commits


def data_edit(change: Callable[[str], str]) -> Callable[[Path], None]:
    """An edit of a single-file dataset's text, for `foreign_commit`; the checked-out file may be a
    read-only link into DVC's cache, so it is replaced, never written in place."""

    def edit(data: Path) -> None:
        text = change(data.read_text(encoding="utf-8"))
        data.unlink()
        data.write_text(text, encoding="utf-8")

    return edit


def appended_record(employee_id: int) -> Callable[[Path], None]:
    """A hand edit: the last record again, under a new id (Employee ID is the first column)."""

    def append(text: str) -> str:
        last = text.splitlines()[-1].split(",")
        return text + ",".join([str(employee_id), *last[1:]]) + "\n"

    return data_edit(append)


@contextlib.contextmanager
def headless_page(width: int, height: int) -> Iterator[Any]:
    """A page in Debian's Chromium, headless, driven by Playwright (which downloads no browser here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
