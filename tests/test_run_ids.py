"""Run ids: bounded to what every orchestrator accepts, refused before anything starts with the limit named."""

from __future__ import annotations

import functools
import importlib.util
import re
import uuid
from pathlib import Path

import pytest
import yaml

from shared_tasks.project.names import NAMES
from shared_tasks.project.pipeline import new_run_id
from shared_tasks.run.workspace import MAX_RUN_ID_LENGTH, RUN_ID_CHARACTERS, check_run_id

# Airflow's defaults as installed, read without importing Airflow (which takes seconds).
_AIRFLOW = importlib.util.find_spec("airflow")
assert _AIRFLOW is not None and _AIRFLOW.submodule_search_locations, "Airflow is not installed"
AIRFLOW_CONFIG = Path(_AIRFLOW.submodule_search_locations[0]) / "config_templates" / "config.yml"
NAME_MAX = 255  # bytes in one file name (ext4, xfs, APFS, overlayfs)


@functools.cache
def airflow_default(section: str, option: str) -> str:
    return str(yaml.safe_load(AIRFLOW_CONFIG.read_text())[section]["options"][option]["default"])


def airflow_log_path(run_id: str) -> str:
    """The task log's path under Airflow's default `log_filename_template`, for a task of our DAG."""
    template = airflow_default("logging", "log_filename_template").replace("%%", "%")
    template = re.sub(r"\{%.*?%\}.*?\{% endif %\}", "", template)  # no map index
    values = {"ti.dag_id": NAMES.dag_id, "ti.run_id": run_id, "ti.task_id": "modify_data"}
    values["try_number|default(ti.try_number)"] = "1"
    return re.sub(r"\{\{ *(.*?) *\}\}", lambda match: values[match.group(1)], template)


def longest_name(path: str) -> int:
    return max(len(part.encode()) for part in path.split("/"))


def test_the_longest_run_id_accepted_fits_airflows_log_folder_and_one_more_would_not() -> None:
    assert longest_name(airflow_log_path("x" * MAX_RUN_ID_LENGTH)) == NAME_MAX
    assert longest_name(airflow_log_path("x" * (MAX_RUN_ID_LENGTH + 1))) > NAME_MAX
    assert check_run_id("x" * MAX_RUN_ID_LENGTH)


@pytest.mark.parametrize("length", [MAX_RUN_ID_LENGTH + 1, 250, 300])
def test_a_longer_run_id_is_refused_naming_the_limit_and_why(length: int) -> None:
    with pytest.raises(ValueError) as refused:
        check_run_id("x" * length)
    message = str(refused.value)
    assert f"run_id is {length} characters long; at most {MAX_RUN_ID_LENGTH}" in message
    assert "Airflow" in message and "log folder" in message


@pytest.mark.parametrize(
    "run_id",
    ["a b", "../../x", "x/y", "..", "run..1", "é", "x\ty", "q?query=1", "#x", " lead", "trail ", "two\nlines", ""],
)
def test_a_run_id_airflow_would_refuse_is_refused_here(run_id: str) -> None:
    allowed = re.compile(airflow_default("scheduler", "allowed_run_id_pattern").strip())
    airflow_accepts = bool(allowed.match(run_id)) and ".." not in run_id
    assert not airflow_accepts
    with pytest.raises(ValueError, match="run_id"):
        check_run_id(run_id)


def test_the_characters_accepted_are_airflows() -> None:
    allowed = re.compile(airflow_default("scheduler", "allowed_run_id_pattern").strip())
    for code in range(32, 0x250):
        char = chr(code)
        try:
            check_run_id(f"a{char}b")
            ours = True
        except ValueError:
            ours = False
        assert ours == bool(allowed.match(f"a{char}b")), (char, RUN_ID_CHARACTERS)


# Made at import: ids that differ per process are keyed by their source, so xdist's workers agree.
RUN_IDS_MADE = {
    "direct": new_run_id("direct"),
    "migrate": new_run_id("migrate"),
    "airflow manual": "manual__2026-11-24T10:00:00+00:00",
    "airflow scheduled": "scheduled__2026-11-24T00:00:00+00:00",
    "airflow asset-triggered": "asset_triggered__2026-11-24T10:00:00.123456+00:00",
    "our trigger": "manual__2026-11-24T10:00:00.123456+00:00_0a1b2c3d4e",
    "dagster": str(uuid.uuid4()),
    "observer": NAMES.head_observer_run,
    "seed": "seed",
}


@pytest.mark.parametrize("run_id", list(RUN_IDS_MADE.values()), ids=list(RUN_IDS_MADE))
def test_every_run_id_the_pipeline_and_orchestrators_make_is_accepted(run_id: str) -> None:
    assert check_run_id(run_id) == run_id
