"""The composition root of one run: its workspace, its Git and DVC clients and its dataset on disk.

Every step builds one `RunContext` from the settings and the run id; nothing else constructs the
Git, DVC or catalog objects for a run. Its Git and DVC clients come from the backends in use
(`versioning.backends`: the real ones unless a test chose local ones), or from those it is given.
"""

from __future__ import annotations

import shutil

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Settings
from shared_tasks.run.workspace import Workspace, WorkspaceError
from shared_tasks.storage.catalog import FileCatalog
from shared_tasks.storage.layout import DatasetLayout, for_layout
from shared_tasks.storage.pointer import Pointer, PointerError
from shared_tasks.validation.schema import DataValidationError, Problem, rules_of
from shared_tasks.versioning.backends import Backends, backends_in_use
from shared_tasks.versioning.tracked_pointer import PointerProblem, PointerReader, TrackedPointer, checked_out_problem
from shared_tasks.versioning.versions import VersionRecord, described, find_run_version, newest_version


class RunContext:
    def __init__(
        self, settings: Settings, run_id: str, backends: Backends | None = None, workspace: Workspace | None = None
    ) -> None:
        """`workspace`: another than the run's own (a shadow's, which runs the run's step again beside it)."""
        self.settings = settings
        self.run_id = run_id
        self.workspace = workspace or Workspace.for_run(settings.work_root, run_id)
        self.redact = Redactor.from_environment(settings.secret_values())
        self.rules = rules_of(settings)
        backends = backends or backends_in_use()
        self.git = backends.git(settings, self.workspace.repo, self.redact)
        self.dvc = backends.dvc(settings, self.workspace.repo, self.redact)
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
        return for_layout(self.settings.layout, self.dvc.data_path, self.catalog, self.pointer_md5(), self.rules)

    def published(self, ref: str) -> VersionRecord | None:
        return find_run_version(self.git, ref, self.settings, self.run_id)

    def checked_pointer(self) -> TrackedPointer:
        """The checked-out pointer as Git holds it, and exactly that on disk, before DVC reads it.

        A head whose pointer is gone, a link, a directory, a submodule, not a pointer, hidden by a
        `.dvcignore` or rewritten by a `.gitattributes` is refused naming the commit and the problem.
        """
        try:
            tracked = PointerReader(self.git, self.settings).at(None)
        except PointerProblem as error:
            raise self._bad_head(str(error)) from None
        if tracked.layout is not self.settings.layout:
            self.check_layout()  # says which layout the repository uses
        problem = checked_out_problem(self.git, self.workspace.repo, tracked)
        if problem is not None:
            raise self._bad_head(problem)
        return tracked

    def _bad_head(self, problem: str) -> DataValidationError:
        source = described(self.git.rev("HEAD"), newest_version(self.git, "HEAD", self.settings))
        return DataValidationError(source, [Problem(f"{problem} (publish a good version again with `restore REV`)")])

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
