"""Create an origin: a bare Git repository whose first commit versions the seed dataset.

The committed .dvc/config names only the remote's S3 URL; how to reach the S3 API (the
endpoint, credentials) comes from each user's environment and is never committed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.generate import SEED_DATASET_ROWS, write_seed_dataset
from shared_tasks.run.migrate import split_into_parts
from shared_tasks.versioning.dvcops import Dvc
from shared_tasks.versioning.gitops import Git
from shared_tasks.versioning.versions import commit_message

SEED_RUN_ID = "seed"


def create_origin(
    settings: Settings,
    bare_repo: Path,
    remote_url: str,
    rows: int = SEED_DATASET_ROWS,
    seed: int = 0,
) -> str:
    """Make `bare_repo` and push the seed version to it and to the DVC remote; returns the commit."""

    def seed_version(work: Path, git: Git, dvc: Dvc) -> None:
        write_seed(settings, work, rows=rows, seed=seed)
        dvc.add()
        dvc.push()
        git.run("add", "--", settings.pointer_path, str(Path(settings.data_relpath).parent / ".gitignore"))

    return _new_origin(settings, bare_repo, remote_url, commit_message(SEED_RUN_ID, "seed", rows, rows), seed_version)


def create_dvc_origin(settings: Settings, bare_repo: Path, remote_url: str) -> str:
    """Make `bare_repo` with DVC set up and no dataset yet: a declared pipeline's first version is
    then adopted into it (`adopt`). Returns the commit."""
    return _new_origin(settings, bare_repo, remote_url, "Version datasets with DVC", None)


def _new_origin(
    settings: Settings,
    bare_repo: Path,
    remote_url: str,
    message: str,
    first_version: Callable[[Path, Git, Dvc], None] | None,
) -> str:
    from dvc.repo import Repo

    redactor = Redactor.from_environment(settings.secret_values())
    bare_repo.parent.mkdir(parents=True, exist_ok=True)
    Git(settings, bare_repo, redactor).run(
        "init",
        "--quiet",
        "--bare",
        f"--initial-branch={settings.git_branch}",
        str(bare_repo),
        cwd=bare_repo.parent,
    )
    settings.work_root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seed-", dir=settings.work_root.parent) as tmp:
        work = Path(tmp) / "repo"
        work.mkdir()
        git = Git(settings, work, redactor)
        git.run("init", "--quiet", f"--initial-branch={settings.git_branch}")
        with Repo.init(str(work)) as repo:
            repo.config  # noqa: B018 - materialise the config before editing it
            with repo.config.edit() as config:
                config["core"]["remote"] = settings.dvc_remote
                config["remote"][settings.dvc_remote] = {"url": remote_url}
        git.run("add", "--", ".dvc/config", ".dvc/.gitignore", ".dvcignore")
        if first_version is not None:
            first_version(work, git, Dvc(settings, work, redactor))
        git.run("commit", "--quiet", "--file", "-", input_text=message)
        git.run("remote", "add", "origin", "--", bare_repo.as_uri())
        git.run("push", "--quiet", "origin", f"HEAD:refs/heads/{settings.git_branch}")
        commit = git.rev("HEAD")
    return commit


def write_seed(settings: Settings, work: Path, rows: int, seed: int) -> None:
    """The seed dataset in the settings' layout."""
    if settings.layout is Layout.SINGLE_FILE:
        write_seed_dataset(work / settings.dataset_path, rows=rows, seed=seed)
        return
    single = work / f".seed-{Path(settings.dataset_path).name}"
    write_seed_dataset(single, rows=rows, seed=seed)
    split_into_parts(single, work / settings.data_relpath, settings.part_rows)
    single.unlink()
