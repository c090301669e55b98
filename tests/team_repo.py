"""The `team` fixture (a plugin): a team's project and its seeded origin, run with the local backends.

The project is written into a folder outside the product's source (tests/team_project.py), with a
package of its own per test, in each layout; its origin is a real bare Git repository and DVC's
remote a folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shared_tasks.project.settings import Layout, Settings
from shared_tasks.storage.layout import read_dataset
from shared_tasks.versioning.backends import LocalBackends, using_backends
from tests.conftest import DVC_INIT_FILES, git
from tests.team_project import seed_origin, write_project


class TeamRepo:
    def __init__(self, settings: Settings, origin: Path, remote_root: Path, project_dir: Path, package: str) -> None:
        self.settings, self.origin, self.remote_root = settings, origin, remote_root
        self.project_dir, self.package = project_dir, package

    def calls(self) -> list[str]:
        module = sys.modules.get(f"{self.package}.steps")
        return list(module.CALLS) if module is not None else []

    def head_data(self, tmp: Path) -> pd.DataFrame:
        tmp.mkdir(parents=True, exist_ok=True)
        clone = tmp / f"read-{len(list(tmp.iterdir()))}"
        git(tmp, "clone", "--quiet", self.origin.as_uri(), str(clone))
        from shared_tasks.project.redact import Redactor
        from shared_tasks.versioning.local_dvc import LocalDvc

        LocalDvc(self.settings, clone, Redactor(), self.remote_root, cache_dir=tmp / "cache").pull()
        return read_dataset(clone / self.settings.data_relpath)


_packages = iter(range(10_000))


@pytest.fixture(params=[Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def team(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TeamRepo]:
    layout: Layout = request.param
    package = f"readings_team_{next(_packages)}_{layout.name.lower()}"  # a module of its own per test
    project_file = write_project(tmp_path / "team-project", layout, package)
    remote_root = tmp_path / "remote"
    base = Settings(git_url="file:///unused", work_root=tmp_path / "work", project_file=project_file)
    settings = base.for_pipeline(None)
    origin = seed_origin(tmp_path / "team-origin", settings, remote_root, DVC_INIT_FILES)
    settings = settings.model_copy(update={"git_url": origin.as_uri()})
    with using_backends(LocalBackends(remote_root)):
        yield TeamRepo(settings, origin, remote_root, project_file.parent, package)
    sys.modules.pop(f"{package}.steps", None)
