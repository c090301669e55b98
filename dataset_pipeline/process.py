"""A service of the local stack made of processes: started, waited for, found again, stopped.

Each process runs in its own session (so its own process group) with its log file in the stack
folder; a ready file holds the leaders' pids and the service's port, written atomically, so a
later command finds the running service and `stack down` stops every process it forked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator_clients.retrying import poll_until
from shared_tasks.files import write_atomically

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 30
LOG_TAIL_LINES = 3


class StackError(RuntimeError):
    """The stack cannot be brought to the asked state; the message says why."""


@dataclass(frozen=True)
class Ready:
    """What a ready file says: the process group leaders by role, and the port the service listens on."""

    pids: dict[str, int]
    port: int


class ReadyFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Ready | None:
        try:
            data = json.loads(self.path.read_text())
            pids = data.get("pids") or ({"s3": data["pid"]} if "pid" in data else {})  # an S3 file before 0.1
            return Ready({str(role): int(pid) for role, pid in pids.items()}, int(data["port"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def write(self, pids: Mapping[str, int], port: int) -> None:
        write_ready_file(self.path, pids, port)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# A person's shell may hold credentials (a Git token, AWS keys): no stack process needs them. The
# stack's origin is a local repository, its S3 API takes the stack's own fake keys, and each
# service adds back the one secret of its own it needs (Airflow's JWT key, Dagster's Airflow login).
_CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|^GIT_?SYNC_|^AWS_(ACCESS_KEY_ID|PROFILE)$")


def process_environment(**needed: str) -> dict[str, str]:
    """The environment of a stack process: this one's without any credential, plus what it needs."""
    inherited = {key: value for key, value in os.environ.items() if not _CREDENTIAL_NAME.search(key)}
    return {**inherited, **needed}


def write_ready_file(path: Path, pids: Mapping[str, int], port: int) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    write_atomically(path, json.dumps({"pids": dict(pids), "port": port}))


class ProcessService:
    """The process side of a stack service; subclasses say what to start and how it answers."""

    name: str  # in the stack's status and the CLI's --services
    title: str  # in messages: "the S3 API", "Airflow"
    port_option: str  # the CLI option choosing the port

    def __init__(self, ready_file: Path, log_dir: Path, configured_port: int) -> None:
        self.ready_file = ReadyFile(ready_file)
        self.log_dir = log_dir
        self.configured_port = configured_port

    # what runs -------------------------------------------------------------------------------
    def running(self) -> Ready | None:
        """The ready file, if every leader it names still runs.

        A service is judged by its leaders, not by their groups: a daemon killed alone leaves the
        code servers it started running in its group, and such a service is down (`stack up`
        stops what is left of it and starts it again), not "running".
        """
        ready = self.ready_file.read()
        if ready is None or not ready.pids:
            return None
        return ready if all(leader_alive(pid) for pid in ready.pids.values()) else None

    @property
    def port(self) -> int:
        ready = self.running()
        return ready.port if ready else self.configured_port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def pids(self) -> dict[str, int]:
        ready = self.running()
        return ready.pids if ready else {}

    def log_path(self, role: str) -> Path:
        return self.log_dir / f"{role}.log"

    # starting --------------------------------------------------------------------------------
    def start_process(
        self,
        role: str,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> subprocess.Popen[bytes]:
        """`command` in a session of its own, its output appended to its log, the stop signals at their
        defaults (`preexec_fn` runs after that)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(role).open("ab") as log:
            return subprocess.Popen(
                list(command),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_with_default_signals(preexec_fn),
            )

    def check_port_free(self) -> None:
        """Fail before starting anything: a taken port can leave a server up but deaf."""
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no conflict
            try:
                probe.bind((LOOPBACK, self.configured_port))
            except OSError:
                raise StackError(self._port_in_use()) from None

    def wait_until_ready(
        self,
        processes: Mapping[str, subprocess.Popen[bytes]],
        ready: Callable[[], bool],
        timeout: float,
        interval: float = 0.5,
        timeout_message: str | None = None,
    ) -> None:
        """Until `ready()`; a process that exits meanwhile fails the wait with its log's last lines."""

        def check() -> bool:
            for role, process in processes.items():
                if process.poll() is not None:
                    raise StackError(self._died(role))
            return ready()

        def timed_out() -> Exception:
            return StackError(timeout_message or f"{self.title} did not answer at {self.url} within {timeout:.0f} s")

        poll_until(check, timeout=timeout, interval=interval, timed_out=timed_out)

    def _died(self, role: str) -> str:
        tail = self.log_tail(role)
        hint = f" ({self._port_in_use()})" if "address already in use" in tail.lower() else ""
        who = self.title if role == self.name else f"{self.title}'s {role}"
        return f"{who} stopped while starting{hint}: {tail}; see {self.log_path(role)}"

    def _port_in_use(self) -> str:
        return f"port {self.configured_port} is in use: choose another with {self.port_option}"

    def log_tail(self, role: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path(role).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    # stopping --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Every process group of the ready file: SIGTERM to all at once, wait, then SIGKILL."""
        ready = self.ready_file.read()
        if ready is not None:
            stop_process_groups(list(ready.pids.values()))
        self.ready_file.remove()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_signals() -> None:
    """In the child: a stop signal its starter ignores or blocks (a background shell, a test runner's
    worker) is ignored or blocked in every process it starts too, and SIGTERM would no longer stop
    the service."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _with_default_signals(then: Callable[[], None] | None) -> Callable[[], None]:
    if then is None:
        return default_signals

    def both() -> None:
        default_signals()
        then()

    return both


def leader_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not) and still leads the process group it was started to lead."""
    import psutil  # the local stack's dependency, not the CLI's

    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD) and os.getpgid(pid) == pid
    except (psutil.NoSuchProcess, ProcessLookupError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not: it has exited and waits only
    for its parent to reap it, which for an orphan is the machine's init, in its own time."""
    if pgid <= 0:
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _group_has_a_running_member(pgid)


def _group_has_a_running_member(pgid: int) -> bool:
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True  # no /proc: the signal's answer is all there is
    if _runs_in_group(proc / str(pgid), pgid):
        return True  # the leader itself, as for every running service: no scan needed
    return any(_runs_in_group(entry, pgid) for entry in proc.iterdir() if entry.name.isdigit())


def _runs_in_group(entry: Path, pgid: int) -> bool:
    try:
        state, _parent, group = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, ValueError):
        return False  # gone meanwhile
    return int(group) == pgid and state not in ("Z", "X")


def _reap(pid: int) -> bool:
    """True when `pid` has exited: our child is reaped, another process is simply gone."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not leader_alive(pid)  # not ours: exited once it no longer runs (a zombie waits for init)
    return finished == pid


def stop_process_groups(pgids: Sequence[int]) -> None:
    """The groups and everything their leaders forked (workers, code servers, task runners)."""
    for pgid in pgids:  # all at once: the services stop in parallel
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    leaders = [pgid for pgid in pgids if pgid > 0]

    def all_stopped() -> bool:
        exited = [_reap(pgid) for pgid in leaders]  # reap every leader that is our child
        return all(exited) and not any(group_alive(pgid) for pgid in leaders)

    with contextlib.suppress(StackError):
        poll_until(all_stopped, timeout=STOP_TIMEOUT_SECONDS, interval=0.1, timed_out=lambda: StackError("stop"))
    for pgid in leaders:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    # SIGKILL takes effect when each process is next scheduled: return once every one has exited.
    with contextlib.suppress(StackError):
        poll_until(all_stopped, timeout=STOP_TIMEOUT_SECONDS, interval=0.05, timed_out=lambda: StackError("kill"))
