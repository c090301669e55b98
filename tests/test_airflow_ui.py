"""The Airflow UI in a real browser: log in, open the DAG, trigger it from the form, see it succeed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.airflow_support import SharedStack
from tests.conftest import cli, headless_page

pytestmark = pytest.mark.slow

RUN_TIMEOUT_SECONDS = 300
# Read at import: the autouse `isolate` fixture scrubs DATASET_PIPELINE_* before each test.
SCREENSHOT_FOLDER = os.environ.get("DATASET_PIPELINE_SCREENSHOTS")


def screenshot_path(tmp_path: Path) -> Path:
    """docs/airflow-ui.png only when asked for (DATASET_PIPELINE_SCREENSHOTS), so CI keeps the tree clean."""
    return Path(SCREENSHOT_FOLDER) / "airflow-ui.png" if SCREENSHOT_FOLDER else tmp_path / "airflow-ui.png"


def api(url: str, password: str) -> httpx.Client:
    token = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    token.raise_for_status()
    return httpx.Client(
        base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=60
    )


def wait_for_new_run(client: httpx.Client, known: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        runs = client.get("/dags/dataset_pipeline/dagRuns").json()["dag_runs"]
        new = [run for run in runs if run["dag_run_id"] not in known]
        if new and new[0]["state"] in ("success", "failed"):
            return new[0]  # type: ignore[no-any-return]
        time.sleep(1)
    raise AssertionError(f"no run triggered from the UI finished within {RUN_TIMEOUT_SECONDS} s")


def test_log_in_trigger_from_the_ui_and_the_run_succeeds(airflow_stack: SharedStack, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    info = airflow_stack.status()["services"]["airflow"]
    url, password = info["url"], json.loads(Path(info["password_file"]).read_text())["admin"]
    target = screenshot_path(tmp_path)
    with api(url, password) as client:
        known = {run["dag_run_id"] for run in client.get("/dags/dataset_pipeline/dagRuns").json()["dag_runs"]}
        with headless_page(1400, 900) as page:
            page.goto(f"{url}/dags/dataset_pipeline")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/dags/dataset_pipeline")
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("Records to add")).to_be_visible()
            dialog.get_by_role("spinbutton").fill("3")
            dialog.get_by_role("button", name="Trigger", exact=True).click()
            expect(dialog).to_be_hidden()

            run = wait_for_new_run(client, known)
            assert run["state"] == "success", run
            assert run["conf"] == {"records": 3}

            page.goto(f"{url}/dags/dataset_pipeline/runs/{run['dag_run_id']}")
            expect(page.get_by_text("success").first).to_be_visible(timeout=30_000)
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target))

    assert target.stat().st_size > 10_000
    newest = json.loads(cli("history", "--json", env=airflow_stack.env).stdout)[0]
    assert (newest["orchestrator"], newest["run_id"], newest["rows_added"]) == ("airflow", run["dag_run_id"], 3)
