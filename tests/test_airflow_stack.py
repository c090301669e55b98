"""Airflow on the local stack, driven through the CLI: run --via airflow, loopback only, down."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.airflow_support import SharedStack
from tests.conftest import CALLER_CREDENTIALS, cli, environ_of, hermetic_environment
from tests.ports import free_port

pytestmark = pytest.mark.slow


def stack_processes(stack: SharedStack) -> list[psutil.Process]:
    """Every process the stack runs: each Airflow component with its children, and the S3 API."""
    status = stack.status()
    leaders = [int(pid) for pid in status["services"]["airflow"]["pids"].values()]
    leaders.append(int(json.loads((stack.root / "s3.ready").read_text())["pids"]["s3"]))
    found: list[psutil.Process] = []
    for pid in leaders:
        leader = psutil.Process(pid)
        found += [leader, *leader.children(recursive=True)]
    return found


def test_first_up_prints_a_generated_admin_password_kept_private(airflow_stack: SharedStack) -> None:
    info = airflow_stack.status()["services"]["airflow"]
    password_file = Path(info["password_file"])
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = json.loads(password_file.read_text())["admin"]
    assert password != "admin" and len(password) >= 16
    assert password in airflow_stack.first_up_output
    assert airflow_stack.status()["airflow_url"] == info["url"]
    assert info["url"].startswith("http://127.0.0.1:")

    again = airflow_stack.up()  # idempotent: same processes, password not shown again
    assert password not in again.stdout + again.stderr
    assert airflow_stack.status()["services"]["airflow"]["pids"] == info["pids"]


def test_run_via_airflow_publishes_a_version_named_after_the_airflow_run(airflow_stack: SharedStack) -> None:
    completed = cli("run", "--via", "airflow", "--records", "2", "--json", env=airflow_stack.env, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    version = json.loads(completed.stdout)
    assert version["rows_added"] == 2 and version["already_published"] is False
    newest = json.loads(cli("history", "--json", env=airflow_stack.env).stdout)[0]
    assert newest["commit"] == version["commit"]
    assert (newest["orchestrator"], newest["run_id"]) == ("airflow", version["run_id"])
    assert "push_data" in completed.stderr  # progress per task on the console


def test_a_chosen_run_id_is_the_airflow_run_id(airflow_stack: SharedStack) -> None:
    completed = cli("run", "--via", "airflow", "--run-id", "chosen-run-7", "--json", env=airflow_stack.env, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout)["run_id"] == "chosen-run-7"
    versions = json.loads(cli("history", "--json", env=airflow_stack.env).stdout)
    assert (versions[0]["orchestrator"], versions[0]["run_id"]) == ("airflow", "chosen-run-7")

    again = cli("run", "--via", "airflow", "--run-id", "chosen-run-7", "--json", env=airflow_stack.env, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["commit"] == versions[0]["commit"]  # the same run, not a new version
    assert json.loads(again.stdout)["already_published"] is True
    assert json.loads(cli("history", "--json", env=airflow_stack.env).stdout) == versions


def test_a_failed_task_is_reported_with_its_log_and_the_run_resumes(airflow_stack: SharedStack) -> None:
    origin = airflow_stack.root / "origin.git"
    away = origin.with_name("origin-away.git")
    origin.rename(away)  # a real fault: the origin is gone while the run pulls
    try:
        failed = cli("run", "--via", "airflow", "--run-id", "broken-run-1", env=airflow_stack.env, timeout=600)
    finally:
        away.rename(origin)
    assert failed.returncode == 1
    output = failed.stdout + failed.stderr
    assert "task pull_data failed" in output
    assert "origin.git" in output  # the git error, from the task's log tail
    assert "broken-run-1 ended failed" in output

    resumed = cli("run", "--via", "airflow", "--run-id", "broken-run-1", "--json", env=airflow_stack.env, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    newest = json.loads(cli("history", "--json", env=airflow_stack.env).stdout)[0]
    assert (newest["orchestrator"], newest["run_id"]) == ("airflow", "broken-run-1")


def sockets_of(process: psutil.Process) -> list[Any]:
    """A process's internet sockets; none once it has exited (a short-lived child of a stack process)."""
    try:
        return list(process.net_connections(kind="inet"))
    except psutil.NoSuchProcess:
        return []


def test_nothing_listens_beyond_loopback(airflow_stack: SharedStack) -> None:
    processes = stack_processes(airflow_stack)
    assert len(processes) >= 5
    listening = [
        (process.pid, conn.laddr)
        for process in processes
        for conn in sockets_of(process)
        if conn.status == psutil.CONN_LISTEN
    ]
    ports = {address.port for _, address in listening}
    assert int(airflow_stack.env["DATASET_PIPELINE_AIRFLOW_PORT"]) in ports
    assert int(airflow_stack.env["DATASET_PIPELINE_S3_PORT"]) in ports
    assert [(pid, address) for pid, address in listening if address.ip != "127.0.0.1"] == []


def test_no_stack_process_inherits_the_callers_credentials(airflow_stack: SharedStack) -> None:
    processes = stack_processes(airflow_stack)
    assert len(processes) >= 5
    leaked = {
        (process.pid, name)
        for process in processes
        for name, value in CALLER_CREDENTIALS.items()
        if value in environ_of(process.pid)
    }
    assert leaked == set()
    assert CALLER_CREDENTIALS["GITHUB_TOKEN"] in airflow_stack.env.values()  # they were there to leak


def test_down_stops_every_process_and_up_brings_airflow_back(airflow_stack: SharedStack) -> None:
    versions = json.loads(cli("history", "--json", env=airflow_stack.env).stdout)
    processes = stack_processes(airflow_stack)
    airflow_stack.down()
    survivors = [process.pid for process in processes if process.is_running() and process.status() != "zombie"]
    assert survivors == []
    assert airflow_stack.status()["services"]["airflow"]["running"] is False

    airflow_stack.up()  # the UI test goes on with the same stack and its history
    assert airflow_stack.status()["services"]["airflow"]["running"] is True
    assert json.loads(cli("history", "--json", env=airflow_stack.env).stdout) == versions  # its history kept


def processes_with_airflow_home_under(folder: Path) -> list[int]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("AIRFLOW_HOME", "").startswith(str(folder)):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_up_on_a_taken_port_fails_clearly_and_leaves_no_airflow_running(tmp_path: Path, session_home: Path) -> None:
    env = hermetic_environment(session_home)
    env.update(
        DATASET_PIPELINE_STACK_DIR=str(tmp_path / "stack"),
        DATASET_PIPELINE_S3_PORT=str(free_port()),
        DATASET_PIPELINE_SERVICES="airflow",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["DATASET_PIPELINE_AIRFLOW_PORT"] = str(port)
        try:
            up = cli("stack", "up", "--seed-rows", "50", env=env, timeout=600)
            assert up.returncode == 1, up.stdout + up.stderr
            assert f"port {port} is in use" in up.stderr
            assert processes_with_airflow_home_under(tmp_path) == []
        finally:
            cli("stack", "down", env=env)
