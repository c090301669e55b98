"""The Dagster UI in a real browser: Materialize all on the job's asset graph, as a user does.

The job's page launches a run of `dataset_pipeline`; the asset
group's page then shows the whole graph, checks included, for the screenshot kept in docs/.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator_clients.dagster_api import GraphQL
from shared_tasks.project.names import NAMES
from tests.conftest import cli, headless_page
from tests.dagster_support import DagsterStack

# Read at import: the autouse `isolate` fixture scrubs DATASET_PIPELINE_* before a test runs.
SCREENSHOT_DIR = os.environ.get("DATASET_PIPELINE_SCREENSHOTS")
RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}, limit: 20) {
    ... on Runs { results { runId status } }
  }
}
"""


def job_runs(graphql: GraphQL) -> dict[str, dict[str, Any]]:
    results = graphql(RUNS_QUERY, job=NAMES.dagster_job)["runsOrError"]["results"]
    return {run["runId"]: run for run in results}


def wait_for_new_run(graphql: GraphQL, known: set[str], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [run for run_id, run in job_runs(graphql).items() if run_id not in known]
        if new and new[0]["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            return new[0]
        time.sleep(1)
    raise AssertionError(f"no run of {NAMES.dagster_job} finished in {timeout} s")


@pytest.mark.slow
def test_materialize_all_from_the_asset_graph(dagster_stack: DagsterStack, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    url = dagster_stack.status()["dagster_url"]
    graphql = GraphQL(url)
    known = set(job_runs(graphql))
    screenshot = Path(SCREENSHOT_DIR or tmp_path) / "dagster-ui.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)

    with headless_page(1600, 900) as page:
        page.goto(f"{url}/locations/{NAMES.dagster_location}/jobs/{NAMES.dagster_job}")
        with contextlib.suppress(PlaywrightTimeoutError):  # the first-visit newsletter dialog
            page.get_by_role("button", name="Skip").click(timeout=20_000)
        materialize_all = page.get_by_role("button", name="Materialize all")
        expect(materialize_all).to_be_enabled(timeout=60_000)
        materialize_all.click()

        run = wait_for_new_run(graphql, known)
        assert run["status"] == "SUCCESS", run

        # The whole graph, checks included.
        page.goto(f"{url}/locations/{NAMES.dagster_location}/asset-groups/{NAMES.asset_group}")
        expect(page.get_by_text("published_dataset").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("3 / 3 Passed")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(screenshot))

    assert screenshot.stat().st_size > 10_000
    newest = json.loads(cli("history", "--json", env=dagster_stack.env).stdout)[0]
    assert (newest["orchestrator"], newest["run_id"]) == ("dagster", run["runId"])
