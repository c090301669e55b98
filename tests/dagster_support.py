"""What the Dagster tests share: running the asset graph in-process, and one local stack (a plugin)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import STEPS
from shared_tasks.project.settings import Settings
from tests.conftest import CALLER_CREDENTIALS, cli
from tests.ports import free_port
from tests.stack_scheduling import stopped_once

CHANGE_OP = NAMES.op_name(STEPS["modify_data"].output)  # its config holds the records
PUBLISHED_KEY = NAMES.asset_key(STEPS["push_data"].output)
PUBLISHED_OP = NAMES.op_name(STEPS["push_data"].output)


def settings_file(settings: Settings) -> Path:
    """The settings as an env file: what the resource reads in place of the pod's environment."""
    path = settings.work_root.parent / "pipeline-settings.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"PIPELINE_GIT_URL={settings.git_url}\n"
        f"PIPELINE_WORK_ROOT={settings.work_root}\n"
        f"PIPELINE_S3_ENDPOINT_URL={settings.s3_endpoint_url}\n"
        f"PIPELINE_LAYOUT={settings.layout.value}\n"
    )
    return path


def settings_resource(settings: Settings) -> Any:
    """The settings resource reading `settings` (as an env file) in place of the environment: the
    code location's own choice, made here by the test; a launch has no config to choose it with."""
    from dagster_assets.resources import PipelineSettings
    from shared_tasks.project.settings import load_settings

    path = settings_file(settings)

    class SettingsOfTheTest(PipelineSettings):
        def load(self) -> Settings:
            return load_settings(path)

    return SettingsOfTheTest()


def materialize_pipeline(settings: Settings, records: int, instance: Any = None) -> Any:
    """The job's assets and their checks, materialized in this process (Dagster is imported only here:
    this module is a plugin every test session loads)."""
    import dagster as dg

    from dagster_assets.assets import STEP_ASSETS
    from dagster_assets.checks import CHECKS
    from dagster_assets.definitions import defs

    if instance is None:
        with dg.DagsterInstance.ephemeral() as own:
            return materialize_pipeline(settings, records, own)
    return dg.materialize(
        [*defs.assets, *CHECKS],  # type: ignore[list-item]
        selection=dg.AssetSelection.assets(*STEP_ASSETS.values()),
        run_config={"ops": {CHANGE_OP: {"config": {"records": records}}}},
        instance=instance,
        resources={"pipeline_settings": settings_resource(settings)},
        raise_on_error=False,
    )


@dataclass
class DagsterStack:
    env: dict[str, str]
    root: Path

    def status(self) -> dict[str, Any]:
        completed = cli("stack", "status", "--json", env=self.env)
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout)  # type: ignore[no-any-return]

    def up(self) -> None:
        completed = cli("stack", "up", "--seed-rows", "300", env=self.env, timeout=400)
        assert completed.returncode == 0, completed.stderr + completed.stdout


_shared: dict[str, DagsterStack] = {}


def shared_dagster_stack(add_cleanup: Callable[..., None]) -> DagsterStack:
    """One stack with only Dagster, on free ports, for every stack and browser test of the session.

    Its folder is not under pytest's numbered temp dirs: a concurrent pytest session on the same
    machine may prune those, and `stack down` needs the folder's ready files to find the processes.
    """
    if "stack" not in _shared:
        env = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_")}
        folder = Path(tempfile.mkdtemp(prefix="dagster-stack-"))
        root = folder / "stack"
        env.update(
            DATASET_PIPELINE_STACK_DIR=str(root),
            DATASET_PIPELINE_S3_PORT=str(free_port()),
            DATASET_PIPELINE_DAGSTER_PORT=str(free_port()),
            DATASET_PIPELINE_SERVICES="dagster",
        )
        env.update(CALLER_CREDENTIALS)
        stack = DagsterStack(env=env, root=root)
        add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
        add_cleanup(stopped_once("dagster_stack", lambda: cli("stack", "down", env=env)))  # last-in, first-out
        stack.up()
        _shared["stack"] = stack
    return _shared["stack"]


@pytest.fixture(scope="session")
def dagster_stack(request: pytest.FixtureRequest) -> DagsterStack:
    return shared_dagster_stack(request.config.add_cleanup)
