"""One contract, two DVCs: the local one (`LocalDvc`, fast lane) and the real one (`Dvc` on moto's S3, slow).

Every assertion runs against both, so the local DVC the fast lane's step tests use cannot drift
from what a run gets from DVC: the same pointer and cache for the same bytes, the same objects on
the remote under the same names, the same refusals. What each wrote is read back by hand (the
pointer's text, the cache's and the remote's objects), never through the client under test.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.redact import Redactor
from shared_tasks.project.settings import Layout, Settings
from shared_tasks.storage.parts import part_files, part_name, part_number
from shared_tasks.storage.pointer import directory_manifest, directory_md5, pointer_text
from shared_tasks.versioning.backends import Backends, LocalBackends
from shared_tasks.versioning.interfaces import DvcClient, DvcError
from shared_tasks.versioning.repo_guard import UntrustedRepositoryError
from tests.conftest import TEST_BUCKET, TEST_REMOTE_URL, LocalVersioning


@dataclass(frozen=True)
class DvcUnderTest:
    """One DVC implementation, with what the contract needs to read and break its remote by hand."""

    kind: str
    settings: Settings
    backends: Backends
    remote_bytes: Callable[[str, str], bytes | None]  # (remote URL, object id) -> the object, or None
    delete_remote: Callable[[str], None]

    def checkout(self, tmp_path: Path, name: str = "checkout") -> Path:
        clone = tmp_path / name
        subprocess.run(["git", "clone", "--quiet", self.settings.git_url, str(clone)], check=True, capture_output=True)
        return clone

    def dvc(self, root: Path, cache_dir: Path | None = None, settings: Settings | None = None) -> DvcClient:
        return self.backends.dvc(settings or self.settings, root, Redactor(), cache_dir)

    def fresh(self, tmp_path: Path, published: DvcClient, name: str) -> DvcClient:
        """Another clone with an empty cache of its own, its pointer the one `published` wrote."""
        fresh = self.dvc(self.checkout(tmp_path, name), cache_dir=tmp_path / f"{name}-cache")
        fresh.pointer_file.write_text(published.pointer_file.read_text())
        return fresh


def _object_key(remote_url: str, oid: str) -> str:
    return f"{remote_url.removeprefix(f's3://{TEST_BUCKET}/')}/files/md5/{oid[:2]}/{oid[2:]}"


def _real(request: pytest.FixtureRequest, layout: Layout) -> DvcUnderTest:
    settings: Settings = request.getfixturevalue("settings" if layout is Layout.SINGLE_FILE else "partitioned")
    s3: Any = request.getfixturevalue("s3")

    def remote_bytes(remote_url: str, oid: str) -> bytes | None:
        try:
            return bytes(s3.get_object(Bucket=TEST_BUCKET, Key=_object_key(remote_url, oid))["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def delete_remote(oid: str) -> None:
        s3.delete_object(Bucket=TEST_BUCKET, Key=_object_key(TEST_REMOTE_URL, oid))

    return DvcUnderTest("real", settings, Backends(), remote_bytes, delete_remote)


def _local(request: pytest.FixtureRequest, layout: Layout) -> DvcUnderTest:
    local: LocalVersioning = request.getfixturevalue(
        "local_versioning" if layout is Layout.SINGLE_FILE else "local_partitioned"
    )

    def remote_bytes(remote_url: str, oid: str) -> bytes | None:
        stored = local.remote_object(oid, remote_url)
        return stored.read_bytes() if stored.is_file() else None

    return DvcUnderTest(
        "local",
        local.settings,
        LocalBackends(local.remote_root),
        remote_bytes,
        lambda oid: local.remote_object(oid).unlink(),
    )


@pytest.fixture(
    params=[
        pytest.param(("local", Layout.SINGLE_FILE), id="local-single-file"),
        pytest.param(("local", Layout.PARTITIONED), id="local-partitioned"),
        pytest.param(("real", Layout.SINGLE_FILE), id="real-single-file", marks=pytest.mark.slow),
        pytest.param(("real", Layout.PARTITIONED), id="real-partitioned", marks=pytest.mark.slow),
    ]
)
def under_test(request: pytest.FixtureRequest) -> DvcUnderTest:
    kind, layout = request.param
    return (_real if kind == "real" else _local)(request, layout)


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def cached(settings: Settings, oid: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or settings.cache_dir) / "files" / "md5" / oid[:2] / oid[2:]


def change_data(dvc: DvcClient, layout: Layout) -> dict[str, bytes]:
    """A new record (a new part in the partitioned layout), written as the steps write: a new file
    renamed into place, never through a link into the cache. Returns the dataset's files by name.

    The record is the seed's last under an id of its own: new bytes on the remote every time (the
    S3 API is shared by the whole session), and any bytes do for DVC."""
    data = dvc.data_path
    new_record = secrets.token_hex(8).encode() + b","
    if layout is Layout.SINGLE_FILE:
        text = data.read_bytes()
        new = text + new_record + text.rstrip(b"\n").rsplit(b"\n", 1)[1].split(b",", 1)[1] + b"\n"
        data.unlink()
        data.write_bytes(new)
        return {data.name: new}
    last = part_files(data)[-1]
    header, first = last.read_bytes().split(b"\n")[:2]
    (data / part_name(part_number(last) + 1)).write_bytes(header + b"\n" + new_record + first.split(b",", 1)[1] + b"\n")
    return {part.name: part.read_bytes() for part in part_files(data)}


def expected_pointer(settings: Settings, files: dict[str, bytes]) -> tuple[str, str]:
    """(md5, pointer text) DVC 3 gives these bytes, computed here from the bytes alone."""
    name = Path(settings.data_relpath).name
    if settings.layout is Layout.SINGLE_FILE:
        (data,) = files.values()
        return md5_of(data), pointer_text(md5_of(data), len(data), None, name)
    md5 = directory_md5({part: md5_of(data) for part, data in files.items()})
    return md5, pointer_text(md5, sum(len(data) for data in files.values()), len(files), name)


def test_pull_checks_out_the_pointers_data_as_read_only_links_into_the_cache(
    under_test: DvcUnderTest, tmp_path: Path
) -> None:
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pull()
    settings = under_test.settings
    files = [dvc.data_path] if settings.layout is Layout.SINGLE_FILE else part_files(dvc.data_path)
    assert files and all(file.is_file() for file in files)
    expected_md5, expected_text = expected_pointer(settings, {file.name: file.read_bytes() for file in files})
    assert dvc.pointer_file.read_text() == expected_text
    for file in files:
        assert file.stat().st_ino == cached(settings, md5_of(file.read_bytes())).stat().st_ino, f"{file} not linked"
        assert not file.stat().st_mode & 0o222, f"{file} is writable: a write would change the cache"
    if settings.layout is Layout.PARTITIONED:
        entries = {file.name: md5_of(file.read_bytes()) for file in files}
        assert cached(settings, expected_md5).read_bytes() == directory_manifest(entries)


def test_add_writes_the_pointer_and_gitignore_dvc_writes_for_the_same_bytes(
    under_test: DvcUnderTest, tmp_path: Path
) -> None:
    settings = under_test.settings
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pull()
    files = change_data(dvc, settings.layout)
    pointer = dvc.add()

    md5, text = expected_pointer(settings, files)
    assert dvc.pointer_file.read_text() == text
    assert (pointer.md5, pointer.path) == (md5, Path(settings.data_relpath).name)
    for data in files.values():
        assert cached(settings, md5_of(data)).read_bytes() == data
    if settings.layout is Layout.PARTITIONED:
        assert cached(settings, md5).read_bytes() == directory_manifest({n: md5_of(d) for n, d in files.items()})
    gitignore = (dvc.data_path.parent / ".gitignore").read_text().splitlines()
    assert gitignore.count(f"/{dvc.data_path.name}") == 1


def test_add_and_push_puts_every_object_on_the_remote_and_a_second_push_sends_nothing(
    under_test: DvcUnderTest, tmp_path: Path
) -> None:
    settings = under_test.settings
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pull()
    files = change_data(dvc, settings.layout)
    pointer, remote_url = dvc.add_and_push()

    assert remote_url == dvc.remote_url() == TEST_REMOTE_URL
    for data in files.values():
        assert under_test.remote_bytes(TEST_REMOTE_URL, md5_of(data)) == data
    if settings.layout is Layout.PARTITIONED:
        manifest = directory_manifest({name: md5_of(data) for name, data in files.items()})
        assert under_test.remote_bytes(TEST_REMOTE_URL, pointer.md5) == manifest
    assert dvc.missing_on_remote() == []
    assert dvc.push() == 0


def test_the_settings_remote_url_wins_over_the_repositorys(under_test: DvcUnderTest, tmp_path: Path) -> None:
    elsewhere = f"s3://{TEST_BUCKET}/elsewhere"
    settings = under_test.settings.model_copy(update={"dvc_remote_url": elsewhere})
    checkout = under_test.checkout(tmp_path)
    under_test.dvc(checkout).pull()  # the seed is not on the other prefix
    dvc = under_test.dvc(checkout, settings=settings)
    files = change_data(dvc, settings.layout)
    _, remote_url = dvc.add_and_push()
    assert remote_url == dvc.remote_url() == elsewhere
    changed = max(files)  # the file, or the new part
    assert under_test.remote_bytes(elsewhere, md5_of(files[changed])) == files[changed]
    assert under_test.remote_bytes(TEST_REMOTE_URL, md5_of(files[changed])) is None


def test_a_pull_into_an_empty_cache_fetches_from_the_remote(under_test: DvcUnderTest, tmp_path: Path) -> None:
    settings = under_test.settings
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pull()
    files = change_data(dvc, settings.layout)
    pointer, _ = dvc.add_and_push()

    fresh = under_test.fresh(tmp_path, dvc, "fresh")
    fresh.pull()
    pulled = [fresh.data_path] if settings.layout is Layout.SINGLE_FILE else part_files(fresh.data_path)
    assert {file.name: file.read_bytes() for file in pulled} == files
    assert cached(settings, pointer.md5, tmp_path / "fresh-cache").is_file()


def test_objects_gone_from_the_remote_are_named_and_a_pull_without_them_fails(
    under_test: DvcUnderTest, tmp_path: Path
) -> None:
    settings = under_test.settings
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pull()
    files = change_data(dvc, settings.layout)
    pointer, _ = dvc.add_and_push()
    changed = max(files)  # the file, or the new part
    under_test.delete_remote(md5_of(files[changed]))

    if settings.layout is Layout.SINGLE_FILE:
        assert dvc.missing_on_remote() == [settings.data_relpath]
    else:  # DVC takes a directory whose manifest is on the remote to be there whole (dvc_data's status)
        assert dvc.missing_on_remote() == []
    with pytest.raises(DvcError, match=r"dvc pull from remote 'storage' failed"):
        under_test.fresh(tmp_path, dvc, "fresh").pull()
    if settings.layout is Layout.PARTITIONED:
        under_test.delete_remote(pointer.md5)
        assert dvc.missing_on_remote() == [settings.data_relpath, f"{settings.data_relpath}/{changed}"]
        with pytest.raises(DvcError, match=rf"its manifest {pointer.md5} is neither in the cache nor on remote"):
            under_test.fresh(tmp_path, dvc, "fresh-again").pull()


def test_a_pointer_field_the_product_does_not_write_is_refused(under_test: DvcUnderTest, tmp_path: Path) -> None:
    dvc = under_test.dvc(under_test.checkout(tmp_path))
    dvc.pointer_file.write_text(dvc.pointer_file.read_text() + "  remote: other\n")
    with pytest.raises(UntrustedRepositoryError, match=r"outs\.remote"):
        dvc.pull()
    with pytest.raises(UntrustedRepositoryError, match=r"outs\.remote"):
        dvc.push()
    assert not dvc.data_path.exists()


def test_a_repository_config_that_moves_data_is_refused(under_test: DvcUnderTest, tmp_path: Path) -> None:
    checkout = under_test.checkout(tmp_path)
    dvc = under_test.dvc(checkout)
    config = checkout / ".dvc" / "config"
    config.write_text(config.read_text() + "['remote \"other\"']\n    url = s3://elsewhere/data\n")
    with pytest.raises(UntrustedRepositoryError, match=r"remote\.other\.url"):
        dvc.pull()
    assert not dvc.data_path.exists()
