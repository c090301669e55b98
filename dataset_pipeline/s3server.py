"""An S3 API on loopback: moto's server, optionally persisted to a folder.

moto keeps objects in memory only. With a state folder, the folder is loaded back before the
server listens (so no request meets a half-restored state), and every change a request makes
(the object or bucket it wrote or deleted, and nothing else) is on disk before its response goes
out (write-through), so a crash loses no acknowledged write and stopping and starting the stack
keeps every version. The same builder serves the test fixtures (in a thread, no persistence) and
the local stack (a process).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataset_pipeline.process import LOOPBACK, write_ready_file
from shared_tasks.files import sync_directory, write_atomically

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["FAKE_CREDENTIALS", "LOOPBACK", "S3Server", "s3_client"]
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def moto_app() -> WsgiApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    return app


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def _default_backend() -> Any:
    """The S3 backend of the account requests with the stack's fake keys act for."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)]["aws"]


class ObjectStore:
    """The S3 API's state on disk, one file per object: a write costs what it writes.

    <root>/<bucket>/ exists for every bucket; an object is <root>/<bucket>/<sha[:2]>/<sha>.obj, a
    JSON header line (key, ETag, metadata) then the body, made durable by fsync and an atomic
    rename (and an fsync of its directory) before the request that made it is answered.
    """

    SUFFIX = ".obj"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def _object_path(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.root / bucket / digest[:2] / f"{digest}{self.SUFFIX}"

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        return self._locks[hash((bucket, key)) % _LOCK_STRIPES]

    # writing ---------------------------------------------------------------------------------
    def save_bucket(self, backend: Any, bucket: str) -> None:
        """The bucket as the server now has it: a folder, or none."""
        folder = self.root / bucket
        if bucket in backend.buckets:
            if not folder.is_dir():
                folder.mkdir(parents=True)
                sync_directory(self.root)
        elif folder.exists():
            shutil.rmtree(folder)
            sync_directory(self.root)

    def save_object(self, backend: Any, bucket: str, key: str) -> None:
        """The object as the server now has it (its newest version), or its absence."""
        with self._lock(bucket, key):
            found = backend.buckets.get(bucket)
            current = found.keys.get(key) if found is not None else None
            path = self._object_path(bucket, key)
            if current is None or not hasattr(current, "value"):  # gone, or a delete marker
                if path.exists():
                    path.unlink()
                    sync_directory(path.parent)
                return
            header = {"key": key, "etag": current.etag.strip('"'), "metadata": dict(current.metadata)}
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True)
                sync_directory(path.parent.parent)
            _write_durably(path, json.dumps(header).encode("utf-8") + b"\n" + current.value)

    # reading ---------------------------------------------------------------------------------
    def restore(self, backend: Any, region: str) -> int:
        """Every saved bucket and object into `backend`; returns the object count."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._migrate_manifests()
        restored = 0
        for folder in sorted(entry for entry in self.root.iterdir() if entry.is_dir()):
            backend.create_bucket(folder.name, region)
            for path in sorted(folder.glob("??/*")):
                if path.name.endswith(self.SUFFIX) and not path.name.startswith("."):
                    self._restore_one(backend, folder.name, path)
                    restored += 1
                else:  # a write a crash interrupted (it was never acknowledged)
                    path.unlink()
        return restored

    def _restore_one(self, backend: Any, bucket: str, path: Path) -> None:
        header_line, body = path.read_bytes().split(b"\n", 1)
        header = json.loads(header_line)
        restored = backend.put_object(bucket, header["key"], body, etag=header["etag"], disable_notification=True)
        restored.set_metadata(header["metadata"])

    def _migrate_manifests(self) -> None:
        """A folder of the earlier format (a manifest per bucket, bodies without a header) into this one."""
        for manifest in sorted(self.root.glob("*.manifest.json")):
            bucket = manifest.name.removesuffix(".manifest.json")
            for key in json.loads(manifest.read_text()):
                digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
                body = (self.root / bucket / digest[:2] / digest).read_bytes()
                header = {"key": key, "etag": hashlib.md5(body).hexdigest(), "metadata": {}}  # S3's ETag
                _write_durably(self._object_path(bucket, key), json.dumps(header).encode("utf-8") + b"\n" + body)
            (self.root / bucket).mkdir(exist_ok=True)
            manifest.unlink()  # the old bodies go with the next restore's sweep of what is not an object
            sync_directory(self.root)


_LOCK_STRIPES = 64


def _write_durably(path: Path, data: bytes) -> None:
    """Written, fsynced, renamed into place, and the rename fsynced: on disk before anyone is told."""
    write_atomically(path, data, fsync=True, fsync_directory=True)


# What a request changed, recorded by moto's backend as it changes it (in the request's thread).
_changes = threading.local()


def _record_changes() -> None:
    """Make moto's S3 backend say which buckets and objects a request changed (once per process)."""
    from moto.s3.models import S3Backend

    if getattr(S3Backend, "_write_through_recording", False):
        return

    def recording(name: str, what: str) -> None:
        original = getattr(S3Backend, name)

        @functools.wraps(original)
        def wrapper(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, bucket_name, *args, **kwargs)
            finally:
                changed = getattr(_changes, "current", None)
                if changed is not None:
                    key = (args[0] if args else kwargs.get("key_name")) if what == "object" else None
                    changed.add((self, bucket_name, key))

        setattr(S3Backend, name, wrapper)

    for name in ("put_object", "delete_object"):  # copies, multipart completions and bulk deletes go through these
        recording(name, "object")
    for name in ("create_bucket", "delete_bucket"):
        recording(name, "bucket")
    S3Backend._write_through_recording = True  # type: ignore[attr-defined]


class WriteThrough:
    """WSGI middleware: what a request changed is on disk before its response goes out."""

    def __init__(self, app: WsgiApp, store: ObjectStore) -> None:
        self.app = app
        self.store = store

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        changed: set[tuple[Any, str, str | None]] = set()
        _changes.current = changed
        try:
            body = list(self.app(environ, start_response))  # nothing is sent before this returns
        finally:
            _changes.current = None
        try:
            for backend, bucket, key in sorted(changed, key=lambda c: (c[1], c[2] is not None, c[2] or "")):
                if key is None:
                    self.store.save_bucket(backend, bucket)
                else:
                    self.store.save_object(backend, bucket, key)
        except OSError:
            log.exception("could not write %s through to disk", environ.get("PATH_INFO"))
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"the change could not be written to disk\n"]
        return body


class S3Server:
    """moto on 127.0.0.1 in a background thread of this process."""

    def __init__(self, port: int = 0, state_dir: Path | None = None, host: str = LOOPBACK) -> None:
        self.host = host
        self._port = port
        self.state_dir = state_dir
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> S3Server:
        """Restore the folder first, then listen: no request is answered from a half-restored state."""
        from werkzeug.serving import make_server  # the local extra's: the CLI imports this module without it

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = moto_app()
        if self.state_dir is not None:
            _record_changes()
            store = ObjectStore(self.state_dir)
            restored = store.restore(_default_backend(), FAKE_CREDENTIALS["AWS_DEFAULT_REGION"])
            log.info("restored %d objects from %s", restored, self.state_dir)
            app = WriteThrough(app, store)
        self._server = make_server(self.host, self._port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the persisted S3 API as a process until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="S3 API (moto) on loopback, persisted to a folder")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.update({k: v for k, v in FAKE_CREDENTIALS.items() if k not in os.environ})
    server = S3Server(port=args.port, state_dir=args.state_dir).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    write_ready_file(args.ready_file, {"s3": os.getpid()}, server.port)
    stop.wait()
    server.stop()
    args.ready_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
