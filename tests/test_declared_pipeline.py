"""A pipeline a team declares: its project file, its schema, its own steps, append with a generated key.

The project is written by the test into a folder outside the product's source (tests/team_project.py),
and runs through the product's steps with the local backends (a real bare Git origin, DVC's remote
a folder). What a run published is read back from the origin and the remote.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from shared_tasks.project.cutover import CutoverSteps, read_cutover
from shared_tasks.project.declared import ProjectFileError, load_project
from shared_tasks.project.pipeline import StepInputs, pipeline_steps, run_pipeline
from shared_tasks.project.settings import Layout, load_settings
from shared_tasks.run.steps import pull_data, push_data, run_declared_step
from shared_tasks.run.team_steps import StepDefinitionError
from shared_tasks.run.workspace import WorkspaceError
from shared_tasks.validation.schema import DataValidationError
from shared_tasks.versioning.history import history, verify
from tests.conftest import LocalVersioning, git
from tests.team_project import SEED_ROWS, use_settings_env, write_project
from tests.team_repo import TeamRepo


def test_a_declared_pipeline_runs_its_steps_and_publishes_one_version_with_generated_keys(
    team: TeamRepo, tmp_path: Path
) -> None:
    steps = [step.name for step in pipeline_steps(team.settings)]
    assert steps == ["pull_data", "collect", "clean", "push_data"]
    version = run_pipeline(team.settings, "manual__team-1", params={"readings": 4})
    assert (version.rows, version.rows_added) == (SEED_ROWS + 4, 4)
    assert team.calls() == ["collect", "clean"]
    data = team.head_data(tmp_path / "reads")
    assert list(data["Reading ID"]) == list(range(1, SEED_ROWS + 5)), "ids assigned largest + 1, + 2, ..."
    added = data.tail(4)
    assert set(added["note"]) == {"ok"} and all(round(v, 1) == v for v in added["celsius"]), "clean's output"
    newest = history(team.settings)[0]
    assert newest.run_id == "manual__team-1" and newest.commit == version.commit
    assert newest.steps_by == {"pull_data": "direct", "collect": "direct", "clean": "direct", "push_data": "direct"}
    assert verify(team.settings, version.commit, validate=True).ok


def test_a_retried_step_that_finished_is_not_run_again_and_an_unfinished_one_makes_the_same_rows(
    team: TeamRepo,
) -> None:
    run = "manual__team-retry"
    pull_data(team.settings, run)
    first = run_declared_step(team.settings, run, "collect", {"readings": 5})
    again = run_declared_step(team.settings, run, "collect", {"readings": 5})
    assert team.calls() == ["collect"], "the kept output answered the retry"
    assert again.already_done and again.md5 == first.md5 and again.rows == 5
    # The output lost (a step killed before it recorded it): the retry computes the same rows.
    output = team.settings.work_root
    kept = next(output.rglob("outputs/collect.parquet"))
    kept.unlink()
    remade = run_declared_step(team.settings, run, "collect", {"readings": 5})
    assert team.calls() == ["collect", "collect"] and remade.md5 == first.md5 and not remade.already_done


def test_the_parameters_are_checked_before_any_step_works(team: TeamRepo) -> None:
    run = "manual__team-params"
    pull_data(team.settings, run)
    for given, named in [
        ({"readings": 0}, "below its minimum 1"),
        ({"readings": 501}, "above its maximum 500"),
        ({"readings": "7"}, "must be an integer"),
        ({"rows": 3}, "has no parameter 'rows'"),
    ]:
        with pytest.raises(ValueError, match=named):
            run_declared_step(team.settings, run, "collect", given)
    assert team.calls() == [], "no step ran with a bad parameter"
    run_declared_step(team.settings, run, "collect", {"readings": 2})
    with pytest.raises(WorkspaceError, match="already runs with parameters"):
        run_declared_step(team.settings, run, "clean", {"readings": 3})


def test_an_output_that_breaks_the_schema_is_refused_naming_line_column_and_value_and_nothing_is_published(
    team: TeamRepo,
) -> None:
    before = git(team.origin, "rev-parse", "main")
    run = "manual__team-bad"
    pull_data(team.settings, run)
    run_declared_step(team.settings, run, "collect", {"readings": 3, "note": "x" * 41})
    run_declared_step(team.settings, run, "clean", {"readings": 3, "note": "x" * 41})
    with pytest.raises(DataValidationError) as refused:
        push_data(team.settings, run)
    text = str(refused.value)
    assert "line 2" in text and "'note'" in text and "x" * 20 in text, text
    assert git(team.origin, "rev-parse", "main") == before


def test_a_run_that_lost_the_publish_race_reapplies_its_output_on_the_new_head(team: TeamRepo, tmp_path: Path) -> None:
    slow, fast = "manual__team-slow", "manual__team-fast"
    pull_data(team.settings, slow)
    for step in ("collect", "clean"):
        run_declared_step(team.settings, slow, step, {"readings": 3})
    run_pipeline(team.settings, fast, params={"readings": 2})  # publishes while the slow run waits
    fast_commit = git(team.origin, "rev-parse", "main")
    version = push_data(team.settings, slow)
    assert git(team.origin, "rev-parse", f"{version.commit}^") == fast_commit, "built on the head it did not pull"
    assert (version.rows, version.rows_added) == (SEED_ROWS + 5, 3)
    data = team.head_data(tmp_path / "reads")
    assert data["Reading ID"].is_unique and len(data) == SEED_ROWS + 5
    assert [v.run_id for v in history(team.settings)[:2]] == [slow, fast]


def test_a_step_whose_function_does_not_match_its_declared_inputs_is_refused_naming_both(team: TeamRepo) -> None:
    project_file = team.project_dir / "dataset-pipeline.toml"
    text = project_file.read_text().replace('inputs = ["collect", "dataset"]', 'inputs = ["collect"]')
    project_file.write_text(text)
    run = "manual__team-signature"
    pull_data(team.settings, run)
    run_declared_step(team.settings, run, "collect", {})
    with pytest.raises(StepDefinitionError, match=r"takes \(collect, dataset\).*declares inputs \(collect\)"):
        run_declared_step(team.settings, run, "clean", {})


def test_settings_from_the_environment_take_the_pipelines_dataset_and_layout(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_settings_env(monkeypatch, team.settings)
    loaded = load_settings()
    assert (loaded.dataset_path, loaded.layout, loaded.pipeline_name) == (
        "data/readings.csv",
        team.settings.layout,
        "readings",
    )
    with pytest.raises(ValueError, match="declares no pipeline 'ledger'"):
        load_settings(pipeline="ledger")
    spec = next(step for step in pipeline_steps(loaded) if step.name == "collect")
    record = None
    pull_data(loaded, "manual__team-env")
    record = spec.run(loaded, "manual__team-env", StepInputs(params={"readings": 1}))
    assert record.timing is not None and getattr(record, "rows", None) == 1


# --- project files a team could get wrong: every one refused naming the field -------------------

GOOD = """
[[pipeline]]
name = "ledger"
dataset = "data/ledger.csv"
schema = "ledger.schema.json"
[[pipeline.steps]]
name = "collect"
function = "ledger.steps:collect"
"""

BAD_PROJECT_FILES = {
    "not TOML": ("[[pipeline]\n", "not valid TOML"),
    "no pipeline": ("[other]\nx = 1\n", "declares no pipeline"),
    "bad name": (GOOD.replace('name = "ledger"', 'name = "2ledger"'), "field name: pipeline name '2ledger' refused"),
    "absolute dataset": (GOOD.replace('"data/ledger.csv"', '"/etc/ledger.csv"'), "field dataset"),
    "climbing dataset": (GOOD.replace('"data/ledger.csv"', '"../ledger.csv"'), "field dataset"),
    "not a csv": (GOOD.replace('"data/ledger.csv"', '"data/ledger.parquet"'), "field dataset"),
    "unknown layout": (GOOD.replace("schema =", 'layout = "sharded"\nschema ='), "field layout"),
    "no steps": (GOOD.split("[[pipeline.steps]]")[0], "field steps"),
    "typo": (GOOD.replace("schema =", 'shema = "x"\nschema ='), "field shema: not a field the product knows"),
    "bad function path": (GOOD.replace("ledger.steps:collect", "ledger.steps.collect"), "field steps[0].function"),
    "reserved step name": (GOOD.replace('name = "collect"', 'name = "push_data"'), "taken by the product"),
    "upper-case step name": (GOOD.replace('name = "collect"', 'name = "Collect"'), "field steps[0].name"),
    "unknown input": (GOOD + 'inputs = ["clean"]\n', "takes 'clean', which is neither"),
    "step twice": (GOOD + '[[pipeline.steps]]\nname = "collect"\nfunction = "a:b"\n', "declared twice"),
    "unknown output step": (GOOD + '[pipeline.output]\nstep = "clean"\n', "output step 'clean'"),
    "unknown strategy": (GOOD + '[pipeline.output]\nstrategy = "upsert"\n', "field output.strategy"),
    "key with replace": (GOOD + '[pipeline.output]\nstrategy = "replace"\ngenerated_key = "id"\n', "append"),
    "param of wrong default": (GOOD + '[pipeline.params.n]\ntype = "integer"\ndefault = "3"\n', "field params.n"),
    "param bounds reversed": (
        GOOD + '[pipeline.params.n]\ntype = "integer"\ndefault = 3\nminimum = 5\nmaximum = 1\n',
        "field params.n",
    ),
    "param default out of bounds": (
        GOOD + '[pipeline.params.n]\ntype = "integer"\ndefault = 9\nmaximum = 5\n',
        "above its maximum 5",
    ),
    "param bounds on a string": (
        GOOD + '[pipeline.params.n]\ntype = "string"\ndefault = "a"\nminimum = 1\n',
        "apply to integer and number",
    ),
    "pipeline twice": (GOOD + GOOD.replace("data/ledger.csv", "data/other.csv"), "pipeline 'ledger' is declared twice"),
    "one dataset twice": (GOOD + GOOD.replace('name = "ledger"', 'name = "other"'), "the same dataset"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROJECT_FILES))
def test_a_bad_project_file_is_refused_naming_the_field(case: str, tmp_path: Path) -> None:
    text, named = BAD_PROJECT_FILES[case]
    path = tmp_path / "dataset-pipeline.toml"
    path.write_text(text)
    with pytest.raises(ProjectFileError) as refused:
        load_project(path)
    assert named in str(refused.value) and str(path) in str(refused.value), str(refused.value)


def test_the_same_declaration_reads_from_a_pyproject_table(tmp_path: Path) -> None:
    standalone = tmp_path / "dataset-pipeline.toml"
    standalone.write_text(GOOD)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "ledger"\n' + GOOD.replace("[[pipeline", "[[tool.dataset-pipeline.pipeline")
    )
    from_pyproject, from_file = load_project(pyproject).pipeline(), load_project(standalone).pipeline()
    assert from_pyproject.model_dump() == from_file.model_dump() and from_file.name == "ledger"
    assert (from_pyproject.project_file, from_file.project_file) == (pyproject, standalone)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ProjectFileError, match=r"no \[tool.dataset-pipeline\] table"):
        load_project(tmp_path / "empty" / "pyproject.toml")


def test_an_invalid_schema_file_is_refused_naming_the_pipeline_and_the_field(team: TeamRepo) -> None:
    schema = team.project_dir / "schemas" / "readings.schema.json"
    schema.write_text(schema.read_text().replace('"type": "date"', '"type": "calendar-day"'))
    with pytest.raises(ValueError, match=r"(?s)pipeline 'readings'.*field 'day'.*unknown type 'calendar-day'"):
        pull_data(team.settings, "manual__team-schema")


def test_loading_the_project_imports_none_of_the_teams_code(team: TeamRepo) -> None:
    for step in pipeline_steps(team.settings):
        assert step.name in ("pull_data", "push_data") or step.declared
    assert f"{team.package}.steps" not in sys.modules


def test_the_cli_runs_a_declared_pipeline_with_its_parameters_and_refuses_bad_ones(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from dataset_pipeline.cli import app

    use_settings_env(monkeypatch, team.settings)
    runner = CliRunner()
    before = git(team.origin, "rev-parse", "main")
    for bad, named in [
        ("readings=0", "below its minimum 1"),
        ("rows=2", "has no parameter 'rows'"),
        ("x", "NAME=VALUE"),
    ]:
        refused = runner.invoke(app, ["run", "--param", bad])
        assert refused.exit_code == 1 and named in refused.output, refused.output
    assert git(team.origin, "rev-parse", "main") == before and team.calls() == []
    done = runner.invoke(app, ["run", "--param", "readings=2", "--param", "note=from the cli", "--json"])
    assert done.exit_code == 0, done.output
    version = json.loads(done.stdout[done.stdout.index("{") :])
    assert (version["rows_added"], version["rows"]) == (2, SEED_ROWS + 2)
    assert history(team.settings)[0].commit == version["commit"] != before


def test_airflow_gets_one_dag_per_declared_pipeline_with_its_steps_edges_and_params(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    from tests.test_airflow_dag import load_dag

    load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(team.settings.project_file))  # a fresh import
    dag = importlib.import_module("airflow_dags.declared_pipelines").readings_pipeline
    steps = pipeline_steps(team.settings)
    assert [task.task_id for task in dag.topological_sort()] == [step.name for step in steps]
    for step in steps:
        assert dag.get_task(step.name).upstream_task_ids == set(step.upstream)
    assert [outlet.name for outlet in dag.get_task("push_data").outlets] == ["readings"]
    params = ParamsDict(dag.params)
    assert params["readings"] == 3 and params["note"] == "ok"
    with pytest.raises(ParamValidationError, match="maximum"):
        params["readings"] = 501
        params.validate()
    assert f"{team.package}.steps" not in sys.modules, "parsing imported none of the team's code"


# --- Dagster: the pipeline's asset group and job, materialized in-process ------------------------


def test_dagster_materializes_the_declared_pipeline_as_one_version_under_its_own_asset_keys(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dagster as dg

    from dagster_assets.declared_pipelines import DeclaredPipelineSettings, pipeline_definitions
    from dagster_assets.resources import NoStoredOutputs

    use_settings_env(monkeypatch, team.settings)
    assets, job = pipeline_definitions(team.settings.declared())
    assert job.name == "readings_pipeline"
    keys = [asset.key.path for asset in assets]
    assert keys == [
        ["readings", "pulled_dataset"],
        ["readings", "collect"],
        ["readings", "clean"],
        ["readings", "published_dataset"],
    ]
    resources = {"declared_settings": DeclaredPipelineSettings(), "io_manager": NoStoredOutputs()}
    before = git(team.origin, "rev-parse", "main")
    refused = dg.materialize(
        assets,
        resources=resources,
        run_config={"ops": {"readings__pulled_dataset": {"config": {"readings": 501}}}},
        raise_on_error=False,
    )
    assert not refused.success and git(team.origin, "rev-parse", "main") == before and team.calls() == []
    result = dg.materialize(
        assets, resources=resources, run_config={"ops": {"readings__pulled_dataset": {"config": {"readings": 6}}}}
    )
    assert result.success
    published = result.asset_materializations_for_node("readings__published_dataset")[0]
    claims = {key: entry.value for key, entry in published.metadata.items()}
    assert (claims["rows"], claims["rows_added"]) == (SEED_ROWS + 6, 6)
    newest = history(team.settings)[0]
    assert newest.commit == claims["commit"] and newest.orchestrator == "dagster" and newest.run_id == result.run_id
    assert newest.steps_by == {"pull_data": "dagster", "collect": "dagster", "clean": "dagster", "push_data": "dagster"}
    assert team.calls() == ["collect", "clean"]
    assert len(team.head_data(tmp_path / "reads")) == SEED_ROWS + 6


def test_airflow_tasks_and_edges_equal_dagster_assets_and_dependencies_for_a_declared_pipeline(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from dagster_assets.declared_pipelines import pipeline_definitions
    from tests.test_airflow_dag import load_dag

    load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(team.settings.project_file))
    dag = importlib.import_module("airflow_dags.declared_pipelines").readings_pipeline
    airflow = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    assets, _ = pipeline_definitions(team.settings.declared())
    step_of = {step.output: step.name for step in pipeline_steps(team.settings)}
    dagster = {}
    for asset in assets:
        upstream = {step_of[key.path[-1]] for key in asset.asset_deps[asset.key]}
        dagster[step_of[asset.key.path[-1]]] = upstream
    assert airflow == dagster and len(airflow) == 4


def test_the_builtin_pipeline_keeps_its_own_settings_beside_a_project_file(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_tasks.project.settings import load_builtin_settings
    from shared_tasks.validation.schema import ID_COLUMN, rules_of

    use_settings_env(monkeypatch, team.settings)
    assert load_settings().dataset_path == "data/readings.csv"
    builtin = load_builtin_settings()
    assert (builtin.dataset_path, builtin.is_declared) == ("data/employee_attrition.csv", False)
    assert rules_of(builtin).generated_key == ID_COLUMN and rules_of(load_settings()).generated_key == "Reading ID"


@pytest.mark.slow  # an Airflow and a Dagster process of their own
def test_both_orchestrators_load_a_declared_pipeline_with_their_own_loaders(
    team: TeamRepo, settings_env: dict[str, str], tmp_path: Path
) -> None:
    """Airflow's DagBag and `dagster definitions validate`, each in a process of its own."""
    from tests.airflow_support import airflow_env
    from tests.conftest import REPO_ROOT
    from tests.test_dagster_defs import dagster_cli

    project = {"PIPELINE_PROJECT_FILE": str(team.settings.project_file)}
    script = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO_ROOT / 'airflow_dags')!r})\n"
        "print(sorted(bag.dag_ids), bag.import_errors)\n"
    )
    env = {**airflow_env(tmp_path / "airflow-home"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **project}
    import subprocess

    parsed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    dags, errors = parsed.stdout.strip().splitlines()[-1].split("] ", 1)
    assert errors == "{}", parsed.stdout[-2000:]
    assert {"readings_pipeline", "verify_readings_version", "dataset_pipeline", "verify_dataset_version"} == {
        name.strip(" '[") for name in dags.split(",")
    }, dags
    validated = dagster_cli(
        "definitions",
        "validate",
        "-m",
        "dagster_assets.definitions",
        env={**settings_env, "DAGSTER_HOME": str(tmp_path), **project},
        cwd=REPO_ROOT,
    )
    assert validated.returncode == 0, validated.stderr[-2000:]
    broken = team.settings.project_file
    assert broken is not None
    broken.write_text(broken.read_text().replace('name = "clean"', 'name = "Clean"'))
    refused = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "steps[1].name" in refused.stdout, "Airflow shows the bad project file as an import error naming the field"


# --- adopt: a team's CSV becomes its pipeline's first version, in a repository shared with another ----


@pytest.mark.parametrize("layout", [Layout.SINGLE_FILE, Layout.PARTITIONED], ids=lambda layout: layout.value)
def test_adopt_publishes_a_csv_as_the_first_version_beside_another_pipelines_dataset(
    layout: Layout, local_versioning: LocalVersioning, tmp_path: Path
) -> None:
    from shared_tasks.run.adopt import adopt_csv
    from tests.team_project import seed_csv

    employees = local_versioning.settings
    package = f"adopted_team_{layout.name.lower()}"
    project_file = write_project(tmp_path / "team-project", layout, package)
    settings = employees.model_copy(update={"project_file": project_file}).for_pipeline(None)
    employee_history = [version.commit for version in history(employees)]
    before = git(local_versioning.origin, "rev-parse", "main")
    bad = tmp_path / "bad.csv"
    bad.write_text(seed_csv(3).replace("north", "nowhere"))
    with pytest.raises(DataValidationError, match=r"line 2, column 'station', value 'nowhere'"):
        adopt_csv(settings, bad, "adopt-bad")
    assert git(local_versioning.origin, "rev-parse", "main") == before, "nothing published"
    good = tmp_path / "readings.csv"
    good.write_text(seed_csv(12))
    adopted = adopt_csv(settings, good, "adopt-1")
    assert adopt_csv(settings, good, "adopt-1").already_published
    with pytest.raises(WorkspaceError, match="already tracks data/readings"):
        adopt_csv(settings, good, "adopt-2")
    version = run_pipeline(settings, "manual__after-adopt", params={"readings": 2})
    assert (version.rows, version.rows_added) == (14, 2)
    assert [v.commit for v in history(settings)] == [version.commit, adopted.commit]
    assert [v.commit for v in history(employees)] == employee_history, "the other pipeline's history is its own"
    assert verify(settings, version.commit, validate=True).ok and verify(employees, version.commit, validate=True).ok
    sys.modules.pop(f"{package}.steps", None)


def test_every_version_command_takes_the_declared_pipeline(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from dataset_pipeline.cli import app
    from tests.team_project import seed_csv

    use_settings_env(monkeypatch, team.settings)
    runner = CliRunner()
    version = run_pipeline(team.settings, "manual__team-cli", params={"readings": 2})
    shown = runner.invoke(app, ["history", "--json", "--pipeline", "readings"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)[0]["commit"] == version.commit
    unknown = runner.invoke(app, ["history", "--pipeline", "ledger"])
    assert unknown.exit_code == 1 and "declares no pipeline 'ledger'" in unknown.output
    checked = runner.invoke(app, ["validate", version.commit, "--json", "--pipeline", "readings"])
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"], checked.output
    bad = tmp_path / "bad.csv"
    bad.write_text(seed_csv(2).replace("north", "nowhere"))
    refused = runner.invoke(app, ["validate", str(bad)])
    assert refused.exit_code == 1 and "value 'nowhere'" in refused.output, "checked against the team's schema"
    good = tmp_path / "good.csv"
    good.write_text(seed_csv(2))
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    builtin_before = Path(os.environ["PIPELINE_CUTOVER_FILE"]).read_text()
    held = runner.invoke(app, ["cutover", "clean", "dagster", "--pipeline", "readings"])
    assert held.exit_code == 1 and "clean stays where it runs: Dagster is not running here" in held.output
    moved = runner.invoke(app, ["cutover", "clean", "dagster", "--pipeline", "readings", "--force"])
    assert moved.exit_code == 0 and "without the proof its shadow runs give" in moved.output, moved.output
    written = team.project_dir / "cutover.readings.yaml"  # beside the project file: it travels with it
    assert read_cutover(written, CutoverSteps.of(team.settings.declared())).in_dagster() == ["clean"]
    assert "clean: dagster  # forced: Dagster is not running here" in written.read_text(), "why it was forced"
    assert written.read_text().startswith("# Which orchestrator runs each step of DAG readings_pipeline")
    assert Path(os.environ["PIPELINE_CUTOVER_FILE"]).read_text() == builtin_before, "the built-in's lines are its own"
    listed = runner.invoke(app, ["cutover"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and all(name in listed.stdout for name in ("collect", "clean", "push_data"))
    assert "dagster (forced)" in listed.stdout
    back = runner.invoke(app, ["cutover", "clean", "airflow"])
    assert back.exit_code == 0 and "forced" not in written.read_text(), "rolled back, the mark goes with it"
    unknown = runner.invoke(app, ["cutover", "modify_data", "dagster"])
    assert unknown.exit_code == 1 and "the steps of readings_pipeline are pull_data, collect, clean" in unknown.output


def test_each_declared_pipeline_has_a_watcher_on_its_asset_and_a_verifying_dag_of_its_own(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from airflow_dags.version_watcher import NewVersionTrigger
    from tests.test_airflow_dag import load_dag

    load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(team.settings.project_file))
    module = importlib.import_module("airflow_dags.declared_pipelines")
    asset = next(iter(module.readings_pipeline.get_task("push_data").outlets))
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath.endswith("NewVersionTrigger") and kwargs["pipeline"] == "readings"
    assert NewVersionTrigger(**kwargs).pipeline == "readings", "the triggerer rebuilds the watcher of this pipeline"
    verifying = module.verify_readings_version
    assert list(verifying.timetable.asset_condition.objects) == [asset], "scheduled on the pipeline's own Asset"
    assert verifying.max_active_runs == 1 and verifying.get_task("verify_versions").inlets == [asset]


def test_the_watcher_of_a_declared_pipeline_announces_its_versions_and_no_other_pipelines(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow_dags.version_watcher import NewVersionTrigger
    from shared_tasks.project.names import ANNOUNCED_COMMIT_KEY
    from tests.test_version_watcher import StateStore

    use_settings_env(monkeypatch, team.settings)
    store = StateStore()

    async def scenario() -> dict[str, object]:
        watcher = NewVersionTrigger(poll_seconds=0.1, pipeline="readings")
        watcher.asset_state_store = store  # type: ignore[assignment]
        events = watcher.run()
        first = asyncio.ensure_future(anext(events))
        await asyncio.wait_for(store.until(lambda values: ANNOUNCED_COMMIT_KEY in values), 60)
        await asyncio.to_thread(run_pipeline, team.settings, "direct-declared")
        event = await asyncio.wait_for(first, 60)
        return dict(event.payload)

    announced = asyncio.run(scenario())
    assert announced["run_id"] == "direct-declared" and announced["commit"] == history(team.settings)[0].commit


# --- cut over: a declared step run by Dagster for an Airflow run --------------------------------


def readings_tags(task_id: str, dag_id: str = "readings_pipeline") -> dict[str, str]:
    from shared_tasks.project.cutover import AIRFLOW_DAG_TAG, AIRFLOW_RUN_TAG, AIRFLOW_TASK_TAG, AIRFLOW_TRY_TAG

    run_id = "manual__2026-12-07T12:00:00+00:00"
    return {AIRFLOW_DAG_TAG: dag_id, AIRFLOW_RUN_TAG: run_id, AIRFLOW_TASK_TAG: task_id, AIRFLOW_TRY_TAG: "1"}


def test_a_declared_steps_airflow_tags_are_checked_against_its_own_dag_steps_and_asset(team: TeamRepo) -> None:
    from dagster_assets.airflow_claims import AirflowClaim, ClaimRefused, claimed_task
    from shared_tasks.project.cutover import AIRFLOW_DAG_TAG, AIRFLOW_TASK_TAG

    project = team.settings.project_file
    tags = readings_tags("clean")
    claim = claimed_task(tags, ("readings", "clean"), project)
    assert claim == AirflowClaim("readings_pipeline", tags["airflow/run_id"], "clean", 1)
    forged = [
        # (tags, asset key, project file, refused tag, what the refusal says)
        (readings_tags("clean", "dataset_pipeline"), ("readings", "clean"), project, AIRFLOW_DAG_TAG, "'readings_"),
        (readings_tags("push_data"), ("published_dataset",), project, AIRFLOW_DAG_TAG, "'dataset_pipeline'"),
        (readings_tags("clean", "ledger_pipeline"), ("readings", "clean"), project, AIRFLOW_DAG_TAG, "belongs to"),
        (readings_tags("clean"), ("readings", "clean"), None, AIRFLOW_DAG_TAG, "'readings_pipeline'"),
        (readings_tags("collect"), ("readings", "clean"), project, AIRFLOW_TASK_TAG, "launches collect, not clean"),
        (readings_tags("modify_data"), ("readings", "clean"), project, AIRFLOW_TASK_TAG, "pull_data, collect, clean"),
    ]
    for forged_tags, asset, project_file, tag, says in forged:
        with pytest.raises(ClaimRefused) as refused:
            claimed_task(forged_tags, asset, project_file)
        assert refused.value.tag == tag and says in str(refused.value.description), (forged_tags, asset)


def test_a_declared_step_cut_over_to_dagster_works_in_the_airflow_runs_workspace_with_its_parameters(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Airflow runs pull_data, collect and push_data; its `clean` task launches the step's asset in Dagster
    with the run's tags and parameters (launch_config); the version is Airflow's, `clean` run by Dagster."""
    import dagster as dg

    from airflow_dags.dagster_proxy import launch_config
    from dagster_assets import declared_pipelines as declared_assets
    from dagster_assets.resources import NoStoredOutputs

    use_settings_env(monkeypatch, team.settings)
    pipeline = team.settings.declared()
    steps = {step.name: step for step in pipeline_steps(team.settings)}
    tags = readings_tags("clean")
    run_id, params = tags["airflow/run_id"], {"readings": 3}
    for name in ("pull_data", "collect"):
        steps[name].run(team.settings, run_id, StepInputs(orchestrator="airflow", runner="airflow", params=params))
    config = launch_config(CutoverSteps.of(pipeline), "clean", params)
    assert config == {"ops": {"readings__clean": {"config": {"readings": 3}}}}
    assets, _ = declared_assets.pipeline_definitions(pipeline)
    clean_asset = next(asset for asset in assets if asset.key.path == ["readings", "clean"])
    resources = {"declared_settings": declared_assets.DeclaredPipelineSettings(), "io_manager": NoStoredOutputs()}

    unvouched = dg.materialize([clean_asset], resources=resources, run_config=config, tags=tags, raise_on_error=False)
    assert not unvouched.success and team.calls() == ["collect"], "tags no Airflow vouched for run nothing"
    failure = next(event for event in unvouched.all_events if event.event_type_value == "STEP_FAILURE")
    assert "Airflow is not configured here" in str(failure.event_specific_data.error)  # type: ignore[union-attr]

    vouched: list[tuple[str, ...]] = []

    def vouch(run_tags: dict[str, str], dagster_run_id: str, asset: tuple[str, ...]) -> bool:
        vouched.append(tuple(asset))
        return "airflow/run_id" in run_tags

    monkeypatch.setattr(declared_assets, "check_launch_tags", vouch)
    assert dg.materialize([clean_asset], resources=resources, run_config=config, tags=tags).success
    assert vouched == [("readings", "clean")] and team.calls() == ["collect", "clean"]
    version = steps["push_data"].run(team.settings, run_id, StepInputs(orchestrator="airflow", runner="airflow"))
    newest = history(team.settings)[0]
    assert newest.commit == version.to_dict()["commit"] and newest.orchestrator == "airflow" and newest.run_id == run_id
    assert newest.steps_by == {"pull_data": "airflow", "collect": "airflow", "clean": "dagster", "push_data": "airflow"}
    assert newest.rows_added == 3 and len(team.head_data(tmp_path / "reads")) == SEED_ROWS + 3


def test_a_version_whose_step_was_forced_to_dagster_says_so_in_its_history(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cutover clean dagster --force` marks the line; Airflow's runs that Dagster's `clean` served then
    publish versions whose history names the forced step, and a proven move's versions do not."""
    from typer.testing import CliRunner

    from dataset_pipeline.cli import app
    from shared_tasks.project.cutover import Runner, declared_cutover_file, write_cutover

    use_settings_env(monkeypatch, team.settings)
    pipeline = team.settings.declared()
    steps = {step.name: step for step in pipeline_steps(team.settings)}
    cutover_path = declared_cutover_file(pipeline)

    def airflow_run_with_clean_in_dagster(run_id: str) -> None:
        for name in ("pull_data", "collect"):
            steps[name].run(team.settings, run_id, StepInputs(orchestrator="airflow", runner="airflow", params={}))
        steps["clean"].run(team.settings, run_id, StepInputs(orchestrator="airflow", runner="dagster", params={}))
        steps["push_data"].run(team.settings, run_id, StepInputs(orchestrator="airflow", runner="airflow"))

    forced = read_cutover(cutover_path, CutoverSteps.of(pipeline)).moved("clean", Runner.DAGSTER, "0 matched")
    write_cutover(cutover_path, forced)
    airflow_run_with_clean_in_dagster("manual__forced")
    proven = read_cutover(cutover_path, CutoverSteps.of(pipeline))
    write_cutover(cutover_path, proven.moved("clean", Runner.AIRFLOW).moved("clean", Runner.DAGSTER))
    airflow_run_with_clean_in_dagster("manual__proven")

    newest, before = history(team.settings)[:2]
    assert (before.run_id, before.forced_steps) == ("manual__forced", ["clean"])
    assert before.steps_by is not None and before.steps_by["clean"] == "dagster"
    assert (newest.run_id, newest.forced_steps, newest.steps_by) == ("manual__proven", None, before.steps_by)
    shown = CliRunner().invoke(app, ["history", "--pipeline", "readings"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and shown.stdout.count("clean by dagster (forced)") == 1, shown.stdout
    assert shown.stdout.count("clean by dagster") == 2


def test_a_parameter_given_twice_in_a_dagster_run_must_agree(team: TeamRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from dagster_assets.declared_pipelines import DeclaredPipelineSettings, pipeline_definitions
    from dagster_assets.resources import NoStoredOutputs

    use_settings_env(monkeypatch, team.settings)
    assets, _ = pipeline_definitions(team.settings.declared())
    resources = {"declared_settings": DeclaredPipelineSettings(), "io_manager": NoStoredOutputs()}
    before = git(team.origin, "rev-parse", "main")
    ops = {"readings__pulled_dataset": {"config": {"readings": 2}}, "readings__clean": {"config": {"readings": 3}}}
    refused = dg.materialize(assets, resources=resources, run_config={"ops": ops}, raise_on_error=False)
    assert not refused.success and git(team.origin, "rev-parse", "main") == before and team.calls() == []
    failure = next(event for event in refused.all_events if event.event_type_value == "STEP_FAILURE")
    said = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "parameter 'readings' is 2 in the config of readings__pulled_dataset but 3 in that of readings__clean" in (
        said
    )
    ops["readings__clean"]["config"]["readings"] = 2  # the same value twice is one value
    assert dg.materialize(assets, resources=resources, run_config={"ops": ops}).success
    assert history(team.settings)[0].rows_added == 2


def test_a_declared_dag_runs_each_step_where_its_cutover_file_says(
    team: TeamRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib

    from airflow_dags.dagster_proxy import DagsterStepOperator
    from shared_tasks.project.cutover import Cutover, CutoverError, Runner, write_cutover
    from tests.test_airflow_dag import load_dag

    steps = CutoverSteps.of(team.settings.declared())
    cutover_file = team.project_dir / "cutover.readings.yaml"

    def kinds() -> dict[str, str]:
        load_dag(monkeypatch, tmp_path, PIPELINE_PROJECT_FILE=str(team.settings.project_file))
        dag = importlib.import_module("airflow_dags.declared_pipelines").readings_pipeline
        return {task.task_id: type(task).__name__ for task in dag.tasks}

    assert set(kinds().values()) == {"_PythonDecoratedOperator"}, "no file: every step in Airflow"
    write_cutover(cutover_file, Cutover({"clean": Runner.DAGSTER}, steps))
    assert kinds() == {
        "pull_data": "_PythonDecoratedOperator",
        "collect": "_PythonDecoratedOperator",
        "clean": DagsterStepOperator.__name__,
        "push_data": "_PythonDecoratedOperator",
    }
    module = importlib.import_module("airflow_dags.declared_pipelines")
    clean = module.readings_pipeline.get_task("clean")
    assert clean.pipeline.names.dagster_job == "readings_pipeline" and clean.upstream_task_ids == {"collect"}
    cutover_file.write_text("clean: dagster\nmodify_data: dagster\n")
    with pytest.raises(CutoverError, match=r"cutover.readings.yaml, line 2: unknown step 'modify_data'"):
        kinds()
