"""The process service of the local stack: ready file, early failure with the log tail, stop of a whole group."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataset_pipeline.process import ProcessService, StackError, group_alive, leader_alive
from tests.ports import free_port


class Toy(ProcessService):
    name = "toy"
    title = "the toy"
    port_option = "--toy-port"


def toy(tmp_path: Path, port: int = 0) -> Toy:
    return Toy(tmp_path / "toy.ready", tmp_path / "logs", port or free_port())


def test_a_process_that_dies_fails_the_wait_at_once_with_its_log_tail(tmp_path: Path) -> None:
    service = toy(tmp_path)
    process = service.start_process("worker", ["sh", "-c", "echo starting; echo 'no config found' >&2; exit 3"])
    started = time.monotonic()
    with pytest.raises(StackError) as raised:
        service.wait_until_ready({"worker": process}, lambda: False, timeout=60, interval=0.05)
    assert time.monotonic() - started < 30  # not the whole timeout
    message = str(raised.value)
    assert "the toy's worker stopped while starting" in message and "no config found" in message
    assert str(service.log_path("worker")) in message


def test_a_log_saying_the_address_is_in_use_names_the_port_and_the_option(tmp_path: Path) -> None:
    service = toy(tmp_path)
    process = service.start_process(
        service.name, ["sh", "-c", "echo 'OSError: [Errno 98] Address already in use'; exit 1"]
    )
    with pytest.raises(StackError, match=rf"the toy stopped while starting \(port {service.configured_port} is in use"):
        service.wait_until_ready({service.name: process}, lambda: False, timeout=60, interval=0.05)


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = toy(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(
            StackError, match=f"port {service.configured_port} is in use: choose another with --toy-port"
        ):
            service.check_port_free()


def test_a_wait_that_never_succeeds_says_so_after_its_timeout(tmp_path: Path) -> None:
    service = toy(tmp_path)
    process = service.start_process("worker", ["sleep", "30"])
    try:
        with pytest.raises(StackError, match=re.escape("the toy did not answer at http://127.0.0.1:")):
            service.wait_until_ready({"worker": process}, lambda: False, timeout=0.3, interval=0.05)
    finally:
        process.kill()
        process.wait()


def test_stop_ends_every_process_of_the_group_and_removes_the_ready_file(tmp_path: Path) -> None:
    service = toy(tmp_path)
    forks = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    process = service.start_process("worker", [sys.executable, "-c", forks])
    service.ready_file.write({"worker": process.pid}, service.configured_port)
    assert json.loads(service.ready_file.path.read_text()) == {"pids": {"worker": process.pid}, "port": service.port}
    assert service.running() is not None and service.pids() == {"worker": process.pid}

    service.stop()
    assert not group_alive(process.pid)  # the leader and the sleep it forked
    assert not service.ready_file.path.exists() and service.running() is None
    assert process.poll() is not None  # reaped, no zombie left behind


def test_a_group_whose_processes_have_all_exited_is_not_alive_before_they_are_reaped() -> None:
    """An orphan's zombie waits for init to reap it; `stack up` must not take it for a running service."""
    exited = subprocess.Popen(["true"], start_new_session=True)
    try:
        os.waitid(os.P_PID, exited.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert Path(f"/proc/{exited.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        os.killpg(exited.pid, 0)  # the group is still there for a signal...
        assert not group_alive(exited.pid)  # ...but nothing of it runs
    finally:
        exited.wait()
    running = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert group_alive(running.pid)
    finally:
        running.kill()
        running.wait()


def test_a_service_whose_leader_died_is_not_running_though_its_children_are(tmp_path: Path) -> None:
    """A daemon killed alone leaves its code servers running: the service is down, and stop ends them."""
    service = toy(tmp_path)
    child_pid_fifo = tmp_path / "child.pid"
    os.mkfifo(child_pid_fifo)  # opening it for reading waits until the leader has forked and says so
    says_child = f"open({str(child_pid_fifo)!r}, 'w').write(str(subprocess.Popen(['sleep', '300']).pid))"
    forks = f"import subprocess, time; {says_child}"
    process = service.start_process("leader", [sys.executable, "-c", forks + "; time.sleep(300)"])
    service.ready_file.write({"leader": process.pid}, service.configured_port)
    child_pid = int(child_pid_fifo.read_text())
    assert service.running() is not None

    process.kill()  # the leader alone: its child runs on in the group
    process.wait()
    assert group_alive(process.pid) and os.getpgid(child_pid) == process.pid
    assert not leader_alive(process.pid)
    assert service.running() is None and service.pids() == {}

    service.stop()  # what `stack up` does first with a service that is not running
    assert not group_alive(process.pid)


def _ignored_signals(pid: int) -> int:
    """The process's mask of ignored signals, as the kernel reports it."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)  # type: ignore[union-attr]


def _says_how_it_stopped(said: Path, ready: Path) -> list[str]:
    """A process that writes `terminated` to `said` when SIGTERM reaches it, and says on `ready` (a FIFO)
    when it waits for it. As a shell's trap, it takes no SIGTERM it was started ignoring."""
    script = (
        "import signal, sys\n"
        "def said(*_):\n"
        f"    open({str(said)!r}, 'w').write('terminated')\n"
        "    sys.exit(0)\n"
        "if signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:\n"
        "    signal.signal(signal.SIGTERM, said)\n"
        f"open({str(ready)!r}, 'w').write('waiting')\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    return [sys.executable, "-c", script]


def test_a_service_started_by_a_process_that_ignores_sigterm_still_stops_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ignored signal stays ignored across fork and exec: a service started from a test worker or
    a background shell that ignores SIGTERM would outlive `stack down` but for the reset."""
    import signal

    monkeypatch.setattr("dataset_pipeline.process.STOP_TIMEOUT_SECONDS", 300)
    said, ready = tmp_path / "said", tmp_path / "ready"
    os.mkfifo(ready)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        plain = subprocess.Popen(["sleep", "300"], start_new_session=True)
        service = toy(tmp_path)
        process = service.start_process("worker", _says_how_it_stopped(said, ready))
    finally:
        signal.signal(signal.SIGTERM, previous)
    term = 1 << (signal.SIGTERM - 1)
    try:
        assert _ignored_signals(plain.pid) & term, "the fault: a child of this process ignores SIGTERM"
        assert ready.read_text() == "waiting"
        assert not _ignored_signals(process.pid) & term, "the service's process takes SIGTERM"
        service.ready_file.write({"worker": process.pid}, service.configured_port)
        service.stop()
        assert not group_alive(process.pid)
        assert said.read_text() == "terminated", "stopped by SIGTERM, not by the SIGKILL after it"
    finally:
        plain.kill()
        plain.wait()


def test_stop_returns_only_once_a_group_that_ignores_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the SIGTERM wait runs out, SIGKILL: and stop waits for it to take effect before it returns."""
    import signal

    monkeypatch.setattr("dataset_pipeline.process.STOP_TIMEOUT_SECONDS", 0.5)
    service = toy(tmp_path)
    ready = tmp_path / "ignoring"
    os.mkfifo(ready)
    ignores = (
        "import signal, subprocess; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "child = subprocess.Popen(['sleep', '300']); "
        f"open({str(ready)!r}, 'w').write(str(child.pid))\n"
        "while True: signal.pause()"
    )
    process = service.start_process("worker", [sys.executable, "-c", ignores])
    child_pid = int(ready.read_text())  # the leader ignores SIGTERM now, and so does the child it started
    term = 1 << (signal.SIGTERM - 1)
    assert _ignored_signals(process.pid) & term and _ignored_signals(child_pid) & term
    service.ready_file.write({"worker": process.pid}, service.configured_port)
    service.stop()
    assert not group_alive(process.pid), "killed, and gone when stop returned"


def test_a_service_started_by_a_thread_that_blocks_sigterm_still_stops_on_it(tmp_path: Path) -> None:
    """A blocked signal is inherited across fork and exec as an ignored one is."""
    import signal

    said, ready = tmp_path / "said", tmp_path / "ready"
    os.mkfifo(ready)
    blocked_before = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    try:
        plain = subprocess.Popen(["sleep", "300"], start_new_session=True)
        service = toy(tmp_path)
        process = service.start_process("worker", _says_how_it_stopped(said, ready))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked_before)
    blocked = re.compile(r"^SigBlk:\s*([0-9a-f]+)$", re.MULTILINE)
    term = 1 << (signal.SIGTERM - 1)
    try:
        assert int(blocked.search(Path(f"/proc/{plain.pid}/status").read_text()).group(1), 16) & term  # type: ignore[union-attr]
        assert ready.read_text() == "waiting"
        service.ready_file.write({"worker": process.pid}, service.configured_port)
        service.stop()
        assert not group_alive(process.pid)
        assert said.read_text() == "terminated", "stopped by SIGTERM"
    finally:
        plain.kill()
        plain.wait()
