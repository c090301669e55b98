"""`dataset-pipeline compare` on a tiny run: the report's figures are the runs that were made."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dataset_pipeline.compare import RUNNERS, STEP_NAMES
from tests.conftest import cli
from tests.test_stack import free_port

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def full_stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = dict(os.environ)
    env.update(
        DATASET_PIPELINE_STACK_DIR=str(tmp_path / "stack"),
        DATASET_PIPELINE_S3_PORT=str(free_port()),
        DATASET_PIPELINE_AIRFLOW_PORT=str(free_port()),
        DATASET_PIPELINE_DAGSTER_PORT=str(free_port()),
        DATASET_PIPELINE_SERVICES="airflow,dagster",
    )
    up = cli("stack", "up", "--seed-rows", "500", env=env, timeout=600)
    assert up.returncode == 0, up.stderr
    yield env
    cli("stack", "down", env=env)


@pytest.mark.slow
def test_a_tiny_comparison_reports_exactly_the_runs_it_made(full_stack_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report"
    completed = cli("compare", "--runs", "1", "--out", str(out), "--json", env=full_stack_env, timeout=900)
    assert completed.returncode == 0, completed.stderr
    printed = json.loads(completed.stdout)
    assert json.loads((out / "results.json").read_text()) == printed

    measures = {m["runner"]: m for m in printed["measures"]}
    assert set(measures) == set(RUNNERS) and all(m["ok"] for m in measures.values())
    for measure in measures.values():
        assert set(measure["step_seconds"]) == set(STEP_NAMES)
        assert 0 < sum(measure["step_seconds"].values()) <= measure["seconds"]
    for summary in printed["summaries"]:
        measure = measures[summary["runner"]]
        assert summary["successes"] == summary["runs"] == 1
        assert summary["end_to_end"]["median"] == summary["end_to_end"]["low"] == measure["seconds"]
        assert {name: spread["median"] for name, spread in summary["steps"].items()} == measure["step_seconds"]
        assert summary["peak_rss_mb"] >= summary["idle_rss_mb"] > 0
    overheads = {s["runner"]: s["overhead_seconds"] for s in printed["summaries"]}
    assert overheads["direct"] == 0

    versions = printed["versions"]
    assert {(v["orchestrator"], v["run_id"], v["commit"]) for v in versions} == {
        (runner, m["run_id"], m["commit"]) for runner, m in measures.items()
    }
    history = json.loads(cli("history", "--json", env=full_stack_env).stdout)
    assert [v["commit"] for v in history[:3]] == [v["commit"] for v in versions]

    report = (out / "report.md").read_text()
    assert all(m["run_id"] in report for m in measures.values())
    assert f"{measures['airflow']['seconds']:.2f}" in report
    assert (out / "steps.png").read_bytes().startswith(PNG_MAGIC)
    assert '<img src="steps.png"' in (out / "report.html").read_text()


def test_compare_without_a_running_stack_says_how_to_start_it(tmp_path: Path) -> None:
    env: dict[str, Any] = {**os.environ, "DATASET_PIPELINE_STACK_DIR": str(tmp_path / "none")}
    completed = cli("compare", "--runs", "1", env=env)
    assert completed.returncode == 1
    assert "stack is not running" in completed.stderr and "stack up" in completed.stderr
