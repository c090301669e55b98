"""`init`: a project written from a team's CSV, whose generated test passes and whose pipeline runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_tasks.project.declared import load_project
from shared_tasks.project.pipeline import run_pipeline
from shared_tasks.run.adopt import adopt_csv
from shared_tasks.validation.table_schema import load_table_schema
from shared_tasks.versioning.history import history, verify
from tests.conftest import LocalVersioning
from tests.test_schema_infer import generated_rows, write_csv


@pytest.fixture
def forget_packages() -> Iterator[list[str]]:
    """The generated packages' modules leave this process after the test (each test writes its own)."""
    names: list[str] = []
    yield names
    for name in [module for module in sys.modules if module.split(".")[0] in names]:
        del sys.modules[name]


def run_generated_tests(project: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def a_teams_shell(tmp_path: Path) -> dict[str, str]:
    """A developer's environment that would break (or misdirect) any versioning a test did with it:
    Git signing every commit with a program that fails, an S3 endpoint nobody serves, real-looking
    keys, the team's real origin. The plugin's fixtures must run with none of it."""
    gitconfig = tmp_path / "developer.gitconfig"
    gitconfig.write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tprogram = false\n", encoding="utf-8")
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "AKIA" + "DEVELOPER0000000",
        "PIPELINE_GIT_URL": "file:///nonexistent/team-origin.git",
    }
    signing = tmp_path / "signing"
    subprocess.run(["git", "init", "-q", str(signing)], check=True, env=env)
    refused = subprocess.run(
        ["git", "-C", str(signing), "commit", "-q", "--allow-empty", "-m", "x"], env=env, capture_output=True
    )
    assert refused.returncode != 0, "the developer's Git configuration bites wherever it reaches"
    return env


@pytest.mark.slow  # the generated tests start an S3 API and run DVC's commands
@pytest.mark.parametrize("keyed", [True, False], ids=["merge-on-the-inferred-key", "append-without-a-key"])
def test_a_project_from_a_csv_has_a_passing_test_and_its_pipeline_publishes_verified_versions(
    keyed: bool, local_versioning: LocalVersioning, tmp_path: Path, forget_packages: list[str]
) -> None:
    from dataset_pipeline.cli import app

    header, rows, _ = generated_rows()
    if not keyed:  # every row twice: no column nor pair holds each value once
        rows = rows + rows
    name = f"readings_{'keyed' if keyed else 'plain'}"
    csv = write_csv(tmp_path / f"{name}.csv", header, rows)
    project = tmp_path / "project"
    made = CliRunner().invoke(app, ["init", str(project), "--from", str(csv)])
    assert made.exit_code == 0, made.output
    forget_packages.append(f"{name}_steps")
    declared = load_project(project / "dataset-pipeline.toml").pipeline()
    assert (declared.name, declared.dataset, declared.output.strategy) == (
        name,
        f"data/{name}.csv",
        "merge" if keyed else "append",
    )
    schema = load_table_schema(declared.schema_path)
    assert list(schema.primary_key) == (["station", "day"] if keyed else [])
    assert (project / "tests" / "sample.csv").read_text().count("\n") == 51, "the header and 50 rows"

    tested = run_generated_tests(project, a_teams_shell(tmp_path))
    assert tested.returncode == 0 and "4 passed" in tested.stdout, tested.stdout + tested.stderr

    settings = local_versioning.settings.model_copy(update={"project_file": declared.project_file}).for_pipeline(None)
    adopted = adopt_csv(settings, csv, "adopt-init")
    version = run_pipeline(settings, "manual__first-run", params={"rows": 4})
    if keyed:
        assert (version.rows, version.rows_added, version.rows_updated) == (len(rows), 0, 4)
    else:
        assert (version.rows, version.rows_added) == (len(rows) + 4, 4)
    assert [v.commit for v in history(settings)] == [version.commit, adopted.commit]
    assert verify(settings, version.commit, validate=True).ok


def test_the_generated_test_fails_when_the_step_does_not_do_what_it_says(tmp_path: Path) -> None:
    header, rows, _ = generated_rows()
    csv = write_csv(tmp_path / "readings_broken.csv", header, rows)
    project = tmp_path / "project"
    from dataset_pipeline.scaffold import init_project

    init_project(project, csv)
    steps = project / "readings_broken_steps" / "steps.py"
    steps.write_text(steps.read_text().replace('n=min(int(ctx.params["rows"]), current.height)', "n=1"))
    tested = run_generated_tests(project)
    assert tested.returncode == 1 and "1 failed, 3 passed" in tested.stdout, tested.stdout + tested.stderr


def test_init_refuses_a_folder_in_use_and_a_csv_that_is_not_there(tmp_path: Path) -> None:
    from dataset_pipeline.cli import app

    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("ours\n")
    refused = CliRunner().invoke(app, ["init", str(used), "--from", str(tmp_path / "x.csv")])
    assert refused.exit_code == 1 and "is not empty" in refused.output
    assert [path.name for path in used.iterdir()] == ["notes.txt"], "nothing written"
    missing = CliRunner().invoke(app, ["init", str(tmp_path / "new"), "--from", str(tmp_path / "x.csv")])
    assert missing.exit_code == 1 and "no such file" in missing.output and not (tmp_path / "new").exists()
    bad_name = CliRunner().invoke(app, ["init", str(tmp_path / "named"), "--from", __file__, "--name", "Bad Name"])
    assert bad_name.exit_code == 1 and "pipeline name 'Bad Name' refused" in bad_name.output


def test_init_without_a_csv_copies_the_bundled_example(tmp_path: Path) -> None:
    from dataset_pipeline.cli import app

    made = CliRunner().invoke(app, ["init", str(tmp_path / "example")])
    assert made.exit_code == 0, made.output
    declared = load_project(tmp_path / "example" / "dataset-pipeline.toml").pipeline()
    assert (declared.name, declared.output.strategy) == ("station_readings", "merge")
    assert declared.schema_path.is_file()


def test_the_plugin_runs_the_examples_two_steps_in_memory_as_a_run_calls_them(tmp_path: Path) -> None:
    """The bundled example's steps through the plugin, opted into with `-p`: one step's output is the
    next one's input, a retired station's readings are marked for deletion, bounds are checked."""
    test = tmp_path / "test_station_steps.py"
    test.write_text(
        """
import pytest
from pathlib import Path

SEED = Path(r"{seed}")


def test_collect_then_quality_check(run_step, read_dataset, pipeline):
    dataset = read_dataset(SEED)
    collected = run_step("collect_readings", dataset=dataset, params={{"days": 2, "corrections": 3}})
    assert collected.height > 0
    again = run_step("collect_readings", dataset=dataset, params={{"days": 2, "corrections": 3}})
    assert collected.equals(again), "the same run id and step draw the same rows"
    checked = run_step(
        "quality_check", collect_readings=collected, dataset=dataset, params={{"retire": "{station}"}}
    )
    retracted = checked.filter(checked["retracted"])
    assert retracted.height > 0 and set(retracted["station"].to_list()) == {{"{station}"}}
    with pytest.raises(ValueError, match="days"):
        run_step("collect_readings", dataset=dataset, params={{"days": 99}})
    with pytest.raises(ValueError, match="takes"):
        run_step("quality_check", dataset=dataset)
""".format(seed=STATION_SEED, station=first_station())
    )
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hydra_pytest",
            "-p",
            "dataset_pipeline.testing",
            str(test),
        ],
        cwd=tmp_path,
        env={**os.environ, "PIPELINE_PROJECT_FILE": str(STATION_PROJECT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr


STATION_PROJECT = Path(__file__).resolve().parents[1] / "examples" / "station_readings" / "dataset-pipeline.toml"
STATION_SEED = STATION_PROJECT.parent / "seed" / "station_readings.csv"


def first_station() -> str:
    return STATION_SEED.read_text().splitlines()[1].split(",")[0]
