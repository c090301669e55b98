"""Both orchestrators and direct runs on one stack: the comparison, and everyone publishing at once.

One stack (S3 API, origin, Airflow, Dagster) serves the module; each test reads what it made
from history by run id, so the tests do not depend on each other's versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from dataset_pipeline.compare_runners import RUNNERS, STEP_NAMES
from dataset_pipeline.run_parts import PARTS
from tests.conftest import REPO_ROOT, cli
from tests.team_project import write_project

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_demo_publishes_each_pipeline_directly_and_through_each_orchestrator_and_every_version_verifies(
    full_stack_env: dict[str, str], tmp_path: Path
) -> None:
    before = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    completed = cli("demo", env=full_stack_env, timeout=900)
    assert completed.returncode == 0, completed.stderr
    assert "demo complete: every version verifies" in completed.stdout

    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    made = history[: len(history) - len(before)]
    assert [v["orchestrator"] for v in made] == ["dagster", "airflow", "direct", "direct"]
    assert all(v["rows_added"] == 1 for v in made)
    # The example the stack serves beside it: adopted from its seed, then the same four runs, merged.
    example = json.loads(cli("history", "--json", "--pipeline", "station_readings", env=full_stack_env).stdout)
    assert [v["orchestrator"] for v in example] == ["dagster", "airflow", "direct", "direct", "adopt"], example
    assert all(v["rows_updated"] >= 1 for v in example[:4]), "each run's late corrections updated rows"
    verified = [line for line in completed.stdout.splitlines() if "verify" in line and line.startswith("✓")]
    assert {line.split()[2] for line in verified} == {v["commit"][:12] for v in history + example}
    assert "✗" not in completed.stdout
    served = json.loads(cli("stack", "status", "--json", env=full_stack_env).stdout)["project_file"]
    assert served == str(REPO_ROOT / "examples" / "station_readings" / "dataset-pipeline.toml")

    # Another project while the orchestrators serve this one, or a broken one: refused, naming it, nothing stopped.
    other = write_project(tmp_path / "other")
    refused = cli("stack", "up", "--project", str(other), env=full_stack_env)
    assert refused.returncode == 1 and "already run serving" in refused.stderr and str(other) in refused.stderr
    found_here = cli("stack", "up", env=full_stack_env, cwd=other.parent)  # the current folder's project
    assert found_here.returncode == 1 and str(other) in found_here.stderr, found_here.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "dataset-pipeline.toml").write_text("[[pipeline]]\nname = 'x'\n")
    broken = cli("stack", "up", "--project", str(tmp_path / "broken"), env=full_stack_env)
    assert broken.returncode == 1 and "dataset-pipeline.toml" in broken.stderr, broken.stderr
    status = json.loads(cli("stack", "status", "--json", env=full_stack_env).stdout)
    assert status["project_file"] == served and all(s["running"] for s in status["services"].values())


@pytest.mark.slow
def test_a_tiny_comparison_reports_exactly_the_runs_it_made(full_stack_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    cutover_before = cli("cutover", env=full_stack_env).stdout
    completed = cli("compare", "--runs", "1", "--out", str(out), "--json", env=full_stack_env, timeout=1500)
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    assert json.loads((out / "results.json").read_text()) == printed
    assert cli("cutover", env=full_stack_env).stdout == cutover_before  # put back as it was

    measures = {m["runner"]: m for m in printed["measures"]}
    assert list(measures) == list(RUNNERS) and all(m["ok"] for m in measures.values())
    for measure in measures.values():
        assert set(measure["step_seconds"]) == set(STEP_NAMES)
        assert 0 < sum(measure["step_seconds"].values()) <= measure["seconds"]
        parts = measure["parts"]
        assert set(parts["parts"]) == set(PARTS) and set(parts["steps"]) == set(STEP_NAMES)
        # every second of the run is in one part (each rounded to 1 ms, each step's process start read to 10 ms)
        assert sum(parts["parts"].values()) == pytest.approx(measure["seconds"], abs=0.05)
        assert all(value >= 0 for value in parts["parts"].values()) and parts["parts"]["work"] > 0
    for name in ("airflow", "dagster"):  # a process per step: each step starts one, and pays for it
        assert all(step["startup"] > 0.1 for step in measures[name]["parts"]["steps"].values()), name
    in_process = measures["dagster-in-process"]["parts"]["steps"]
    assert in_process["modify_data"]["startup"] < in_process["pull_data"]["startup"]  # the run's process, reused
    for summary in printed["summaries"]:
        measure = measures[summary["runner"]]
        assert summary["successes"] == summary["runs"] == 1
        assert summary["end_to_end"]["median"] == summary["end_to_end"]["low"] == measure["seconds"]
        assert {name: spread["median"] for name, spread in summary["steps"].items()} == measure["step_seconds"]
        assert summary["peak_rss_mb"] >= summary["idle_rss_mb"] > 0
        assert (
            summary["isolation"] and {k: v["median"] for k, v in summary["parts"].items()} == measure["parts"]["parts"]
        )
    overheads = {s["runner"]: s["overhead_seconds"] for s in printed["summaries"]}
    assert overheads["direct"] == 0

    versions = printed["versions"]
    orchestrator = {"direct": "direct", "dagster": "dagster", "dagster-in-process": "dagster"}
    assert {(v["orchestrator"], v["run_id"], v["commit"]) for v in versions} == {
        (orchestrator.get(runner, "airflow"), m["run_id"], m["commit"]) for runner, m in measures.items()
    }
    steps_by = {v["run_id"]: v["steps_by"] for v in versions}
    assert steps_by[measures["airflow→dagster:all"]["run_id"]] == dict.fromkeys(STEP_NAMES, "dagster")
    assert steps_by[measures["airflow→dagster:modify_data"]["run_id"]]["modify_data"] == "dagster"
    assert steps_by[measures["airflow"]["run_id"]] is None  # nothing cut over: no step was Dagster's
    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    assert [v["commit"] for v in history[: len(RUNNERS)]] == [v["commit"] for v in versions]

    report = (out / "report.md").read_text()
    assert all(m["run_id"] in report for m in measures.values())
    assert f"{measures['airflow']['seconds']:.2f}" in report
    assert all(summary["isolation"] in report for summary in printed["summaries"])
    for plot in ("steps.png", "parts.png"):
        assert (out / plot).read_bytes().startswith(PNG_MAGIC)
        assert f'<img src="{plot}"' in (out / "report.html").read_text()


def test_compare_without_a_running_stack_says_how_to_start_it(tmp_path: Path) -> None:
    env: dict[str, Any] = {**os.environ, "DATASET_PIPELINE_STACK_DIR": str(tmp_path / "none")}
    completed = cli("compare", "--runs", "1", env=env)
    assert completed.returncode == 1
    assert "stack is not running" in completed.stderr and "stack up" in completed.stderr


def test_compare_names_the_runners_when_asked_for_one_it_does_not_have(tmp_path: Path) -> None:
    env: dict[str, Any] = {**os.environ, "DATASET_PIPELINE_STACK_DIR": str(tmp_path / "none")}
    completed = cli("compare", "--runner", "airflow", "--runner", "prefect", env=env)
    assert completed.returncode == 1
    assert "unknown runner 'prefect'" in completed.stderr and "airflow->dagster:all" not in completed.stderr
    assert "airflow→dagster:all" in completed.stderr


# Everyone at once --------------------------------------------------------------------------

WRITERS = (("direct", 3), ("airflow", 3), ("dagster", 2))


def _stack_s3(env: dict[str, str]) -> Any:
    from dataset_pipeline.s3server import s3_client

    status = json.loads(cli("stack", "status", "--json", env=env).stdout)
    return s3_client(status["s3_endpoint"]), status["bucket"]


def _keys(client: Any, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@pytest.mark.slow
def test_eight_runs_at_once_from_three_runners_lose_nothing(full_stack_env: dict[str, str], tmp_path: Path) -> None:
    client, bucket = _stack_s3(full_stack_env)
    objects_before = _keys(client, bucket)
    rows_before = json.loads(cli("history", "--json", env=full_stack_env).stdout)[0]["rows"]
    launches = [(runner, records) for runner, count in WRITERS for records in range(1, count + 1)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "dataset_pipeline.cli", "run", "--json", "--via", runner, "--records", str(n)],
            env=full_stack_env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for runner, n in launches
    ]
    results = []
    for (runner, _), process in zip(launches, processes, strict=True):
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{runner}: {stderr[-2000:]}"
        results.append((runner, json.loads(stdout)))

    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    made = {r["run_id"]: runner for runner, r in results}
    assert {v["run_id"]: v["orchestrator"] for v in history if v["run_id"] in made} == made
    assert history[0]["rows"] == rows_before + sum(n for _, n in launches)
    for commit in {r["commit"] for _, r in results}:
        verified = cli("verify", commit, "--json", env=full_stack_env)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    version_objects = {f"datasets/files/md5/{r['md5'][:2]}/{r['md5'][2:]}" for _, r in results}
    orphans = _keys(client, bucket) - objects_before - version_objects
    turns = sorted((r["had_turn"], r["attempts"]) for _, r in results)
    print(f"8 writers: (had its turn, attempts) {turns}, orphan objects {len(orphans)}")
    # Publishers that all take turns upload once each. One whose wait outlasted the lease (a slow
    # machine) goes ahead without its turn, and it or another may then need a second attempt: nothing
    # is lost either way (the checks above), so only the first case is a claim about attempts.
    assert all(had_turn is not None and attempts is not None for had_turn, attempts in turns), turns
    if all(had_turn for had_turn, _ in turns):
        assert {attempts for _, attempts in turns} == {1}, turns
    assert orphans == set()


# The S3 API goes away mid-run -----------------------------------------------------------------


# How each runner's progress shows that a step failed and is being tried again.
RETRY_MARK = {"airflow": "up_for_retry", "dagster": "(try 2)"}


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["airflow", "dagster"])
def test_s3_down_mid_run_and_the_orchestrators_retry_recovers(full_stack_env: dict[str, str], runner: str) -> None:
    stack_dir = Path(full_stack_env["DATASET_PIPELINE_STACK_DIR"])
    s3 = json.loads((stack_dir / "s3.ready").read_text())
    rows_before = json.loads(cli("history", "--json", env=full_stack_env).stdout)[0]["rows"]
    server = psutil.Process(s3["pids"]["s3"])
    server.terminate()
    server.wait(timeout=30)  # it has exited: S3 is down from here on
    run = subprocess.Popen(
        [sys.executable, "-m", "dataset_pipeline.cli", "run", "--json", "--via", runner, "--records", "2"],
        env=full_stack_env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    progress: list[str] = []
    retried = threading.Event()  # a step has failed for want of S3 and the orchestrator tries it again

    def read_progress() -> None:
        for line in iter(run.stderr.readline, ""):
            progress.append(line)
            if RETRY_MARK[runner] in line:
                retried.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    retried.wait(timeout=300)
    assert cli("stack", "up", env=full_stack_env).returncode == 0  # the S3 API is back, objects restored
    stdout = run.stdout.read()
    assert run.wait(timeout=600) == 0, "".join(progress)[-3000:]
    reader.join(10)
    run.stdout.close()
    run.stderr.close()
    version = json.loads(stdout)
    assert any(RETRY_MARK[runner] in line for line in progress), "".join(progress)

    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    assert [v["run_id"] for v in history].count(version["run_id"]) == 1
    assert history[0]["commit"] == version["commit"]
    assert history[0]["rows"] == rows_before + 2  # applied once, whatever the retries
    verified = cli("verify", version["commit"], "--json", env=full_stack_env)
    assert verified.returncode == 0, verified.stdout
