"""Dagster on the local stack: webserver and daemon on loopback, home under the stack folder.

Started like `dagster dev`, but as two processes of our own, each in its own process group with
default signal handlers restored (a `dagster dev` started in the background ignored SIGTERM), so
`stack down` really stops them and every code server they started. The control side talks to
Dagster only over HTTP (GraphQL), never by importing it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from tenacity import retry_if_exception

from dataset_pipeline.s3server import LOOPBACK
from dataset_pipeline.stack import (
    START_TIMEOUT_SECONDS,
    LocalStack,
    StackError,
    busy_api_retrying,
    pid_alive,
    stop_process_group,
)
from shared_tasks.history import history
from shared_tasks.pipeline import STEP_OF_OUTPUT
from shared_tasks.pointer import s3_object_url

LOCATION_NAME = "dataset_pipeline"
REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a `Definitions`
JOB_NAME = "dataset_pipeline"
CHANGE_ASSET = "changed_dataset"
PUBLISHED_ASSET = "published_dataset"
DEFINITIONS_MODULE = "dagster_assets.definitions"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The code location loads in a code server the webserver starts; that takes a while on 2 cores.
LOAD_TIMEOUT_SECONDS = max(START_TIMEOUT_SECONDS, 180)
RUN_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.5
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATIONS_QUERY = """
query Locations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

LAUNCH_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

# Every step again, under the root run's id: each step is idempotent per run id, so a run that
# failed resumes its own change and one that published only finds its version again.
REEXECUTE_MUTATION = """
mutation Reexecute($parentRunId: String!, $extraTags: [ExecutionTag!]) {
  launchRunReexecution(reexecutionParams: {parentRunId: $parentRunId, strategy: ALL_STEPS, extraTags: $extraTags}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

# A launch is tagged with an id of its own: when its answer is lost, the tag finds the run it made.
LAUNCH_TAG = "dataset-pipeline/launch"
TAGGED_RUNS_QUERY = """
query Tagged($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    __typename
    ... on Runs { results { runId } }
    ... on Error { message }
  }
}
"""

POOLS_QUERY = """
query Pools {
  assetNodes { pools }
  instance { poolConfig { defaultPoolLimit } concurrencyLimits { concurrencyKey } }
}
"""
SET_POOL_LIMIT_MUTATION = """
mutation SetPoolLimit($pool: String!, $limit: Int!) { setConcurrencyLimit(concurrencyKey: $pool, limit: $limit) }
"""

RUN_QUERY = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId rootRunId status stepStats { stepKey status startTime endTime attempts { startTime } } }
    ... on Error { message }
  }
}
"""

EVENTS_QUERY = """
query Failures($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on ExecutionStepUpForRetryEvent { stepKey error { message } }
        ... on RunFailureEvent { message error { message } }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on IntMetadataEntry { intValue }
            ... on BoolMetadataEntry { boolValue }
          }
        }
      }
    }
  }
}
"""


def instance_config(home: Path) -> dict[str, Any]:
    """dagster.yaml: a 1 s run queue starting one publishing run at a time, state under `home`.

    Pools at run granularity count runs, not steps: a run holding a step of the pool keeps the
    next one queued until it ends, whichever page or schedule launched it.
    """
    return {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"dequeue_interval_seconds": 1},
        },
        "concurrency": {"pools": {"granularity": "run", "default_limit": 1}},
        "storage": {"sqlite": {"base_dir": str(home / "storage")}},
        "local_artifact_storage": {
            "module": "dagster.core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(home / "artifacts")},
        },
        "compute_logs": {
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(home / "logs")},
        },
        "telemetry": {"enabled": False},
    }


def workspace_config() -> dict[str, Any]:
    return {
        "load_from": [
            {
                "python_module": {
                    "module_name": DEFINITIONS_MODULE,
                    "location_name": LOCATION_NAME,
                    "working_directory": str(PROJECT_ROOT),
                }
            }
        ]
    }


def _default_signals() -> None:
    """In the child: handlers a background shell may have set to ignore are reset, so it stops."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def _script(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"{name} is not installed: install the project with its `dagster` extra")
    return found


class GraphQL:
    """Dagster's GraphQL API over plain HTTP."""

    def __init__(self, url: str) -> None:
        self.endpoint = f"{url}/graphql"

    def __call__(self, query: str, timeout: float = 30, **variables: Any) -> dict[str, Any]:
        """The query's data. A query that fails in transit or with a server error is sent again for
        up to a minute. A mutation is sent once: whether a launch may be sent again is for
        `launch_run` to find out first.
        """
        body = json.dumps({"query": query, "variables": variables}).encode()
        if query.lstrip().startswith("mutation"):
            answer = self._send(body, timeout)
        else:
            answer = busy_api_retrying(retry_if_exception(_transient), reraise=True)(self._send, body, timeout)
        if answer.get("errors"):
            raise StackError(f"Dagster's GraphQL API said: {answer['errors'][0].get('message')}")
        data: dict[str, Any] = answer["data"]
        return data

    def _send(self, body: bytes, timeout: float) -> dict[str, Any]:
        request = urllib.request.Request(self.endpoint, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            error.close()  # it holds the connection open otherwise
            raise
        return answer


def _transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code >= 500
    return isinstance(error, urllib.error.URLError | TimeoutError | ConnectionError)


class Service:
    name = "dagster"

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.home = stack.root / "dagster"
        self.ready_file = stack.root / "dagster.ready"

    @property
    def url(self) -> str:
        ready = self._ready()
        port = int(ready["port"]) if ready else self.stack.config.dagster_port
        return f"http://{LOOPBACK}:{port}"

    def _ready(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return data if all(pid_alive(int(pid)) for pid in data.get("pids", {}).values()) else None

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def status(self) -> dict[str, Any]:
        ready = self._ready()
        running = ready is not None and self._answers()
        return {"running": running, "url": self.url, "home": str(self.home), "pids": ready["pids"] if ready else {}}

    def up(self) -> None:
        if self._ready() is not None and self._answers():
            return
        self.down()  # whatever is left of an earlier start
        self._write_config()
        port = str(self.stack.config.dagster_port)
        workspace = str(self.home / "workspace.yaml")
        # One at a time: both would create the fresh instance storage, and its migrations race.
        pids = {
            "webserver": self._start(
                "webserver", [_script("dagster-webserver"), "-h", LOOPBACK, "-p", port, "-w", workspace]
            )
        }
        self._write_ready(pids, port)
        try:
            self._wait_until_loaded(pids)
            set_pool_limits(GraphQL(self.url))
            pids["daemon"] = self._start("daemon", [_script("dagster-daemon"), "run", "-w", workspace])
            self._write_ready(pids, port)
        except StackError:
            self.down()
            raise

    def _write_ready(self, pids: dict[str, int], port: str) -> None:
        self.ready_file.write_text(json.dumps({"pids": pids, "port": int(port)}))

    def down(self) -> None:
        try:
            pids = json.loads(self.ready_file.read_text()).get("pids", {})
        except (OSError, ValueError):
            pids = {}
        for pid in pids.values():
            stop_process_group(int(pid))
        self.ready_file.unlink(missing_ok=True)

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(self.home), sort_keys=False))
        (self.home / "workspace.yaml").write_text(yaml.safe_dump(workspace_config(), sort_keys=False))

    def _log(self, role: str) -> Path:
        return self.stack.root / f"dagster-{role}.log"

    def _start(self, role: str, command: list[str]) -> int:
        env = {**os.environ, **self.stack.settings_env(), "DAGSTER_HOME": str(self.home)}
        with self._log(role).open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_default_signals,
            )
        return process.pid

    def _wait_until_loaded(self, pids: dict[str, int]) -> None:
        deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for role, pid in pids.items():
                if not pid_alive(pid) or _reaped(pid):
                    tail = " | ".join(self._log(role).read_text(errors="replace").strip().splitlines()[-3:])
                    hint = " (is the port in use? choose another with --dagster-port)" if role == "webserver" else ""
                    raise StackError(f"Dagster's {role} stopped while starting{hint}: {tail}")
            if self._answers() and self._location_loaded():
                return
            time.sleep(0.5)
        raise StackError(
            f"Dagster did not load {DEFINITIONS_MODULE} in {LOAD_TIMEOUT_SECONDS} s; see {self._log('webserver')}"
        )

    def _location_loaded(self) -> bool:
        entries = GraphQL(self.url)(LOCATIONS_QUERY)["workspaceOrError"].get("locationEntries", [])
        for entry in entries:
            if entry["name"] == LOCATION_NAME and entry["loadStatus"] == "LOADED":
                error = entry["locationOrLoadError"]
                if error and error["__typename"] == "PythonError":
                    raise StackError(f"Dagster could not load {DEFINITIONS_MODULE}: {error['message']}")
                return True
        return False


def set_pool_limits(graphql: GraphQL) -> None:
    """Give each pool the assets use the instance's default limit now, before any run is queued.

    Dagster sets a pool's default limit when the queue first meets a run of that pool, but does not
    apply it in that same pass: two runs queued together on a fresh instance would both start.
    """
    answer = graphql(POOLS_QUERY)
    limit = answer["instance"]["poolConfig"]["defaultPoolLimit"]
    if limit is None:
        return
    known = {entry["concurrencyKey"] for entry in answer["instance"]["concurrencyLimits"]}
    for pool in sorted({pool for node in answer["assetNodes"] for pool in node["pools"]} - known):
        graphql(SET_POOL_LIMIT_MUTATION, pool=pool, limit=limit)


def _reaped(pid: int) -> bool:
    """True when `pid` is our exited child (a zombie until reaped)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return finished == pid


# runs ---------------------------------------------------------------------------------------


def run_via(stack: LocalStack, records: int, run_id: str | None, console: Console) -> dict[str, Any]:
    """Launch the job through GraphQL (or re-execute the Dagster run `run_id`), wait, return the version."""
    service = Service(stack)
    graphql = GraphQL(service.url)
    launched = launch_run(graphql, records, run_id)
    console.print(f"dagster run [bold]{launched}[/bold]  {service.url}/runs/{launched}", highlight=False)
    run = wait_for_run(graphql, launched, console)
    if run["status"] != "SUCCESS":
        raise StackError(f"Dagster run {launched} ended {run['status']}: {_failure(graphql, launched)}")
    pipeline_run_id = run["rootRunId"] or run["runId"]
    claims = _published_metadata(graphql, launched)
    for version in history(stack.settings()):
        if version.run_id == pipeline_run_id:
            return {
                "run_id": pipeline_run_id,
                "orchestrator": version.orchestrator,
                "commit": version.commit,
                "md5": version.md5,
                "size": version.size,
                "rows": version.rows,
                "rows_added": version.rows_added,
                "s3_url": claims.get("s3_url") or s3_object_url(stack.remote_url, version.md5),
                "attempts": claims.get("attempts"),
                "already_published": bool(claims.get("already_published", False)),
                "dagster_run_id": launched,
                "orchestrator_run_id": launched,
                "step_seconds": step_seconds(run),
            }
    raise StackError(f"Dagster run {launched} succeeded but no version on the origin names run {pipeline_run_id}")


def step_seconds(run: dict[str, Any]) -> dict[str, float]:
    """How long each shared step took, by its name (Dagster reports the step's asset; checks are left out)."""
    return {
        STEP_OF_OUTPUT[step["stepKey"]]: float(step["endTime"]) - float(step["startTime"])
        for step in run["stepStats"]
        if step["stepKey"] in STEP_OF_OUTPUT and step.get("startTime") and step.get("endTime")
    }


def launch_run(graphql: GraphQL, records: int, run_id: str | None) -> str:
    """Launch the job (or re-execute run `run_id`) once, even when an answer is lost on the way back."""
    tags = [{"key": LAUNCH_TAG, "value": secrets.token_hex(8)}]
    if run_id is not None:
        mutation, field = REEXECUTE_MUTATION, "launchRunReexecution"
        variables: dict[str, Any] = {"parentRunId": run_id, "extraTags": tags}
    else:
        mutation, field = LAUNCH_MUTATION, "launchRun"
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "jobName": JOB_NAME,
            },
            "runConfigData": {"ops": {CHANGE_ASSET: {"config": {"records": records}}}},
            "executionMetadata": {"tags": tags},
        }
        variables = {"executionParams": params}
    for attempt in busy_api_retrying(retry_if_exception(_transient), reraise=True):
        with attempt:
            earlier = tagged_runs(graphql, tags) if attempt.retry_state.attempt_number > 1 else []
            return earlier[0] if earlier else _launched(graphql(mutation, **variables)[field])
    raise AssertionError("unreachable")  # pragma: no cover


def tagged_runs(graphql: GraphQL, tags: list[dict[str, str]]) -> list[str]:
    found = graphql(TAGGED_RUNS_QUERY, tags=tags)["runsOrError"]
    if found["__typename"] != "Runs":
        raise StackError(f"Dagster could not list runs: {found.get('message', found['__typename'])}")
    return [str(run["runId"]) for run in found["results"]]


def _launched(result: dict[str, Any]) -> str:
    if result["__typename"] != "LaunchRunSuccess":
        details = [error["message"] for error in result.get("errors", [])] or [result.get("message", "")]
        raise StackError(f"Dagster refused the run ({result['__typename']}): {'; '.join(details)}")
    return str(result["run"]["runId"])


def wait_for_run(graphql: GraphQL, run_id: str, console: Console) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    shown: dict[str, str] = {}
    status = ""
    while time.monotonic() < deadline:
        run = graphql(RUN_QUERY, runId=run_id)["runOrError"]
        if run["__typename"] != "Run":
            raise StackError(f"Dagster run {run_id}: {run.get('message', run['__typename'])}")
        if run["status"] != status:
            status = run["status"]
            console.print(f"  run {status.lower()}", highlight=False)
        for step in run["stepStats"]:
            # A retried step starts a new attempt: say so, the way Airflow's tries show.
            state = f"{(step['status'] or 'started').lower()}"
            if len(step.get("attempts") or []) > 1:
                state += f" (try {len(step['attempts'])})"
            if shown.get(step["stepKey"]) != state:
                shown[step["stepKey"]] = state
                console.print(f"  {step['stepKey']}: {state}", highlight=False)
        if status in FINISHED:
            return dict(run)
        time.sleep(POLL_SECONDS)
    raise StackError(f"Dagster run {run_id} did not finish in {RUN_TIMEOUT_SECONDS} s")


def _events(graphql: GraphQL, run_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = graphql(EVENTS_QUERY, runId=run_id)["logsForRun"].get("events", [])
    return events


def _published_metadata(graphql: GraphQL, run_id: str) -> dict[str, Any]:
    """The metadata values of the run's materialization of the published dataset."""
    values: dict[str, Any] = {}
    for event in _events(graphql, run_id):
        if event["__typename"] == "MaterializationEvent" and event["assetKey"]["path"] == [PUBLISHED_ASSET]:
            for entry in event["metadataEntries"]:
                values[entry["label"]] = next(
                    (entry[key] for key in ("text", "intValue", "boolValue") if key in entry), None
                )
    return values


def _failure(graphql: GraphQL, run_id: str) -> str:
    """The failed step and its error (or the run's own error when no step failed)."""
    events = _events(graphql, run_id)
    failed = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    if failed:
        step = failed[-1]["stepKey"]
        # After retries, the failure only says so; the first attempt's error says why.
        attempts = [e for e in events if e.get("stepKey") == step and e["__typename"] == "ExecutionStepUpForRetryEvent"]
        error = (attempts or failed)[0].get("error") or failed[-1].get("error") or {}
        retried = f" (after {len(attempts)} retries)" if attempts else ""
        return f"step {step} failed{retried}: {error.get('message', '').strip()}"
    runs = [e for e in events if e["__typename"] == "RunFailureEvent"]
    if runs:
        return (runs[-1].get("error") or {}).get("message") or runs[-1]["message"]
    return "no failure event recorded"
