"""The stack's S3 API killed at every point of a restart while a writer keeps writing: no
acknowledged write is lost, and nothing is acknowledged before the saved state is back.

A writer thread puts and deletes objects all the time, against whichever server is up. The server
is started again and again (as `stack up` does after a crash), the Nth start killed (SIGKILL) just
before its Nth step that changes state (tests/s3_crash_server.py), for N = 1, 2, ... through the
restore, the bind, the ready file and the first writes it takes; the sweep ends at the first start
that lives past that window. Every start that gets to serve is checked, the writer paused: each
object whose latest write was acknowledged has that body, or stays deleted (an object whose latest
write was cut by a kill, unacknowledged, is left out: either outcome is right for it).
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dataset_pipeline.s3server import FAKE_CREDENTIALS
from orchestrator_clients.retrying import poll_until as _poll_until
from tests.ports import free_port
from tests.s3_crash_server import LISTEN, READY

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BUCKET = "kill-points"
LIVE_OBJECTS = 8  # the writer keeps about this many objects: a restart restores that many
WRITE_STEPS_AFTER_READY = 10  # a start's life covers the first writes after it serves (3-4 steps each)


def client(port: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10),
    )


@dataclass
class Writer:
    """Puts new objects and deletes the oldest, as fast as the server answers; records what was acknowledged."""

    port: int
    seq: int = 0
    acked: dict[str, bytes | None] = field(default_factory=dict)  # key -> body, or None once deleted
    touched: dict[str, int] = field(default_factory=dict)  # key -> seq of its latest attempt
    acked_seq: dict[str, int] = field(default_factory=dict)  # key -> seq of its latest acknowledged write
    live: list[str] = field(default_factory=list)
    acks_by_life: dict[int, int] = field(default_factory=dict)
    life: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    go: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)  # held through each request
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        s3 = client(self.port)
        while not self.stop.is_set():
            self.go.wait(0.1)
            with self.busy:
                if self.go.is_set() and not self.stop.is_set():
                    self._one(s3)

    def _one(self, s3: Any) -> None:
        with self.lock:
            self.seq += 1
            seq, life = self.seq, self.life
            deleting = len(self.live) >= LIVE_OBJECTS
            key = self.live[0] if deleting else f"object-{seq}"
            self.touched[key] = seq
        body = None if deleting else f"body of write {seq}".encode()
        try:
            if body is None:
                s3.delete_object(Bucket=BUCKET, Key=key)
            else:
                s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        except Exception:  # refused, reset, or a 5xx: not acknowledged
            self.stop.wait(0.005)
            return
        with self.lock:
            self.acked[key] = body
            self.acked_seq[key] = seq
            self.acks_by_life[life] = self.acks_by_life.get(life, 0) + 1
            if body is None:
                self.live.remove(key)
            else:
                self.live.append(key)

    def pause(self) -> None:
        """No request in flight once this returns, and none until `go` is set again."""
        self.go.clear()
        with self.busy:
            pass

    def settled(self) -> dict[str, bytes | None]:
        """Each object whose latest write was acknowledged: its body, or None for a delete. Call paused."""
        with self.lock:
            return {key: body for key, body in self.acked.items() if self.touched[key] == self.acked_seq[key]}


def poll_until(check: Callable[[], bool], timeout: float, interval: float) -> None:
    _poll_until(check, timeout=timeout, interval=interval, timed_out=lambda: AssertionError(f"not within {timeout} s"))


def progress_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def step_number(progress: list[str], what: str) -> int | None:
    found = [int(line.split()[0]) for line in progress if line.split(" ", 1)[1:] == [what]]
    return found[0] if found else None


def kill_points() -> Iterator[int]:
    """Before the 1st, 2nd, ... step of a start; the caller stops at the first start that outlives its window."""
    yield from itertools.count(1)


def verify(port: int, writer: Writer, server: Any) -> int | None:
    """Every write acknowledged before the last kill, as the restarted server has it: how many were checked,
    or None when a write made before the writer paused killed the server meanwhile (the next start checks)."""
    from botocore.exceptions import EndpointConnectionError

    try:
        return _verify(client(port), writer)
    except EndpointConnectionError:
        assert server.wait(60) == -signal.SIGKILL
        return None


def _verify(s3: Any, writer: Writer) -> int:
    checked = 0
    for key, body in writer.settled().items():
        if body is None:
            missing = s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
            assert [item["Key"] for item in missing if item["Key"] == key] == [], f"{key} was deleted, and is back"
        else:
            found = s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])
            assert key in [item["Key"] for item in found], f"{key} (write {writer.acked_seq[key]}) is lost"
            assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, f"{key} lost its acknowledged write"
        checked += 1
    return checked


def test_every_acknowledged_write_survives_a_kill_at_every_point_of_a_restart(tmp_path: Path) -> None:
    port = free_port()
    state, ready_file = tmp_path / "s3", tmp_path / "s3.ready"
    writer = Writer(port)

    def start(kill_at: int, progress: Path) -> subprocess.Popen[bytes]:
        ready_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "tests.s3_crash_server", f"--kill-at={kill_at}", f"--progress={progress}"]
        command += ["--", "--port", str(port), "--state-dir", str(state), "--ready-file", str(ready_file)]
        log = (tmp_path / "server.log").open("ab")
        with log:
            return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=log)

    setup = start(0, tmp_path / "setup.progress")
    poll_until(ready_file.exists, timeout=60, interval=0.02)
    client(port).create_bucket(Bucket=BUCKET)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    writer.go.set()  # a bucket with objects: every restart has them to restore
    poll_until(lambda: len(writer.live) >= LIVE_OBJECTS, timeout=60, interval=0.01)
    writer.pause()
    setup.send_signal(signal.SIGKILL)
    setup.wait()
    kills: dict[str, int] = {"before listening": 0, "restoring": 0, "serving": 0}
    checked_total = 0
    try:
        for kill_at in kill_points():
            progress = tmp_path / f"start-{kill_at}.progress"
            with writer.lock:
                writer.life = kill_at
            writer.go.set()  # the writer keeps writing through the restart
            server = start(kill_at, progress)

            def died_or_served(server: subprocess.Popen[bytes] = server) -> bool:
                return server.poll() is not None or ready_file.exists()

            poll_until(died_or_served, timeout=60, interval=0.01)
            ready = step_number(progress_of(progress), READY)
            if server.poll() is None:  # it serves: everything acknowledged before the last kill must be there
                writer.pause()
                checked = verify(port, writer, server)
                checked_total += checked or 0
                if kill_at > ready + WRITE_STEPS_AFTER_READY:  # type: ignore[operator]
                    assert checked is not None  # the sweep is over
                    server.terminate()
                    server.wait()
                    break
                writer.go.set()
            assert server.wait(60) == -signal.SIGKILL, f"start {kill_at} was not killed: see {progress}"
            lines = progress_of(progress)
            assert lines[-1] == f"kill {kill_at}", lines[-3:]  # the kill landed where it was meant to
            listen = step_number(lines[:-2], LISTEN)  # before the step it was killed at
            if listen is None:
                # Nothing may be acknowledged before the saved state is back and the server listens.
                assert writer.acks_by_life.get(kill_at, 0) == 0, f"start {kill_at} answered before it listened"
                kills["before listening"] += 1
                if any(line.split()[1] == "restore" for line in lines[:-2]):
                    kills["restoring"] += 1
            else:
                kills["serving"] += 1
        else:
            pytest.fail("the kill points never ran out")
        # And a crash at no step in particular, with the writer going full tilt.
        server = start(0, tmp_path / "last.progress")
        target = sum(writer.acks_by_life.values()) + 3 * LIVE_OBJECTS
        writer.go.set()
        poll_until(lambda: sum(writer.acks_by_life.values()) >= target, timeout=60, interval=0.01)
        server.send_signal(signal.SIGKILL)
        server.wait()
        writer.pause()
        server = start(0, tmp_path / "checked.progress")
        poll_until(ready_file.exists, timeout=60, interval=0.01)
        checked_total += _verify(client(port), writer)
        server.terminate()
        server.wait()
    finally:
        writer.stop.set()
        writer.go.set()
        thread.join(30)

    # The sweep went through the restore (with objects to restore) and through writes being made durable.
    assert kills["restoring"] >= LIVE_OBJECTS - 2 and kills["serving"] >= WRITE_STEPS_AFTER_READY - 2, kills
    assert sum(writer.acks_by_life.values()) > 3 * LIVE_OBJECTS and checked_total > LIVE_OBJECTS, writer.acks_by_life
