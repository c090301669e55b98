"""The composition root of one run: its workspace, its Git and DVC clients and its dataset on disk.

Every step builds one `RunContext` from the settings and the run id; nothing else constructs the
real Git, DVC or catalog objects for a run.
"""

from __future__ import annotations

import shutil

from shared_tasks.catalog import FileCatalog
from shared_tasks.dvcops import Dvc
from shared_tasks.gitops import Git
from shared_tasks.layout import DatasetLayout, for_layout
from shared_tasks.pointer import Pointer, PointerError
from shared_tasks.redact import Redactor
from shared_tasks.settings import Settings
from shared_tasks.versions import VersionRecord, find_run_version
from shared_tasks.workspace import Workspace, WorkspaceError


class RunContext:
    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.workspace = Workspace.for_run(settings.work_root, run_id)
        self.redact = Redactor.from_environment(settings.secret_values())
        self.git = Git(settings, self.workspace.repo, self.redact)
        self.dvc = Dvc(settings, self.workspace.repo, self.redact)
        self.catalog = FileCatalog(settings.work_root / "file-facts", settings.cache_dir)

    def clone_at_origin_head(self) -> None:
        """The workspace's clone at the origin's branch head: made, or fetched and reset."""
        repo = self.workspace.repo
        if (repo / ".git").is_dir():
            self.git.fetch()
        else:
            shutil.rmtree(repo, ignore_errors=True)  # a clone interrupted half-way
            self.git.clone(repo)
            self.git.fetch()
        self.git.reset_hard(self.git.origin_ref)

    def pointer_md5(self) -> str | None:
        """What the workspace's pointer records (the pulled version until `dvc add` rewrites it)."""
        try:
            return Pointer.read(self.dvc.pointer_file).md5
        except (OSError, PointerError):
            return None

    def dataset(self) -> DatasetLayout:
        return for_layout(self.settings.layout, self.dvc.data_path, self.catalog, self.pointer_md5())

    def published(self, ref: str) -> VersionRecord | None:
        return find_run_version(self.git, ref, self.settings.pointer_paths, self.run_id)

    def check_layout(self) -> None:
        """The repository must hold the dataset in the layout the settings name."""
        if self.dvc.pointer_file.exists():
            return
        for other in self.settings.pointer_paths[1:]:
            if (self.workspace.repo / other).exists():
                raise WorkspaceError(
                    f"the repository holds the dataset as {other}, not {self.settings.pointer_path}: "
                    f"PIPELINE_LAYOUT={self.settings.layout.value} does not match it "
                    "(migrate with `dataset-pipeline migrate`, or set the layout the repository uses)"
                )
        raise WorkspaceError(f"the repository has no {self.settings.pointer_path}: is PIPELINE_DATASET_PATH right?")
