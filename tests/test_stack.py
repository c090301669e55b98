"""The embedded local stack through the CLI, as a user drives it."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli, runs
from tests.ports import free_port

# Real Git origins, a real S3 API and real DVC in every test: the fast lane (-m "not slow") leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env["DATASET_PIPELINE_STACK_DIR"] = str(tmp_path / "stack")
    env["DATASET_PIPELINE_S3_PORT"] = str(free_port())
    env["DATASET_PIPELINE_SERVICES"] = "none"  # the orchestrators have tests of their own
    yield env
    cli("stack", "down", env=env)


def status(env: dict[str, str]) -> dict[str, object]:
    completed = cli("stack", "status", "--json", env=env)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_up_run_down_up_keeps_every_version(stack_env: dict[str, str], tmp_path: Path) -> None:
    up = cli("stack", "up", "--seed-rows", "300", env=stack_env)
    assert up.returncode == 0, up.stderr
    first = status(stack_env)
    assert first["running"] is True
    assert {"git_url", "s3_endpoint", "bucket", "env"} <= set(first)
    assert str(first["s3_endpoint"]).startswith("http://127.0.0.1:")
    pid_file = Path(stack_env["DATASET_PIPELINE_STACK_DIR"]) / "s3.ready"
    pid = json.loads(pid_file.read_text())["pids"]["s3"]
    assert runs(pid)

    again = cli("stack", "up", env=stack_env)  # idempotent: same server, same origin
    assert again.returncode == 0, again.stderr
    assert json.loads(pid_file.read_text())["pids"]["s3"] == pid

    for _ in range(2):
        run = cli("run", "--json", env=stack_env)
        assert run.returncode == 0, run.stderr
    versions = json.loads(cli("history", "--json", env=stack_env).stdout)
    assert [v["orchestrator"] for v in versions] == ["direct", "direct", "seed"]

    down = cli("stack", "down", env=stack_env)
    assert down.returncode == 0, down.stderr
    assert status(stack_env)["running"] is False
    assert not pid_file.exists()
    assert not runs(pid)

    assert cli("stack", "up", env=stack_env).returncode == 0
    for version in versions:
        verified = cli("verify", "--json", version["commit"], env=stack_env)
        assert verified.returncode == 0, verified.stderr + verified.stdout
        assert json.loads(verified.stdout)["actual_md5"] == version["md5"]


@pytest.mark.slow
def test_a_plain_git_clone_and_dvc_pull_reach_the_stack_with_its_env(stack_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    assert cli("stack", "up", "--seed-rows", "200", env=stack_env).returncode == 0
    info = status(stack_env)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(info["git_url"]), str(clone)], check=True)
    env = {**stack_env, **info["env"]}  # type: ignore[dict-item]
    pulled = subprocess.run(
        [str(Path(sys.executable).with_name("dvc")), "pull", "--quiet"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0, pulled.stderr
    lines = (clone / "data" / "employee_attrition.csv").read_text().splitlines()
    assert len(lines) == 201
    assert "endpointurl" not in (clone / ".dvc" / "config").read_text()


def test_a_busy_port_is_reported_clearly(stack_env: dict[str, str]) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(stack_env["DATASET_PIPELINE_S3_PORT"])))
        blocker.listen()
        up = cli("stack", "up", "--seed-rows", "50", env=stack_env)
    assert up.returncode == 1
    assert "is in use" in up.stderr and "--s3-port" in up.stderr


def test_commands_without_settings_or_stack_say_what_to_do(stack_env: dict[str, str]) -> None:
    completed = cli("history", env=stack_env)
    assert completed.returncode == 1
    assert "dataset-pipeline stack up" in completed.stderr


def test_an_unknown_service_is_refused_by_name(stack_env: dict[str, str]) -> None:
    up = cli("stack", "up", "--services", "airflow,prefect", env=stack_env)
    assert up.returncode == 1
    assert "unknown service(s) prefect" in up.stderr


def test_run_via_an_unknown_orchestrator_is_refused(stack_env: dict[str, str]) -> None:
    completed = cli("run", "--via", "luigi", env=stack_env)
    assert completed.returncode == 1
    assert "--via must be direct, airflow or dagster" in completed.stderr


@pytest.mark.slow
def test_a_partitioned_stack_and_a_migrated_one_run_in_their_layout(stack_env: dict[str, str], tmp_path: Path) -> None:
    up = cli("stack", "up", "--seed-rows", "300", "--layout", "partitioned", env=stack_env)
    assert up.returncode == 0, up.stderr
    ran = cli("run", "--json", env=stack_env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["md5"].endswith(".dir")

    single_env = {**stack_env, "DATASET_PIPELINE_STACK_DIR": str(tmp_path / "single")}
    single_env["DATASET_PIPELINE_S3_PORT"] = str(free_port())
    try:
        assert cli("stack", "up", "--seed-rows", "300", env=single_env).returncode == 0
        migrated = cli("migrate", "--part-rows", "100", "--json", env=single_env)
        assert migrated.returncode == 0, migrated.stderr
        assert json.loads(migrated.stdout)["parts"] == 3
        after = cli("run", "--json", env=single_env)  # no layout setting: the stack reads the origin's
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout)["rows"] == 301
        assert json.loads(after.stdout)["md5"].endswith(".dir")
    finally:
        cli("stack", "down", env=single_env)
