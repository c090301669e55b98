"""Porting step by step on the full local stack: a step cut over to Dagster, and back, with one line.

Runs are triggered as a team would (from Airflow's UI in Chromium, or its REST API); what each
orchestrator then shows is read back through its public API.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dataset_pipeline.airflow_stack import PROXY_OPERATOR
from orchestrator_clients.airflow_api import AirflowClient
from orchestrator_clients.errors import OrchestratorApiError
from shared_tasks.project.cutover import AIRFLOW_RUN_TAG, SHADOW_OPERATOR, read_cutover
from shared_tasks.project.names import NAMES, PipelineNames
from shared_tasks.project.pipeline import PIPELINE, STEPS
from tests.conftest import cli, headless_page
from tests.peering_support import (
    airflow_client,
    dagster_client,
    eventually,
    every_step_reported,
    stack_status,
    wait_until_verified,
)

pytestmark = pytest.mark.slow

ALL_STEPS = [step.name for step in PIPELINE]


@pytest.fixture
def cutover(porting_stack_env: dict[str, str]) -> Iterator[Any]:
    """Set which steps run in Dagster (and wait until Airflow has parsed it); every step back in Airflow after."""

    def to_dagster(*steps: str) -> None:
        for step in ALL_STEPS:
            moved = cli("cutover", step, "dagster" if step in steps else "airflow", env=porting_stack_env)
            assert moved.returncode == 0, moved.stderr
        with airflow_client(porting_stack_env) as client:
            eventually(lambda: parsed_as(client, set(steps)), f"Airflow parsing the cutover to {steps}", timeout=180)

    yield to_dagster
    to_dagster()


def parsed_as(client: AirflowClient, in_dagster: set[str], dag_id: str = NAMES.dag_id) -> bool | None:
    tasks = client.task_operators(dag_id)
    return True if {name for name, kind in tasks.items() if kind == PROXY_OPERATOR} == in_dagster else None


def trigger_from_the_ui(env: dict[str, str], records: int) -> str:
    from playwright.sync_api import expect

    info = stack_status(env)["services"]["airflow"]
    password = json.loads(Path(info["password_file"]).read_text())["admin"]
    with airflow_client(env) as client:
        known = {run.dag_run_id for run in client.dag_runs(NAMES.dag_id)}
        with headless_page(1400, 900) as page:
            page.goto(f"{info['url']}/dags/{NAMES.dag_id}")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/dags/{NAMES.dag_id}")
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("spinbutton").fill(str(records))
            dialog.get_by_role("button", name="Trigger", exact=True).click()
            expect(dialog).to_be_hidden(timeout=60_000)

            def finished() -> str | None:
                new = [run for run in client.dag_runs(NAMES.dag_id) if run.dag_run_id not in known]
                return new[0].dag_run_id if new and new[0].state in ("success", "failed") else None

            run_id = eventually(finished, "the run triggered from the UI", timeout=600)
            assert client.run_state(NAMES.dag_id, run_id) == "success"
            page.goto(f"{info['url']}/dags/{NAMES.dag_id}/runs/{run_id}")
            expect(page.get_by_text("success").first).to_be_visible(timeout=30_000)
    return run_id


def version_of(env: dict[str, str], run_id: str) -> dict[str, Any]:
    history = json.loads(cli("history", "--json", env=env).stdout)
    (version,) = [v for v in history if v["run_id"] == run_id]
    verified = cli("verify", version["commit"], "--json", env=env)
    assert json.loads(verified.stdout)["ok"], verified.stdout
    return version


def test_a_run_from_airflows_ui_publishes_one_version_with_the_cut_over_steps_run_by_dagster(
    porting_stack_env: dict[str, str], cutover: Any
) -> None:
    """Every step cut over (a run with one step cut over, or none, is what the other tests of the group
    make: `modify_data` alone in Dagster below, `push_data` alone in the failure test)."""
    in_dagster = ALL_STEPS
    cutover(*in_dagster)
    run_id = trigger_from_the_ui(porting_stack_env, records=2)
    version = version_of(porting_stack_env, run_id)
    assert (version["orchestrator"], version["rows_added"]) == ("airflow", 2)
    expected = {step: "dagster" if step in in_dagster else "airflow" for step in ALL_STEPS}
    assert version["steps_by"] == (expected if in_dagster else None)

    client = dagster_client(porting_stack_env)
    proxied = client.runs_with_tags({AIRFLOW_RUN_TAG: run_id})
    assert len(proxied) == len(in_dagster) and all(run.status == "SUCCESS" for run in proxied)
    found = every_step_reported(client, run_id)
    for step in ALL_STEPS:
        (event,) = found[STEPS[step].output]  # once: a proxied step is not reported again by the sensor
        assert bool(event["dagster_run_id"]) == (step in in_dagster), step
    with airflow_client(porting_stack_env) as airflow:
        links = {
            task: airflow.get(f"/dags/{NAMES.dag_id}/dagRuns/{run_id}/taskInstances/{task}/links")
            for task in in_dagster
        }
    for task, link in links.items():
        assert any("/runs/" in str(url) for url in link.values()), (task, link)  # Airflow links to the Dagster run


def test_a_cut_over_step_holds_no_worker_slot_and_rolling_it_back_runs_it_in_airflow_again(
    porting_stack_env: dict[str, str], cutover: Any
) -> None:
    cutover("modify_data")
    with airflow_client(porting_stack_env) as client:
        run_id, _ = client.trigger(NAMES.dag_id, {"records": 50_000}, None)  # a change that takes a while

        def deferred() -> dict[str, Any] | None:
            task = client.task_states(NAMES.dag_id, run_id).get("modify_data")
            return client.get("/pools/default_pool") if task is not None and task.state == "deferred" else None

        pool = eventually(deferred, "the cut-over step waiting in the triggerer", timeout=300, interval=0.5)
        state = eventually(
            lambda: s if (s := client.run_state(NAMES.dag_id, run_id)) in ("success", "failed") else None,
            "the run",
            timeout=600,
        )
    assert pool["running_slots"] == 0 and pool["deferred_slots"] == 1, pool  # the triggerer waits, no worker
    assert state == "success"
    ported = version_of(porting_stack_env, run_id)
    cutover()  # one line back
    back = json.loads(cli("run", "--via", "airflow", "--json", env=porting_stack_env, timeout=600).stdout)
    assert ported["steps_by"]["modify_data"] == "dagster"
    assert version_of(porting_stack_env, back["run_id"])["steps_by"] is None
    assert back["rows"] == ported["rows"] + 1
    assert not dagster_client(porting_stack_env).runs_with_tags({AIRFLOW_RUN_TAG: back["run_id"]})


def test_a_failed_dagster_run_fails_its_airflow_task_with_its_url_and_the_retry_publishes_once(
    porting_stack_env: dict[str, str], cutover: Any
) -> None:
    cutover("push_data")
    ready = Path(stack_status(porting_stack_env)["stack_dir"]) / "s3.ready"
    os.killpg(int(json.loads(ready.read_text())["pids"]["s3"]), signal.SIGKILL)  # the S3 API goes down
    with airflow_client(porting_stack_env) as client:
        run_id, _ = client.trigger(NAMES.dag_id, {"records": 1}, None)

        def first_try_failed() -> list[str] | None:
            task = client.task_states(NAMES.dag_id, run_id).get("push_data")
            if task is None or task.state not in ("up_for_retry", "failed") or task.try_number < 1:
                return None
            return client.log_tail(NAMES.dag_id, run_id, task, lines=80)

        log = eventually(first_try_failed, "the push's first try failing", timeout=400, interval=1)
        assert cli("stack", "up", env=porting_stack_env, timeout=600).returncode == 0  # the fault clears
        state = eventually(
            lambda: s if (s := client.run_state(NAMES.dag_id, run_id)) in ("success", "failed") else None,
            "the run after the retry",
            timeout=600,
        )
    assert any("the Dagster run http" in line and "/runs/" in line for line in log), log[-10:]
    assert state == "success"
    versions = [v for v in json.loads(cli("history", "--json", env=porting_stack_env).stdout) if v["run_id"] == run_id]
    assert len(versions) == 1
    launches = dagster_client(porting_stack_env).runs_with_tags({AIRFLOW_RUN_TAG: run_id})
    assert [run.status for run in launches] == ["SUCCESS", "FAILURE"]  # launched again only after the failure


def test_flipping_a_line_while_runs_are_in_flight_loses_and_duplicates_nothing(
    porting_stack_env: dict[str, str], cutover: Any, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    def start(*args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "dataset_pipeline.cli", "run", "--json", *args]
        return subprocess.Popen(command, env=porting_stack_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)

    cutover("modify_data")
    in_flight = "flip-in-flight"
    runs = [start("--via", "airflow", "--run-id", in_flight), start("--via", "dagster"), start()]
    with airflow_client(porting_stack_env) as client:

        def in_dagster() -> str | None:  # the cut-over step of the Airflow run is running in Dagster
            try:
                task = client.task_states(NAMES.dag_id, in_flight).get("modify_data")
            except OrchestratorApiError:  # the CLI has not made the run yet
                return None
            return task.state if task is not None and task.state == "deferred" else None

        eventually(in_dagster, "run flip-in-flight's modify_data running in Dagster", timeout=600, interval=0.5)
        for step in ALL_STEPS:  # the line flips back while those runs go on
            flipped = cli("cutover", step, "airflow", env=porting_stack_env)
            assert flipped.returncode == 0, flipped.stderr
        assert client.run_state(NAMES.dag_id, in_flight) == "running"  # it was in flight across the flip
    runs += [start("--via", "airflow"), start()]
    outputs = [json.loads(run.communicate(timeout=1500)[0]) for run in runs]
    assert len({output["commit"] for output in outputs}) == 5 == len({output["run_id"] for output in outputs})
    history = json.loads(cli("history", "--json", env=porting_stack_env).stdout)
    assert all(sum(v["run_id"] == output["run_id"] for v in history) == 1 for output in outputs)
    newest = history[0]
    assert newest["rows"] == history[5]["rows"] + 5  # every record of the five runs is in the newest version
    for output in outputs:
        assert json.loads(cli("verify", output["commit"], "--json", env=porting_stack_env).stdout)["ok"]
    assert read_cutover(Path(porting_stack_env["PIPELINE_CUTOVER_FILE"])).in_dagster() == []


# --- a team's declared pipeline on the same stack: adopted, then run directly, by Airflow, by Dagster ---


def test_a_declared_pipeline_runs_directly_through_airflow_and_through_dagster_with_no_edit_of_the_product(
    porting_stack_env: dict[str, str], tmp_path: Path
) -> None:
    """The team's project (its schema, its package with two steps) lives outside the product's source;
    its dataset joins the stack's repository beside the built-in one, and each run publishes one version."""
    from tests.stack_support import team_env
    from tests.team_project import SEED_ROWS, seed_csv

    env = team_env(porting_stack_env)
    builtin_before = json.loads(cli("history", "--json", env=porting_stack_env).stdout)
    csv = tmp_path / "readings.csv"
    csv.write_text(seed_csv())
    adopted = cli("adopt", str(csv), "--json", env=env, timeout=300)
    assert adopted.returncode == 0, adopted.stderr
    rows, made, run_ids = SEED_ROWS, [], {}
    for via, readings in (("direct", 2), ("airflow", 3), ("dagster", 1)):
        ran = cli("run", "--via", via, "--param", f"readings={readings}", "--json", env=env, timeout=600)
        assert ran.returncode == 0, f"{via}: {ran.stderr[-3000:]}"
        version = json.loads(ran.stdout)
        rows += readings
        assert (version["rows"], version["rows_added"]) == (rows, readings), via
        made.append((via, version["commit"]))
        run_ids[via] = version["run_id"]
    history = json.loads(cli("history", "--json", env=env).stdout)
    assert [v["commit"] for v in history] == [commit for _, commit in reversed(made)] + [
        json.loads(adopted.stdout)["commit"]
    ]
    for (via, commit), version in zip(reversed(made), history, strict=False):
        runner = "direct" if via == "direct" else via
        assert version["steps_by"] == dict.fromkeys(["pull_data", "collect", "clean", "push_data"], runner), via
        verified = cli("verify", commit, "--json", env=env)
        assert json.loads(verified.stdout)["ok"], verified.stdout
    assert json.loads(cli("history", "--json", env=porting_stack_env).stdout) == builtin_before, (
        "the built-in pipeline's history is its own"
    )
    refused = cli("run", "--via", "airflow", "--param", "readings=0", env=env)
    assert refused.returncode == 1 and "below its minimum 1" in refused.stderr

    # Peering: the pipeline's own sensor reports each of Airflow's task instances once, on its asset keys.
    readings_names, step_assets = (
        PipelineNames.of("readings"),
        ("pulled_dataset", "collect", "clean", "published_dataset"),
    )
    reported = every_step_reported(
        dagster_client(porting_stack_env), run_ids["airflow"], names=readings_names, assets=step_assets
    )
    assert {asset: len(events) for asset, events in reported.items()} == dict.fromkeys(step_assets, 1), reported
    assert reported["published_dataset"][0]["commit"] == made[1][1]
    assert not any(event["dagster_run_id"] for (event,) in reported.values()), "each a report of Airflow's task"

    # Before `clean` may move to Dagster, its shadow runs prove it: refused, shadowed, proven.
    env = {**env, "PIPELINE_SHADOW_MATCHES": "1"}
    rows += prove_in_the_shadow(porting_stack_env, env, "clean")

    # Cut the team's `clean` over to Dagster: Airflow's task launches it there, in this run's workspace.
    with airflow_client(porting_stack_env) as client:
        for runner, in_dagster in (("dagster", {"clean"}), ("airflow", set())):
            moved = cli("cutover", "clean", runner, env=env)
            assert moved.returncode == 0, moved.stderr
            eventually(
                lambda: parsed_as(client, in_dagster, "readings_pipeline"),  # noqa: B023 (waited on at once)
                f"Airflow parsing readings_pipeline with {in_dagster or 'no step'} in Dagster",
                timeout=180,
            )
            if runner == "airflow":
                break
            ran = cli("run", "--via", "airflow", "--param", "readings=2", "--json", env=env, timeout=600)
            assert ran.returncode == 0, ran.stderr[-3000:]
            version = json.loads(ran.stdout)
            assert (version["rows"], version["rows_added"]) == (rows + 2, 2)
            newest = json.loads(cli("history", "--json", env=env).stdout)[0]
            assert newest["commit"] == version["commit"] and newest["orchestrator"] == "airflow"
            in_airflow = dict.fromkeys(["pull_data", "collect", "push_data"], "airflow")
            assert newest["steps_by"] == {**in_airflow, "clean": "dagster"}
            assert json.loads(cli("verify", version["commit"], "--json", env=env).stdout)["ok"]
            reported = every_step_reported(
                dagster_client(porting_stack_env), version["run_id"], names=readings_names, assets=step_assets
            )
            assert {asset: len(events) for asset, events in reported.items()} == dict.fromkeys(step_assets, 1)
            for asset, (event,) in reported.items():  # the cut-over step's is Dagster's own, not reported again
                assert bool(event["dagster_run_id"]) == (asset == "clean"), asset

    # The comparison measures the team's pipeline on its own steps, cutting over one of them for its runs.
    compared = cli(
        *("compare", "--runs", "1", "--runner", "dagster", "--runner", "airflow->dagster:collect"),
        *("--param", "readings=1", "--out", str(tmp_path / "compare"), "--json"),
        env=env,
        timeout=900,
    )
    assert compared.returncode == 0, compared.stderr[-3000:]
    comparison = json.loads(compared.stdout)
    assert (comparison["pipeline"], comparison["params"]["readings"]) == ("readings", 1)
    assert comparison["steps"] == ["pull_data", "collect", "clean", "push_data"]
    assert [(s["runner"], s["successes"]) for s in comparison["summaries"]] == [
        ("dagster", 1),
        ("airflow→dagster:collect", 1),
    ]
    versions = {version["run_id"]: version for version in comparison["versions"]}
    steps_by = {m["runner"]: versions[m["run_id"]]["steps_by"] for m in comparison["measures"]}
    assert steps_by["dagster"] == dict.fromkeys(comparison["steps"], "dagster")
    assert steps_by["airflow→dagster:collect"] == {
        **dict.fromkeys(comparison["steps"], "airflow"),
        "collect": "dagster",
    }
    assert comparison["cutover_restored"] == []
    with airflow_client(porting_stack_env) as client:
        assert parsed_as(client, set(), "readings_pipeline"), "the cutover put back as it was"


def shadow_tasks(client: AirflowClient, dag_id: str) -> set[str] | None:
    shadows = {name for name, kind in client.task_operators(dag_id).items() if kind == SHADOW_OPERATOR}
    return shadows or None


def shadowed_run(env: dict[str, str], stack_env: dict[str, str], step: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An Airflow run of the team's pipeline with `step` shadowed: its version, and its shadow task's result."""
    ran = cli("run", "--via", "airflow", "--param", "readings=2", "--json", env=env, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    version = json.loads(ran.stdout)
    with airflow_client(stack_env) as client:
        tasks = client.task_states("readings_pipeline", version["run_id"])
        assert tasks[f"{step}__shadow"].state == "success", "the run ends once its shadow has"
        shadow: dict[str, Any] = client.return_value("readings_pipeline", version["run_id"], f"{step}__shadow")
    return version, shadow


def prove_in_the_shadow(stack_env: dict[str, str], env: dict[str, str], step: str) -> int:
    """The gate, and what lets a step through it: shadow runs of its current code, matched, and none that
    differed. A change of the step's code that Dagster's environment makes differ is caught and named;
    the code put back, its earlier proof counts again. Returns the rows its two runs added."""
    steps_file = Path(env["PIPELINE_PROJECT_FILE"]).parent / "stack_readings_team" / "steps.py"
    held = cli("cutover", step, "dagster", env=env)
    assert held.returncode == 1 and "0 matched shadow run(s) of its current code, 1 needed" in held.stderr, held.stderr
    assert cli("cutover", step, "shadow", env=env).returncode == 0
    with airflow_client(stack_env) as client:
        eventually(lambda: shadow_tasks(client, "readings_pipeline"), "the shadow task parsed", timeout=180)
        assert shadow_tasks(client, "readings_pipeline") == {f"{step}__shadow"}
    history_before = json.loads(cli("history", "--json", env=env).stdout)
    # The first shadowed run is the comparison's: it shows each side's time for the step from that run.
    compared = cli(
        *("compare", "--runs", "1", "--runner", f"airflow+shadow:{step}", "--param", "readings=2", "--json"),
        env=env,
        timeout=900,
    )
    assert compared.returncode == 0, compared.stderr[-3000:]
    comparison = json.loads(compared.stdout)
    (measure,) = comparison["measures"]
    (summary,) = comparison["summaries"]
    assert measure["shadows"][step]["matched"] is True and summary["shadows"][step]["matched"] == 1, summary
    assert measure["shadows"][step]["airflow_seconds"] > 0 and measure["shadows"][step]["dagster_seconds"] > 0
    assert summary["shadows"][step]["dagster"]["median"] == measure["shadows"][step]["dagster_seconds"]
    assert comparison["cutover_restored"] == [], "the file put back: the step shadowed, none in Dagster"
    (version,) = comparison["versions"]
    with airflow_client(stack_env) as client:
        shadow = client.return_value("readings_pipeline", version["run_id"], f"{step}__shadow")
    assert shadow["matched"] is True and shadow["summary"].startswith("equal: 2 rows"), shadow
    assert shadow["airflow_run_id"] == version["run_id"] and shadow["dagster_run_id"]
    assert shadow["dagster_seconds"] == measure["shadows"][step]["dagster_seconds"], "the same run's figure"
    history = json.loads(cli("history", "--json", env=env).stdout)
    assert [v["commit"] for v in history] == [version["commit"]] + [v["commit"] for v in history_before], (
        "one version, Airflow's; the shadow published nothing"
    )
    checks = dagster_client(stack_env).check_executions(["readings", step], "matches_airflow", limit=10)
    (execution,) = [c for c in checks if c.run_id == shadow["dagster_run_id"]]
    assert execution.passed and execution.metadata["code_digest"] == shadow["code_digest"]
    listed = cli("cutover", env=env)
    assert "1 matched, 0 differed" in listed.stdout, listed.stdout

    # Dagster's environment differs from Airflow's (a variable set only in Dagster's code location), and a
    # new version of the step reads it: the shadow differs, naming the column and the values.
    original = steps_file.read_text(encoding="utf-8")
    reads_env = original.replace(
        'return collect.with_columns(pl.col("celsius").round(1))',
        'import os\n    site = "dagster-home" if os.environ.get("DAGSTER_HOME") else "no-dagster-home"\n'
        '    return collect.with_columns(pl.col("celsius").round(1), pl.lit(site).alias("note"))',
    )
    assert reads_env != original
    steps_file.write_text(reads_env, encoding="utf-8")
    try:
        _, differed = shadowed_run(env, stack_env, step)
        assert differed["matched"] is False and differed["code_digest"] != shadow["code_digest"]
        assert "'note': 'no-dagster-home'" in differed["summary"] and "'note': 'dagster-home'" in differed["summary"]
        refused = cli("cutover", step, "dagster", env=env)
        assert refused.returncode == 1 and "1 shadow run(s) of its current code differed" in refused.stderr
        assert "'note': 'dagster-home'" in refused.stderr, "the refusal names the difference"
    finally:
        steps_file.write_text(original, encoding="utf-8")
    assert "1 matched, 0 differed" in cli("cutover", env=env).stdout, "the earlier code's proof counts again"
    return 2 * 2


def test_a_second_pipeline_of_the_project_merges_runs_racing_directly_through_airflow_and_through_dagster(
    porting_stack_env: dict[str, str], tmp_path: Path
) -> None:
    """The station-readings example, the project's second pipeline (merge on station + day): three runs
    started at once, one per runner, each publish one version; every version's rows are its parent's
    plus its inserts minus its deletes, and the head holds each key once."""
    import itertools
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT
    from tests.stack_support import team_env
    from tests.team_project import STATION_EXAMPLE

    env = team_env(porting_stack_env, "station_readings")
    started = datetime.now(UTC)
    readings_before = json.loads(cli("history", "--json", env=team_env(porting_stack_env)).stdout)
    adopted = cli("adopt", str(STATION_EXAMPLE / "seed" / "station_readings.csv"), "--json", env=env, timeout=300)
    assert adopted.returncode == 0, adopted.stderr
    command = [sys.executable, "-m", "dataset_pipeline.cli", "run", "--param", "days=1", "--param", "corrections=3"]
    runs = {
        via: subprocess.Popen(
            [*command, "--via", via, "--json"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for via in ("airflow", "dagster", "direct")
    }
    in_flight_together = all(run.poll() is None for via, run in runs.items() if via != "direct")
    published = {}
    for via, run in runs.items():
        stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, f"{via}: {stderr.decode()[-3000:]}"
        published[via] = json.loads(stdout)
    assert in_flight_together, "the orchestrators' runs were in flight at once"
    history = json.loads(cli("history", "--json", env=env).stdout)
    assert len(history) == 4 and history[-1]["commit"] == json.loads(adopted.stdout)["commit"]
    commits = [p["commit"] for p in published.values()]
    assert {v["commit"] for v in history[:3]} == set(commits), "one version per run"
    for newer, older in itertools.pairwise(history):
        assert newer["rows"] == older["rows"] + newer["rows_added"] - newer["rows_deleted"], newer
        assert newer["rows_updated"] >= 3, f"its three corrections updated their rows: {newer}"
        runner = newer["steps_by"]["push_data"]
        assert set(newer["steps_by"].values()) == {runner} and runner in published, newer["steps_by"]
    verified = cli("verify", history[0]["commit"], "--json", env=env, timeout=300)
    assert json.loads(verified.stdout)["ok"], verified.stdout  # every key once: the primaryKey checked whole
    assert json.loads(cli("history", "--json", env=team_env(porting_stack_env)).stdout) == readings_before, (
        "the project's other pipeline keeps its own history"
    )
    with airflow_client(porting_stack_env) as client:  # its own watcher and verifying DAG: every version verified once
        verified = wait_until_verified(client, commits, started, dag="verify_station_readings_version")
    assert all(len(verified[commit]) == 1 for commit in commits), verified
