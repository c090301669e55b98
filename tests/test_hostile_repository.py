"""The data repository is untrusted input: a foreign commit cannot make a run write outside its
workspace, send data elsewhere, or publish a version whose data the configured remote lacks.

Each class of attack is a generator (manifest entries, pointer fields, DVC configuration options,
symlinks), committed the way a writer with push access would: plain git in a clone of their own,
objects uploaded straight to the bucket. Every case is refused at pull naming the commit and the
offending entry, with nothing created outside the workspace and nothing sent to the loopback
listener the options point at; `test_without_the_guard...` show the attacks work when unguarded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from configobj import ConfigObj  # type: ignore[import-untyped]  # DVC's own config parser

from dataset_pipeline.s3server import S3Server
from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.run.steps import pull_data
from shared_tasks.run.workspace import Workspace
from shared_tasks.storage.pointer import Pointer, s3_object_url
from shared_tasks.validation.schema import Problem
from shared_tasks.versioning.dvcops import Dvc, DvcError
from shared_tasks.versioning.repo_guard import MAX_ENTRY_NAME_LENGTH, MAX_MANIFEST_ENTRIES, POINTER_OUT_FIELDS
from tests.conftest import TEST_BUCKET, TEST_REMOTE_URL, git, make_settings

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow

RUN = "hostile"


class Listener:
    """An HTTP listener on loopback that counts connections and refuses every request: where a
    foreign option would send data."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            with connection:  # a refusal no client retries: the attempt is counted, and fails fast
                connection.settimeout(2)
                try:
                    connection.recv(65536)
                    connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.socket.close()


class Attacker:
    """A writer with push access: commits anything on top of the last good version, with plain git."""

    def __init__(self, settings: Settings, clone: Path, s3: Any) -> None:
        self.settings, self.clone, self.s3 = settings, clone, s3
        if not clone.exists():
            subprocess.run(["git", "clone", "--quiet", settings.git_url, str(clone)], check=True)
            git(clone, "config", "user.name", "A. Person")
            git(clone, "config", "user.email", "person@example.invalid")
        git(clone, "fetch", "--quiet", "origin")
        self.good = git(clone, "rev-list", "--max-parents=0", "origin/main")  # the seed version

    def commit(self, files: dict[str, str] | None = None, links: dict[str, str] | None = None) -> str:
        """Force the branch to the good version plus these files (text) and symlinks; returns the commit."""
        git(self.clone, "reset", "--quiet", "--hard", self.good)
        for name, text in (files or {}).items():
            (self.clone / name).parent.mkdir(parents=True, exist_ok=True)
            (self.clone / name).write_text(text, encoding="utf-8")
        for name, target in (links or {}).items():
            (self.clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(self.clone / name, ignore_errors=True)
            (self.clone / name).unlink(missing_ok=True)
            (self.clone / name).symlink_to(target)
        git(self.clone, "add", "--all", "--force")
        git(self.clone, "commit", "--quiet", "--allow-empty", "-m", "a foreign commit")
        git(self.clone, "push", "--quiet", "--force", "origin", "HEAD:main")
        return git(self.clone, "rev-parse", "HEAD")

    def pointer(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(git(self.clone, "show", f"{self.good}:{self.settings.pointer_path}"))
        return data

    def upload(self, content: bytes, suffix: str = "") -> str:
        """An object on the configured remote under its content's md5 (DVC's own address for it)."""
        md5 = hashlib.md5(content).hexdigest() + suffix
        key = s3_object_url(TEST_REMOTE_URL, md5).split(f"{TEST_BUCKET}/", 1)[1]
        self.s3.put_object(Bucket=TEST_BUCKET, Key=key, Body=content)
        return md5

    def manifest_commit(self, entries: list[dict[str, Any]]) -> str:
        """A pointer naming a `.dir` manifest of these entries, uploaded as DVC would."""
        raw = json.dumps(entries, sort_keys=True).encode("utf-8")
        return self.pointer_commit(md5=self.upload(raw, ".dir"), nfiles=len(entries))

    def pointer_commit(self, **fields: Any) -> str:
        data = self.pointer()
        data["outs"][0].update(fields)
        return self.commit({self.settings.pointer_path: yaml.safe_dump(data, sort_keys=False)})


def origin_of(tmp_path_factory: pytest.TempPathFactory, template: Path, name: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    shutil.copytree(template, root / "origin.git")
    return root


@pytest.fixture(scope="module")
def single_root(tmp_path_factory: pytest.TempPathFactory, origin_template: Path) -> Path:
    return origin_of(tmp_path_factory, origin_template, "hostile-single")


@pytest.fixture(scope="module")
def parts_root(tmp_path_factory: pytest.TempPathFactory, partitioned_template: Path) -> Path:
    return origin_of(tmp_path_factory, partitioned_template, "hostile-parts")


def settings_at(root: Path, s3_server: S3Server, layout: Layout) -> Settings:
    return make_settings((root / "origin.git").as_uri(), root / "work", s3_server.endpoint, layout=layout)


@pytest.fixture
def single(single_root: Path, s3_server: S3Server, s3: Any) -> tuple[Settings, Attacker]:
    settings = settings_at(single_root, s3_server, Layout.SINGLE_FILE)
    return settings, Attacker(settings, single_root / "attacker", s3)


@pytest.fixture
def parts(parts_root: Path, s3_server: S3Server, s3: Any) -> tuple[Settings, Attacker]:
    settings = settings_at(parts_root, s3_server, Layout.PARTITIONED)
    return settings, Attacker(settings, parts_root / "attacker", s3)


def around(root: Path, workspace: Path) -> set[str]:
    """Every path below the test's root outside the run's workspace, DVC's caches and Git's own files."""
    skipped = (workspace, root / "work" / "dvc-cache", root / "work" / "dvc-site-cache", root / "origin.git")
    found: set[str] = set()
    for directory, subdirectories, files in os.walk(root):
        here = Path(directory)
        subdirectories[:] = [d for d in subdirectories if here / d not in skipped and d != ".git"]
        found.update(str(here / name) for name in files + subdirectories)
    return found


def refused(settings: Settings, commit: str, entry: str) -> str:
    """Pull the head; it must be refused naming the commit and the entry, creating nothing around it."""
    root = settings.work_root.parent
    workspace = Workspace.for_run(settings.work_root, RUN).root
    workspace.mkdir(parents=True, exist_ok=True)
    before = around(root, workspace)
    with pytest.raises(ValueError) as refusal:  # bad input: no retry is spent on it
        pull_data(settings, RUN)
    text = str(refusal.value)
    assert f"the version at {commit[:12]} (" in text and "by A. Person <person@example.invalid>)" in text, text
    assert entry in text, text
    assert around(root, workspace) == before
    return text


def shown(value: str) -> str:
    """A value as a refusal quotes it (long ones shortened)."""
    return str(Problem("", value=value)).removesuffix(": ")


# --- 1. directory manifests -----------------------------------------------------------------------


def climbs(data_dir: Path, target: Path) -> dict[str, str]:
    """Every spelling of a manifest entry that would land on `target` from the dataset's directory."""
    up = os.path.relpath(target, data_dir)
    return {
        "../ climbing out": up,
        "./ first": f"./{up}",
        "doubled slashes": up.replace("/", "//"),
        "through a part": f"part-000001.csv/../{up}",
        "through a new directory": f"sub/dir/../../{up}",
        "trailing /.": f"{up}/.",
        "backslashes": up.replace("/", "\\"),
        "mixed separators": up.replace("/", "\\", 1),
        "absolute": str(target),
        "absolute, doubled slash": f"/{target}",
        "absolute through ..": f"/..{target}",
        "bare ..": "..",
        "bare .": ".",
        "one level up (inside the workspace, outside the data)": f"../{target.name}",
        "NUL in the name": f"part-000001.csv\x00/{up}",
        "newline in the name": f"part-000001.csv\n{up}",
    }


def bad_names() -> dict[str, str]:
    return {
        "empty name": "",
        "over-long name": "p" * (MAX_ENTRY_NAME_LENGTH + 1),
        "over-long part name": "part-" + "0" * 300 + ".csv",
        "not a part name": "notes.txt",
        "a hidden file": ".part-000001.csv",
        "a part name with a directory": "old/part-000001.csv",
        "a part name with a trailing slash": "part-000001.csv/",
        "a part name with a leading ./": "./part-000001.csv",
        "fullwidth dots": "\uff0e\uff0e/escaped",
        "percent-encoded climb": "%2e%2e/escaped",
    }


def target_of(settings: Settings, case: str) -> Path:
    return settings.work_root.parent / "outside" / f"escaped-{case.replace(' ', '-').replace('/', '-')}"


@pytest.mark.parametrize("spelling", list(climbs(Path("/w/d"), Path("/t")).keys()) + list(bad_names()))
def test_a_manifest_entry_outside_the_parts_is_refused_before_anything_is_written(
    parts: tuple[Settings, Attacker], spelling: str
) -> None:
    settings, attacker = parts
    target = target_of(settings, spelling)
    data_dir = Workspace.for_run(settings.work_root, RUN).repo / settings.data_relpath
    relpath = {**climbs(data_dir, target), **bad_names()}[spelling]
    body = attacker.upload(b"import os  # code a DAG processor would run\n")
    good_part = {"relpath": "part-000001.csv", "md5": body}
    commit = attacker.manifest_commit([good_part, {"relpath": relpath, "md5": body}])
    refused(settings, commit, shown(relpath))
    assert not target.exists() and not (data_dir.parent / target.name).exists()


def test_every_other_manifest_shape_is_refused(parts: tuple[Settings, Attacker]) -> None:
    settings, attacker = parts
    body = attacker.upload(b"Employee ID\n")
    part = {"relpath": "part-000001.csv", "md5": body}
    cases: dict[str, list[dict[str, Any]]] = {
        "listed twice": [part, {"relpath": "part-000001.csv", "md5": attacker.upload(b"other\n")}],
        "an entry must hold exactly relpath and md5": [{**part, "isexec": True}],
        "its md5 is not 32 hex digits": [{"relpath": "part-000001.csv", "md5": "../../../../etc/passwd"}],
        f"more than a dataset's {MAX_MANIFEST_ENTRIES}": [
            {"relpath": f"part-{number:06d}.csv", "md5": body} for number in range(MAX_MANIFEST_ENTRIES + 1)
        ],
        "not a list of entries": [],
    }
    for why, entries in cases.items():
        commit = attacker.manifest_commit(entries)
        assert why in refused(settings, commit, f"the version at {commit[:12]}")
    tampered = attacker.upload(json.dumps([part]).encode())  # stored under another content's name
    raw = json.dumps([{"relpath": "../escaped", "md5": body}], sort_keys=True).encode()
    key = s3_object_url(TEST_REMOTE_URL, tampered + ".dir").split(f"{TEST_BUCKET}/", 1)[1]
    attacker.s3.put_object(Bucket=TEST_BUCKET, Key=key, Body=raw)
    commit = attacker.pointer_commit(md5=tampered + ".dir")
    assert "does not match its name" in refused(settings, commit, tampered)


@pytest.mark.parametrize("spelling", ["../ climbing out", "absolute"])
def test_a_single_file_pointer_naming_a_manifest_is_refused(single: tuple[Settings, Attacker], spelling: str) -> None:
    settings, attacker = single
    target = target_of(settings, spelling)
    data_file = Workspace.for_run(settings.work_root, RUN).repo / settings.data_relpath
    relpath = climbs(data_file, target)[spelling]
    commit = attacker.manifest_commit([{"relpath": relpath, "md5": attacker.upload(b"x\n")}])
    assert "a file's md5" in refused(settings, commit, "outs.md5")
    assert not target.exists()


def test_without_the_guard_a_manifest_writes_outside_the_workspace(
    parts: tuple[Settings, Attacker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack the manifest guard stops (so the tests above can fail)."""
    settings, attacker = parts
    target = target_of(settings, "unguarded")
    data_dir = Workspace.for_run(settings.work_root, RUN).repo / settings.data_relpath
    body = attacker.upload(b"written by a foreign commit\n")
    attacker.manifest_commit([{"relpath": climbs(data_dir, target)["../ climbing out"], "md5": body}])
    monkeypatch.setattr(Dvc, "_checked_pointer", lambda self, repo: None)
    with pytest.raises(ValueError):  # the part layout check, after DVC has written
        pull_data(settings, RUN)
    assert target.read_bytes() == b"written by a foreign commit\n"
    target.unlink()


# --- 2. pointer fields ----------------------------------------------------------------------------


def foreign_pointer_fields(listener_url: str) -> dict[str, Any]:
    """Every `outs` key DVC accepts that the product does not write, and every other top-level key,
    each with a value DVC takes."""
    from dvc import output, schema

    samples: dict[str, Any] = {
        "push": False,
        "remote": "other",
        "cache": False,
        "persist": True,
        "metric": True,
        "plot": True,
        "labels": ["x"],
        "meta": {"note": "x"},
        "files": [{"relpath": "../escaped", "md5": "0" * 32}],
        "fs_config": {"endpointurl": listener_url},
        "cloud": {"other": {"etag": "abc123"}},
        "isexec": True,
        "etag": "abc123",
        "checksum": "abc123",
        "version_id": "v1",
    }
    outs = [str(getattr(key, "schema", key)) for key in output.SCHEMA]
    fields = {f"outs.{key}": samples.get(key, "x") for key in outs if key not in POINTER_OUT_FIELDS}
    top = {"md5": "0" * 32, "wdir": "../..", "deps": [{"path": listener_url}], "frozen": True, "locked": True}
    top |= {"meta": {"note": "x"}, "always_changed": True, "desc": "x"}
    for key in schema.SINGLE_STAGE_SCHEMA:
        name = str(getattr(key, "schema", key))
        if name != "outs":
            fields[name] = top.get(name, "x")
    return fields


FIELDS = list(foreign_pointer_fields("http://127.0.0.1:1"))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("layout", [Layout.SINGLE_FILE, Layout.PARTITIONED])
def test_a_pointer_field_the_product_does_not_write_is_refused_at_pull(
    single: tuple[Settings, Attacker],
    parts: tuple[Settings, Attacker],
    listener: Listener,
    layout: Layout,
    field: str,
) -> None:
    settings, attacker = single if layout is Layout.SINGLE_FILE else parts
    value = foreign_pointer_fields(listener.url)[field]
    data = attacker.pointer()
    if field.startswith("outs."):
        data["outs"][0][field.removeprefix("outs.")] = value
    else:
        data[field] = value
    commit = attacker.commit({settings.pointer_path: yaml.safe_dump(data, sort_keys=False)})
    refused(settings, commit, shown(field))
    assert listener.connections == 0


@pytest.mark.parametrize("field", [field for field in FIELDS if field.startswith("outs.")])
def test_a_published_pointer_holds_only_the_products_fields_and_its_data_is_on_the_remote(
    single: tuple[Settings, Attacker], s3: Any, listener: Listener, field: str
) -> None:
    """Even a foreign field that reached the workspace (the pull guard bypassed) is not carried into
    a published pointer, and the data it would keep off the remote goes there."""
    settings, attacker = single
    git(attacker.clone, "push", "--quiet", "--force", "origin", f"{attacker.good}:main")
    pull_data(settings, "publisher")
    dvc = Dvc(settings, Workspace.for_run(settings.work_root, "publisher").repo, Redactor())
    data = yaml.safe_load(dvc.pointer_file.read_text())
    data["outs"][0][field.removeprefix("outs.")] = foreign_pointer_fields(listener.url)[field]
    dvc.pointer_file.write_text(yaml.safe_dump(data, sort_keys=False))
    text = dvc.data_path.read_text()
    dvc.data_path.unlink()
    dvc.data_path.write_text(text + text.splitlines()[-1].replace(",", f" {len(field)}{field[5:]},", 1) + "\n")
    pointer, _ = dvc.add_and_push()
    fields = yaml.safe_load(dvc.pointer_file.read_text())
    assert list(fields) == ["outs"] and list(fields["outs"][0]) == ["md5", "size", "hash", "path"]
    key = s3_object_url(TEST_REMOTE_URL, pointer.md5).split(f"{TEST_BUCKET}/", 1)[1]
    assert s3.head_object(Bucket=TEST_BUCKET, Key=key)["ContentLength"] == pointer.size
    assert listener.connections == 0


def test_data_the_push_left_off_the_remote_is_never_committed(
    parts: tuple[Settings, Attacker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After `dvc push` the product asks the remote for every object (manifest and parts) itself."""
    from dvc.repo import Repo

    from shared_tasks.run.steps import modify_data, push_data

    settings, attacker = parts
    git(attacker.clone, "push", "--quiet", "--force", "origin", f"{attacker.good}:main")
    pull_data(settings, "unpushed")
    modify_data(settings, "unpushed", records=3)
    with monkeypatch.context() as patched:  # undone alone: the test's hermetic environment stays
        patched.setattr(Repo, "push", lambda self, *args, **kwargs: 0)  # what push: false or another remote did
        with pytest.raises(DvcError, match=r"dvc push left 2 object\(s\) of [0-9a-f]{32}\.dir off remote 'storage'"):
            push_data(settings, "unpushed")
    assert git(attacker.clone, "ls-remote", "origin", "main").split()[0] == attacker.good
    version = push_data(settings, "unpushed")
    origin = settings.work_root.parent / "origin.git"
    assert version.md5 == Pointer.parse(git(origin, "show", f"{version.commit}:{settings.pointer_path}")).md5


# --- 3. the repository's DVC configuration ----------------------------------------------------------


def option_value(key: str, listener_url: str, outside: Path) -> str:
    """A value DVC takes for the option, aimed at the loopback listener or a path outside the workspace."""
    if "url" in key or "endpoint" in key or key in ("proxy_to", "data_proxy_target"):
        return listener_url
    if "path" in key or key in ("dir", "site_cache_dir", "html_template", "out_dir", "config_dir"):
        return str(outside)
    if key in ("acl",):
        return "public-read"
    if key.startswith("grant_"):
        return "uri=http://acs.amazonaws.com/groups/global/AllUsers"
    if key in ("type",):
        return "symlink"
    if key in ("shared",):
        return "group"
    if "jobs" in key or "timeout" in key or key in ("replication", "row_limit", "row_cleanup_quota"):
        return "2"
    return "true"


def foreign_options(listener_url: str, outside: Path) -> dict[str, tuple[str, str, str]]:
    """Every DVC config option that moves data, changes how it is written or who may read it, and
    every other one a run does not honour: name -> (section, key, value)."""
    from dvc import config_schema

    def value_for(key: str) -> str:
        return option_value(key, listener_url, outside)

    def keys(mapping: dict[Any, Any]) -> list[str]:
        return [str(getattr(key, "schema", key)) for key in mapping]

    options = {
        f"remote.storage.{key}": ('remote "storage"', key, value_for(key))
        for key in keys(config_schema.REMOTE_SCHEMAS["s3"])
        if key != "url"
    }
    options |= {f"cache.{key}": ("cache", key, value_for(key)) for key in keys(config_schema.SCHEMA["cache"])}
    harmless = ("analytics", "autostage", "check_update", "interactive", "remote")
    core = [key for key in keys(config_schema.SCHEMA["core"]) if key not in harmless]
    options |= {f"core.{key}": ("core", key, value_for(key)) for key in core}
    options["core.remote"] = ("core", "remote", "other")
    options["remote.other.url"] = ('remote "other"', "url", "s3://elsewhere/datasets")
    for section in ("state", "index", "feature", "plots", "exp", "parsing", "hydra", "studio"):
        for key in keys(
            config_schema.SCHEMA[section].schema if section == "feature" else config_schema.SCHEMA[section]
        ):
            options[f"{section}.{key}"] = (section, key, value_for(key))
    options["machine.box.cloud"] = ('machine "box"', "cloud", "aws")
    options["db.box.url"] = ('db "box"', "url", listener_url)
    return options


OPTIONS = list(foreign_options("http://127.0.0.1:1", Path("/outside")))


def config_with(text: str, section: str, key: str, value: str) -> str:
    config = ConfigObj(text.splitlines())
    config.setdefault(section, {})[key] = value
    return "\n".join(config.write()) + "\n"


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("file", [".dvc/config", ".dvc/config.local"])
def test_a_config_option_that_moves_exposes_or_rewrites_data_is_refused_at_pull(
    single: tuple[Settings, Attacker], listener: Listener, file: str, option: str
) -> None:
    settings, attacker = single
    outside = settings.work_root.parent / "outside-cache"
    section, key, value = foreign_options(listener.url, outside)[option]
    committed = git(attacker.clone, "show", f"{attacker.good}:.dvc/config") if file == ".dvc/config" else ""
    commit = attacker.commit({file: config_with(committed, section, key, value)})
    text = refused(settings, commit, f"file {file}, value {option!r}")
    assert "settings" in text or "remote" in text
    assert listener.connections == 0 and not outside.exists()


def test_the_remote_url_is_the_repositorys_only_where_the_settings_name_none_and_only_on_s3(
    single: tuple[Settings, Attacker], tmp_path: Path
) -> None:
    settings, attacker = single
    committed = git(attacker.clone, "show", f"{attacker.good}:.dvc/config")
    elsewhere = tmp_path / "local-remote"
    commit = attacker.commit({".dvc/config": config_with(committed, 'remote "storage"', "url", str(elsewhere))})
    assert "must be an s3:// URL" in refused(settings, commit, "remote.storage.url")
    named = settings.model_copy(update={"dvc_remote_url": TEST_REMOTE_URL})
    assert pull_data(named, RUN).commit == commit  # the settings' URL wins: the repository's is not used
    assert not elsewhere.exists()


def test_without_the_guard_a_foreign_endpoint_receives_the_workers_requests(
    single: tuple[Settings, Attacker], listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings shaped like the cluster's (the remote's URL set, no endpoint): the attack the config guard stops."""
    import shared_tasks.versioning.dvcops

    settings, attacker = single
    aws_like = settings.model_copy(update={"dvc_remote_url": TEST_REMOTE_URL, "s3_endpoint_url": None})
    aws_like = aws_like.model_copy(update={"work_root": settings.work_root.parent / "aws-like"})
    committed = git(attacker.clone, "show", f"{attacker.good}:.dvc/config")
    attacker.commit({".dvc/config": config_with(committed, 'remote "storage"', "endpointurl", listener.url)})
    before = listener.connections
    with pytest.raises(ValueError, match="endpointurl"):
        pull_data(aws_like, RUN)
    assert listener.connections == before
    monkeypatch.setattr(shared_tasks.versioning.dvcops, "config_problems", lambda root, settings: [])
    with pytest.raises(DvcError):
        pull_data(aws_like, RUN)
    assert listener.connections > before
    listener.connections = 0


# --- symlinks where DVC reads or writes -------------------------------------------------------------


def symlinked_places(layout: Layout) -> list[str]:
    """Where a committed symlink would lead DVC's reads or writes out of the workspace (a symlinked
    parent of the pointer is refused already: the pointer is not found)."""
    settings = make_settings("file:///unused", Path("/unused"), "", layout=layout)
    parent = Path(settings.data_relpath).parent
    places = [".dvc", ".dvc/tmp", ".dvc/config", ".dvc/cache", str(parent / ".gitignore")]
    if layout is Layout.PARTITIONED:
        places += [settings.data_relpath, f"{settings.data_relpath}/part-000001.csv"]
    return places


@pytest.mark.parametrize(
    ("layout", "place"), [(layout, place) for layout in Layout for place in symlinked_places(layout)]
)
def test_a_symlink_where_dvc_reads_or_writes_is_refused(
    single: tuple[Settings, Attacker], parts: tuple[Settings, Attacker], layout: Layout, place: str
) -> None:
    settings, attacker = single if layout is Layout.SINGLE_FILE else parts
    outside = settings.work_root.parent / "outside-link-target"
    outside.mkdir(exist_ok=True)
    listing = sorted(outside.rglob("*"))
    commit = attacker.commit(links={place: str(outside)})
    # Named as a link where DVC writes, or (the data's directory or a part) as what Git tracks for the data.
    refused(settings, commit, place.split("/part-")[0])
    assert sorted(outside.rglob("*")) == listing


def test_a_good_version_after_the_attacks_is_pulled_and_published(
    single: tuple[Settings, Attacker], parts: tuple[Settings, Attacker], s3: Any
) -> None:
    from shared_tasks.project.pipeline import run_pipeline

    for settings, attacker in (single, parts):
        git(attacker.clone, "push", "--quiet", "--force", "origin", f"{attacker.good}:main")
        version = run_pipeline(settings, f"after-{settings.layout.value}", records=2)
        key = s3_object_url(TEST_REMOTE_URL, version.md5).split(f"{TEST_BUCKET}/", 1)[1]
        s3.head_object(Bucket=TEST_BUCKET, Key=key)
