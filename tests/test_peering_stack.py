"""Peered orchestrators on the full local stack: Dagster sees every Airflow run, Airflow sees every version.

Everything is read back through the other orchestrator's public API: Dagster's GraphQL for what it
holds of Airflow's runs, Airflow's REST API for the `dataset` Asset's events and the verifying DAG.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shared_tasks.project.names import NAMES
from tests.conftest import appended_record, cli, foreign_commit, foreign_commits
from tests.peering_support import (
    STEP_ASSETS,
    VERIFY_DAG,
    VERIFY_TASK,
    airflow_client,
    dagster_client,
    dataset_events,
    eventually,
    every_step_reported,
    materializations_of_airflow_run,
    sensor_tick_after,
    stack_settings,
    stack_status,
    verify_run_held,
    wait_until_verified,
)

pytestmark = pytest.mark.slow


def run_via(env: dict[str, str], via: str) -> dict[str, Any]:
    completed = cli("run", "--via", via, "--json", env=env, timeout=600)
    assert completed.returncode == 0, completed.stderr
    run: dict[str, Any] = json.loads(completed.stdout)
    return run


def reported_once(env: dict[str, str], airflow_run_id: str) -> dict[str, list[dict[str, Any]]]:
    return every_step_reported(dagster_client(env), airflow_run_id)


def test_an_airflow_run_is_in_dagster_once_per_step_with_its_record_and_its_checks(
    full_stack_env: dict[str, str],
) -> None:
    run = run_via(full_stack_env, "airflow")
    found = reported_once(full_stack_env, run["run_id"])
    assert {asset: len(events) for asset, events in found.items()} == dict.fromkeys(STEP_ASSETS, 1)
    (published,) = found["published_dataset"]
    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    (version,) = [v for v in history if v["run_id"] == run["run_id"]]
    assert (published["md5"], published["commit"]) == (version["md5"], version["commit"])
    assert published["tags"]["dagster/data_version"] == version["md5"]
    assert published["dagster_run_id"] == ""  # reported by the sensor, not a run of Dagster's
    assert published["airflow_run_url"].endswith(f"/dags/dataset_pipeline/runs/{quote(run['run_id'], safe='')}")

    client = dagster_client(full_stack_env)
    checked: set[str] = set()

    def checks_of_this_version() -> dict[str, bool | None] | None:
        names = ("schema_valid", "rows_grew_by_records_added", "object_on_s3")
        passed = {}
        for name in names:
            ours = [e for e in client.check_executions(["published_dataset"], name) if e.run_id in checked]
            if not ours or ours[0].status not in ("SUCCEEDED", "FAILED"):
                return None
            passed[name] = ours[0].passed
        return passed

    checked = eventually(
        lambda: (
            {r.run_id for r in client.runs_with_tags({"dataset-pipeline/checked-commit": version["commit"]})} or None
        ),
        "a run of the checks of the Airflow-made version",
    )
    assert eventually(checks_of_this_version, "the checks of the Airflow-made version") == {
        "schema_valid": True,
        "rows_grew_by_records_added": True,
        "object_on_s3": True,
    }


def test_every_version_is_announced_once_and_verified_once_even_in_bursts_and_while_a_verify_run_runs(
    full_stack_env: dict[str, str], tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    made = {
        "direct": run_via(full_stack_env, "direct")["commit"],
        "dagster": run_via(full_stack_env, "dagster")["commit"],
    }
    settings = stack_settings(full_stack_env, tmp_path / "work")
    # Three versions by hand in one push: the watcher finds them in one poll and announces them together.
    burst = foreign_commits(settings, tmp_path, [appended_record(700_001 + n) for n in range(3)])
    made.update({f"by hand {n}": commit for n, commit in enumerate(burst)})
    with airflow_client(full_stack_env) as client:

        def announced() -> list[dict[str, Any]] | None:
            events = [event for event in dataset_events(client) if event.get("commit") in made.values()]
            return events if {event["commit"] for event in events} == set(made.values()) else None

        events = eventually(announced, "the dataset Asset's events of the versions made outside Airflow")
        assert sorted(event["commit"] for event in events) == sorted(made.values())  # once each
        by_commit = {event["commit"]: event for event in events}
        assert by_commit[made["dagster"]]["orchestrator"] == "dagster"
        assert by_commit[made["direct"]]["orchestrator"] == "direct"
        assert {by_commit[commit]["orchestrator"] for commit in burst} == {None}
        assert by_commit[burst[0]]["author"] == "A. Person <person@example.invalid>"
        assert all({"md5", "rows", "run_id"} <= set(event) for event in events)

        verified_by = wait_until_verified(client, made.values(), started)
        assert {name: len(verified_by[commit]) for name, commit in made.items()} == dict.fromkeys(made, 1)
        # The race was on: Airflow linked some of the burst's events to no run, and they were verified all the same.
        linked = {
            str(event.extra.get("payload", {}).get("commit"))
            for run_ids in verified_by.values()
            for run_id in run_ids
            for event in client.upstream_asset_events(VERIFY_DAG, run_id)
        }
        assert set(burst) - linked, f"every event of the burst had a run of its own: {linked}"

        # A version Airflow's own DAG publishes while a verify run is running.
        with verify_run_held(client) as held:
            own = run_via(full_stack_env, "airflow")["commit"]
            own_event = eventually(
                lambda: next((e for e in dataset_events(client) if e.get("commit") == own), None),
                "the outlet event of Airflow's own version",
            )
            assert client.run_state(VERIFY_DAG, held.dag_run_id) == "running"
        assert held.start_date is not None and own_event["at"] > held.start_date
        assert own_event["source_dag_id"] == NAMES.dag_id
        made["airflow"] = own
        verified_by = wait_until_verified(client, made.values(), started)
        assert {name: len(verified_by[commit]) for name, commit in made.items()} == dict.fromkeys(made, 1)

        # The next chance of a second verification: one more run, by hand, finds nothing left to verify.
        extra_run, _ = client.trigger(VERIFY_DAG, {}, None)
        eventually(
            lambda: (
                client.run_state(VERIFY_DAG, extra_run)
                if client.run_state(VERIFY_DAG, extra_run) in ("success", "failed")
                else None
            ),
            "the extra verify run",
        )
        assert client.return_value(VERIFY_DAG, extra_run, VERIFY_TASK) == []
        assert wait_until_verified(client, made.values(), started) == verified_by


def test_a_version_whose_data_left_the_remote_fails_verification_naming_its_commit(
    full_stack_env: dict[str, str], tmp_path: Path
) -> None:
    from dataset_pipeline.s3server import s3_client

    settings = stack_settings(full_stack_env, tmp_path / "work")
    status = stack_status(full_stack_env)
    remote = s3_client(status["s3_endpoint"])
    gone = foreign_commit(settings, tmp_path, appended_record(700_101))
    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    (version,) = [v for v in history if v["commit"] == gone]
    key = f"datasets/files/md5/{version['md5'][:2]}/{version['md5'][2:]}"
    bucket = status["bucket"]
    body = remote.get_object(Bucket=bucket, Key=key)["Body"].read()
    remote.delete_object(Bucket=bucket, Key=key)
    try:
        with airflow_client(full_stack_env) as client:

            def failed_run() -> str | None:
                for run in client.dag_runs(VERIFY_DAG, order_by="-run_after"):
                    if run.state == "failed":
                        task = client.task_states(VERIFY_DAG, run.dag_run_id)["verify_versions"]
                        text = "\n".join(client.log_tail(VERIFY_DAG, run.dag_run_id, task, lines=60))
                        if gone in text:
                            return text
                return None

            log = eventually(failed_run, f"a failed {VERIFY_DAG} run naming the commit")
            assert "did not verify" in log
    finally:
        remote.put_object(Bucket=bucket, Key=key, Body=body)


def test_each_airflow_task_instance_is_reported_once_across_a_dagster_restart_and_airflow_downtime(
    full_stack_env: dict[str, str],
) -> None:
    first = run_via(full_stack_env, "airflow")["run_id"]
    reported_once(full_stack_env, first)

    daemon = stack_status(full_stack_env)["services"]["dagster"]["pids"]["daemon"]
    os.killpg(int(daemon), signal.SIGKILL)  # the daemon dies; `stack up` starts Dagster again
    assert cli("stack", "up", env=full_stack_env, timeout=600).returncode == 0
    second = run_via(full_stack_env, "airflow")["run_id"]
    reported_once(full_stack_env, second)

    api_server = int(stack_status(full_stack_env)["services"]["airflow"]["pids"]["api-server"])
    stopped_at = time.time()
    os.killpg(api_server, signal.SIGSTOP)  # Airflow's API answers nothing until the sensor has failed for it
    try:
        failed_tick = sensor_tick_after(dagster_client(full_stack_env), stopped_at, failed=True)
    finally:
        os.killpg(api_server, signal.SIGCONT)
    assert failed_tick.error, failed_tick
    third = run_via(full_stack_env, "airflow")["run_id"]
    reported_once(full_stack_env, third)

    client = dagster_client(full_stack_env)
    for run_id in (first, second, third):
        found = materializations_of_airflow_run(client, run_id)
        assert {asset: len(events) for asset, events in found.items()} == dict.fromkeys(STEP_ASSETS, 1), run_id
