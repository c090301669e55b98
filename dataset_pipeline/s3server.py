"""An S3 API on loopback: moto's server, optionally persisted to a folder.

moto keeps objects in memory only. With a state folder, every acknowledged write is
mirrored to disk before the response goes out (write-through), and on start the folder is
loaded back, so stopping and starting the stack keeps every version. The same builder
serves the test fixtures (in a thread, no persistence) and the local stack (a process).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from dataset_pipeline.process import LOOPBACK, write_ready_file

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["FAKE_CREDENTIALS", "LOOPBACK", "S3Server", "s3_client"]
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_MUTATING = {"PUT", "POST", "DELETE"}

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


class DiskMirror:
    """Mirrors buckets to <root>/<bucket>/<key> with an ETag manifest per bucket."""

    def __init__(self, root: Path, endpoint: str) -> None:
        self.root = root
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.endpoint)
        return self._client

    def _manifest_path(self, bucket: str) -> Path:
        return self.root / f"{bucket}.manifest.json"

    def _object_path(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.root / bucket / digest[:2] / digest

    def sync(self) -> None:
        """Bring the folder in line with the server: new and changed objects, deletions."""
        with self._lock:
            for bucket in self.client.list_buckets().get("Buckets", []):
                self._sync_bucket(bucket["Name"])

    def _sync_bucket(self, bucket: str) -> None:
        manifest_path = self._manifest_path(bucket)
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        live: dict[str, str] = {}
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                live[item["Key"]] = item["ETag"]
        for key, etag in live.items():
            if manifest.get(key) != etag:
                target = self._object_path(bucket, key)
                target.parent.mkdir(parents=True, exist_ok=True)
                body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
                _write_atomically(target, body)
        for key in set(manifest) - set(live):
            self._object_path(bucket, key).unlink(missing_ok=True)
        (self.root / bucket).mkdir(parents=True, exist_ok=True)
        _write_atomically(manifest_path, json.dumps(live, sort_keys=True).encode())

    def restore(self) -> int:
        """Create the saved buckets and upload their objects; returns the object count."""
        restored = 0
        with self._lock:
            for manifest_path in sorted(self.root.glob("*.manifest.json")):
                bucket = manifest_path.name.removesuffix(".manifest.json")
                self.client.create_bucket(Bucket=bucket)
                for key in json.loads(manifest_path.read_text()):
                    body = self._object_path(bucket, key).read_bytes()
                    self.client.put_object(Bucket=bucket, Key=key, Body=body)
                    restored += 1
        return restored


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


class WriteThrough:
    """WSGI middleware: after a successful write request, sync the disk mirror."""

    def __init__(self, app: WsgiApp, mirror: DiskMirror) -> None:
        self.app = app
        self.mirror = mirror
        self.enabled = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status: list[str] = []

        def recording_start_response(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        body = list(self.app(environ, recording_start_response))
        path = unquote(environ.get("PATH_INFO", ""))
        if (
            self.enabled
            and environ.get("REQUEST_METHOD") in _MUTATING
            and status
            and status[0].startswith("2")
            and not path.startswith("/moto-api")
        ):
            self.mirror.sync()
        return body


class S3Server:
    """moto on 127.0.0.1 in a background thread of this process."""

    def __init__(self, port: int = 0, state_dir: Path | None = None, host: str = LOOPBACK) -> None:
        self.host = host
        self._port = port
        self.state_dir = state_dir
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._write_through: WriteThrough | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> S3Server:
        from werkzeug.serving import make_server  # the local extra's: the CLI imports this module without it

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = moto_app()
        if self.state_dir is not None:
            self._write_through = WriteThrough(app, DiskMirror(self.state_dir, "http://unset"))
            app = self._write_through
        self._server = make_server(self.host, self._port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        if self._write_through is not None:
            self._write_through.mirror.endpoint = self.endpoint
            self.state_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
            self._write_through.mirror.restore()
            self._write_through.enabled = True
        return self

    def stop(self) -> None:
        if self._write_through is not None and self._write_through.enabled:
            self._write_through.mirror.sync()
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
