"""A commit's dataset pointer as Git holds it, read as untrusted input.

Anyone who can push to the data repository can leave at the pointer's path nothing, a symlink, a
directory, a submodule or hostile YAML, or commit rules (`.dvcignore`, `.gitattributes`) that
change what DVC or a checkout makes of it. History, verify, restore and a run's pull read the
pointer from Git's objects through this module, so each such commit is one bad version, its
problem said in a sentence, and never stops anyone reading the versions around it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared_tasks.project.settings import Layout, Settings
from shared_tasks.storage.parts import part_name
from shared_tasks.storage.pointer import MAX_POINTER_BYTES, Pointer, PointerError
from shared_tasks.versioning.interfaces import GitClient

REGULAR_FILE_MODES = ("100644", "100755")
MODE_NAMES = {"120000": "a symlink", "040000": "a directory", "160000": "a submodule"}
DVCIGNORE = ".dvcignore"
GITATTRIBUTES = ".gitattributes"
DVC_CONFIG_PATHS = (".dvc/config", ".dvc/config.local")
MAX_DVCIGNORE_BYTES = 64 * 1024
# Attributes that make Git write other bytes on checkout than the commit holds (and convert back on commit).
REWRITING_ATTRIBUTES = ("working-tree-encoding", "filter", "ident", "eol")


# How a commit that holds no pointer of the dataset at all is described.
NO_POINTER = "holds no dataset pointer"


class PointerProblem(ValueError):
    """Why a commit (or the checkout of one) holds no readable dataset pointer; the caller names the commit."""


@dataclass(frozen=True)
class Entry:
    mode: str
    oid: str


@dataclass(frozen=True)
class TrackedPointer:
    """The dataset pointer a commit holds: where, in which layout, its text and what it says."""

    path: str
    layout: Layout
    text: str
    pointer: Pointer


def pointer_candidates(settings: Settings) -> dict[Layout, str]:
    """Where each layout keeps the pointer: this layout's first (a version may predate a migration)."""
    layouts = [settings.layout, *(layout for layout in Layout if layout is not settings.layout)]
    return {layout: f"{settings.data_relpath_for(layout)}.dvc" for layout in layouts}


def _ancestors(path: str) -> list[str]:
    return [str(parent) for parent in reversed(PurePosixPath(path).parents) if str(parent) != "."]


def governing_paths(settings: Settings) -> list[str]:
    """Every path whose tracked content decides how the dataset's pointer and data are read."""
    data_paths = [settings.data_relpath_for(layout) for layout in Layout]
    directories = dict.fromkeys(["", *(d for path in data_paths for d in _ancestors(path))])
    directories.update(dict.fromkeys([settings.data_relpath_for(Layout.PARTITIONED)]))
    paths = dict.fromkeys(f"{path}.dvc" for path in data_paths)
    for directory in directories:
        for name in (DVCIGNORE, GITATTRIBUTES):
            paths[f"{directory}/{name}" if directory else name] = None
    return list(paths)


def version_paths(settings: Settings) -> list[str]:
    """The paths a version is made of: a commit that changes any of them changes what the dataset's
    pointer says or how it is read (its rules, DVC's configuration, data Git must not track)."""
    data_paths = [settings.data_relpath_for(layout) for layout in Layout]
    return [*governing_paths(settings), *DVC_CONFIG_PATHS, *data_paths]


class _Tree:
    """Entries and blobs of one commit's tree, or of the index (`commit=None`, what a checkout holds)."""

    def __init__(self, git: GitClient, commit: str | None, blobs: dict[str, str]) -> None:
        self.git = git
        self.commit = commit
        self._blobs = blobs  # by object id: the same content in any commit

    def entries(self, paths: Sequence[str]) -> dict[str, Entry]:
        found: dict[str, Entry] = {}
        if self.commit is not None:  # directories listed as themselves, a path below a non-directory not at all
            out = self.git.run("ls-tree", "-r", "-t", "-z", self.commit, "--", *paths).stdout
            for record in filter(None, out.split("\0")):
                meta, _, path = record.partition("\t")
                mode, _, oid = meta.split(" ", 2)
                found[path] = Entry(mode, oid)
            return found
        out = self.git.run("ls-files", "-z", "--stage", "--", *paths).stdout
        for record in filter(None, out.split("\0")):
            meta, _, path = record.partition("\t")
            mode, oid, _ = meta.split(" ", 2)
            found[path] = Entry(mode, oid)
        for path in paths:  # the index lists a directory's files only: name the directory itself
            if path not in found and any(other.startswith(f"{path}/") for other in found):
                found[path] = Entry("040000", "")
        return found

    def blob(self, oid: str, limit: int, what: str) -> str:
        if oid not in self._blobs:
            size = int(self.git.output("cat-file", "-s", oid))
            if size > limit:
                raise PointerProblem(f"{what} is {size} bytes, more than the {limit} it may be")
            self._blobs[oid] = self.git.run("cat-file", "blob", oid).stdout
        return self._blobs[oid]


class PointerReader:
    """Reads the dataset's pointer from commits (history) or from the index (a checkout); blobs read once."""

    def __init__(self, git: GitClient, settings: Settings) -> None:
        self.git = git
        self.settings = settings
        self.candidates = pointer_candidates(settings)
        self.data_paths = [settings.data_relpath_for(layout) for layout in Layout]
        ancestors = {ancestor: None for path in self.candidates.values() for ancestor in _ancestors(path)}
        self.paths = [*ancestors, *governing_paths(settings), *self.data_paths]  # a link on the way shows as itself
        self._blobs: dict[str, str] = {}

    def at(self, commit: str | None) -> TrackedPointer:
        """The pointer `commit` holds (None: the index); PointerProblem says why there is none to read."""
        tree = _Tree(self.git, commit, self._blobs)
        entries = tree.entries(self.paths)
        for data in self.data_paths:
            if data in entries:
                raise PointerProblem(f"{data} is tracked in Git itself (as {_kind(entries[data])}): DVC tracks it")
        for layout, path in self.candidates.items():
            if path in entries:
                return self._read(tree, entries, layout, path)
        raise PointerProblem(self._missing(entries))

    def _missing(self, entries: dict[str, Entry]) -> str:
        for path in self.candidates.values():
            for ancestor in _ancestors(path):
                entry = entries.get(ancestor)
                if entry is not None and entry.mode != "040000":
                    return f"{ancestor} is {_kind(entry)}, not the directory of {path}"
        return f"{NO_POINTER}: {' or '.join(self.candidates.values())} is deleted or renamed"

    def _read(self, tree: _Tree, entries: dict[str, Entry], layout: Layout, path: str) -> TrackedPointer:
        for ancestor in _ancestors(path):
            entry = entries.get(ancestor)
            if entry is not None and entry.mode != "040000":
                raise PointerProblem(f"{ancestor} is {_kind(entry)}, not a directory")
        entry = entries[path]
        if entry.mode not in REGULAR_FILE_MODES:
            raise PointerProblem(f"{path} is {_kind(entry)}, not a file")
        text = tree.blob(entry.oid, MAX_POINTER_BYTES, path)
        try:
            pointer = Pointer.parse(text)
        except PointerError as error:
            raise PointerProblem(f"{path} {error}") from None
        self._check_dvcignore(tree, entries, layout, path)
        self._check_gitattributes(tree, entries, path)
        return TrackedPointer(path=path, layout=layout, text=text, pointer=pointer)

    def _check_gitattributes(self, tree: _Tree, entries: dict[str, Entry], path: str) -> None:
        """No `.gitattributes` rule may have Git rewrite the pointer on checkout and commit (read from
        the commit here, by the rule's pattern; a checkout asks Git itself, `checked_out_problem`)."""
        for rules_path, entry in entries.items():
            if PurePosixPath(rules_path).name != GITATTRIBUTES or entry.mode not in REGULAR_FILE_MODES:
                continue
            base = PurePosixPath(rules_path).parent
            relative = str(PurePosixPath(path).relative_to(base)) if str(base) != "." else path
            for line in tree.blob(entry.oid, MAX_DVCIGNORE_BYTES, rules_path).splitlines():
                pattern, *attributes = line.split() or ["#"]
                if pattern.startswith("#") or not _attribute_pattern_matches(pattern, relative):
                    continue
                rewriting = [a for a in attributes if a.split("=")[0] in REWRITING_ATTRIBUTES and a != "eol=lf"]
                if rewriting:
                    raise PointerProblem(f"{rules_path} sets {', '.join(rewriting)} on {path}: Git would rewrite it")

    def _check_dvcignore(self, tree: _Tree, entries: dict[str, Entry], layout: Layout, path: str) -> None:
        """No `.dvcignore` rule may hide the pointer or the data from DVC: `dvc add` would leave out
        what it hides, and the next version would lose it."""
        rules: dict[str, list[str]] = {}
        for ignore_path, entry in entries.items():
            if PurePosixPath(ignore_path).name != DVCIGNORE:
                continue
            if entry.mode not in REGULAR_FILE_MODES:
                raise PointerProblem(f"{ignore_path} is {_kind(entry)}, not a file")
            text = tree.blob(entry.oid, MAX_DVCIGNORE_BYTES, ignore_path)
            lines = [line.strip() for line in text.splitlines()]
            kept = [line for line in lines if line and not line.startswith("#")]
            if kept:
                rules[str(PurePosixPath(ignore_path).parent)] = kept
        if rules:
            hidden = _ignored(rules, _dataset_paths(self.settings, layout, path))
            if hidden is not None:
                raise PointerProblem(f"{hidden[1]} hides {hidden[0]} from DVC")


def _attribute_pattern_matches(pattern: str, relative: str) -> bool:
    """Whether a `.gitattributes` pattern names the path: by its name when the pattern has no slash."""
    if "/" not in pattern.strip("/"):
        return fnmatch.fnmatchcase(PurePosixPath(relative).name, pattern.strip("/"))
    return fnmatch.fnmatchcase(relative, pattern.lstrip("/"))


def _kind(entry: Entry) -> str:
    return MODE_NAMES.get(
        entry.mode, "a file" if entry.mode in REGULAR_FILE_MODES else f"an entry of mode {entry.mode}"
    )


def _dataset_paths(settings: Settings, layout: Layout, pointer_path: str) -> list[tuple[str, bool]]:
    """(path, is a directory) of what DVC reads for the dataset; a directory's files by its parts' names."""
    data = settings.data_relpath_for(layout)
    paths = [(ancestor, True) for ancestor in _ancestors(data)]
    paths += [(pointer_path, False), (data, layout is Layout.PARTITIONED)]
    if layout is Layout.PARTITIONED:
        paths += [(f"{data}/{part_name(number)}", False) for number in (0, 1, 999_999)]
    return paths


def _ignored(rules: dict[str, list[str]], paths: Iterable[tuple[str, bool]]) -> tuple[str, str] | None:
    """The first path a rule hides, with the rule (as `.dvcignore:LINE:rule`), by DVC's own matcher."""
    from dvc.ignore import DvcIgnorePatterns  # DVC's matcher only where a repository has rules

    root = "/repository"
    for path, is_dir in paths:
        parent = str(PurePosixPath(root, path).parent)
        for directory, lines in rules.items():
            base = str(PurePosixPath(root, directory)) if directory != "." else root
            if not (parent == base or parent.startswith(f"{base}/")):
                continue
            matcher = DvcIgnorePatterns(lines, base, "/")
            hidden, matched = matcher.matches(parent, PurePosixPath(path).name, is_dir, details=True)
            if hidden:
                where = f"{directory}/{DVCIGNORE}" if directory != "." else DVCIGNORE
                rule = matched[0].patterns if matched else "a rule"
                return path, f"{where} (rule {rule!r})"
    return None


def checked_out_problem(git: GitClient, root: Path, tracked: TrackedPointer) -> str | None:
    """What makes the checkout's pointer other than the file the commit holds: a `.gitattributes`
    that has Git rewrite it on checkout and on commit (an encoding, a filter, `$Id$` expansion,
    CRLF line ends), or other bytes, or anything but a regular file, at its path."""
    out = git.run("check-attr", "-z", *REWRITING_ATTRIBUTES, "--", tracked.path).stdout.split("\0")
    found = {name: value for name, value in zip(out[1::3], out[2::3], strict=False)}
    rewriting = [
        f"{name}={value}"
        for name, value in found.items()
        if value not in ("unspecified", "unset") and (name != "eol" or value == "crlf")
    ]
    if rewriting:
        return f"{GITATTRIBUTES} sets {', '.join(rewriting)} on {tracked.path}: Git would rewrite the pointer"
    file = root / tracked.path
    try:
        on_disk = file.read_bytes().decode("utf-8") if not file.is_symlink() and file.is_file() else None
    except (OSError, UnicodeDecodeError):
        on_disk = None
    if on_disk != tracked.text:
        return f"the checked-out {tracked.path} is not the file the commit holds"
    return None
