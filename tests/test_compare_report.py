"""The comparison's report from figures alone: every runner's parts, isolation and plots, and runner names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataset_pipeline.compare import Comparison, RunMeasure, summarize
from dataset_pipeline.compare_report import parts_rows, write_report
from dataset_pipeline.compare_runners import RUNNERS, STEP_NAMES, runner_named, runner_names
from dataset_pipeline.run_parts import PARTS, split_run
from shared_tasks.project.records import StepTiming

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def measure(runner: str, offset: float) -> RunMeasure:
    timings = [
        (
            name,
            StepTiming(
                process_started_at=10 + 5 * i + offset, started_at=12 + 5 * i + offset, seconds=1.0, load_seconds=0.2
            ),
        )
        for i, name in enumerate(STEP_NAMES)
    ]
    parts = split_run(9.0, 26.0 + offset, timings)
    return RunMeasure(
        runner, f"{runner}-run", True, 17.0 + offset, dict.fromkeys(STEP_NAMES, 3.0), "c" * 40, parts=parts.to_dict()
    )


def test_the_report_holds_each_runners_parts_isolation_and_a_stacked_bar(tmp_path: Path) -> None:
    comparison = Comparison(runs_per_runner=2, records=1, started="2026-12-02T00:00:00+00:00", cutover_restored=[])
    for runner in ("airflow", "dagster"):
        measures = [measure(runner, 0.0), measure(runner, 1.0)]
        comparison.measures.extend(measures)
        comparison.summaries.append(summarize(runner, measures, 100.0, 200.0))
    paths = write_report(comparison, tmp_path)

    header, rows = parts_rows(comparison)
    assert header[2 : 2 + len(PARTS)] == [f"{part} s" for part in PARTS]
    for summary, row in zip(comparison.summaries, rows, strict=True):
        assert row[1] == runner_named(summary.runner).isolation
        medians = [float(cell) for cell in row[2 : 2 + len(PARTS)]]
        assert sum(medians) == pytest.approx(17.5, abs=0.02)  # the median run's parts: its end-to-end time
        assert summary.step_parts["modify_data"]["our_imports"] == pytest.approx(0.2)
    markdown = paths["markdown"].read_text()
    assert "Where the seconds went" in markdown and "To client" in markdown
    assert all(runner_named(name).isolation in markdown for name in ("airflow", "dagster"))
    for plot in ("plot", "parts_plot"):
        assert paths[plot].read_bytes().startswith(PNG_MAGIC)
        assert f'src="{paths[plot].name}"' in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["summaries"][0]["parts"]["work"]["median"] == pytest.approx(3.0)


def test_a_runner_is_named_as_the_report_names_it_or_with_an_ascii_arrow() -> None:
    assert runner_named("airflow->dagster:all").name == "airflow→dagster:all"
    assert {runner_named(name).name for name in RUNNERS} == set(RUNNERS)
    with pytest.raises(ValueError, match="unknown runner 'airflow->dagster:everything'; the runners are direct"):
        runner_named("airflow->dagster:everything")


def test_a_declared_pipeline_is_compared_on_its_own_steps_and_any_of_them_can_be_cut_over(tmp_path: Path) -> None:
    from shared_tasks.project.cutover import CutoverSteps
    from shared_tasks.project.declared import load_project
    from tests.team_project import write_project

    pipeline = CutoverSteps.of(load_project(write_project(tmp_path / "project")).pipeline("readings"))
    steps = ("pull_data", "collect", "clean", "push_data")
    default = runner_names(None, pipeline)
    assert default == (
        "direct",
        "airflow",
        "dagster",
        "dagster-in-process",
        "airflow→dagster:collect",
        "airflow→dagster:all",
    )
    assert runner_named("airflow->dagster:all", pipeline).in_dagster == steps
    assert runner_named("airflow->dagster:clean", pipeline).in_dagster == ("clean",)
    with pytest.raises(ValueError, match=r"airflow→dagster:STEP for a step of readings_pipeline: pull_data, collect"):
        runner_named("airflow->dagster:modify_data", pipeline)
    assert runner_names(["dagster", "airflow->dagster:clean", "dagster"], pipeline) == (
        "dagster",
        "airflow→dagster:clean",
    )

    comparison = Comparison(
        1, 1, "2026-12-07T00:00:00+00:00", pipeline="readings", steps=list(steps), params={"readings": 2}
    )
    measures = [RunMeasure("dagster", "r", True, 9.0, dict.fromkeys(steps, 2.0), "c" * 40)]
    comparison.measures.extend(measures)
    comparison.summaries.append(summarize("dagster", measures, 10.0, 20.0, steps))
    paths = write_report(comparison, tmp_path / "report")
    markdown = paths["markdown"].read_text()
    assert "Pipeline readings" in markdown and "readings=2" in markdown
    assert all(f"| {step}" in markdown or f" {step} |" in markdown for step in steps), markdown
    assert "modify_data" not in markdown


def test_a_shadowed_step_is_reported_with_each_sides_work_from_the_same_runs(tmp_path: Path) -> None:
    from dataset_pipeline.compare_runners import shadow_measures
    from shared_tasks.project.cutover import CutoverSteps
    from shared_tasks.project.declared import load_project
    from tests.team_project import write_project

    pipeline = CutoverSteps.of(load_project(write_project(tmp_path / "project")).pipeline("readings"))
    spec = runner_named("airflow+shadow:clean", pipeline)
    assert (spec.name, spec.shadowed, spec.in_dagster, spec.services) == (
        "airflow+shadow:clean",
        ("clean",),
        (),
        ("airflow", "dagster"),
    )
    for product_step in ("pull_data", "push_data"):
        with pytest.raises(ValueError, match=r"airflow\+shadow:STEP for a step of its own: collect, clean"):
            runner_named(f"airflow+shadow:{product_step}", pipeline)
    with pytest.raises(ValueError, match="unknown runner 'airflow\\+shadow:modify_data'") as refused:
        runner_named("airflow+shadow:modify_data")  # the built-in pipeline has no step of a team's
    assert "airflow+shadow:STEP" not in str(refused.value)

    def timed(seconds: float) -> dict[str, StepTiming]:
        return {"clean": StepTiming(process_started_at=1.0, started_at=2.0, seconds=seconds, load_seconds=0.1)}

    runs = [
        shadow_measures(timed(0.5), {"clean": {"matched": True, "dagster_seconds": 0.7, "summary": "equal"}}),
        shadow_measures(timed(0.25), {"clean": {"matched": False, "dagster_seconds": 0.9, "summary": "differs"}}),
        shadow_measures(timed(0.75), {"clean": None}),  # the shadow task returned nothing
    ]
    assert runs[2]["clean"] == {
        "airflow_seconds": 0.75,
        "dagster_seconds": None,
        "matched": None,
        "summary": "the shadow task returned nothing",
    }
    steps = ("pull_data", "collect", "clean", "push_data")
    measures = [
        RunMeasure(spec.name, f"r{n}", True, 9.0, dict.fromkeys(steps, 2.0), "c" * 40, shadows=shadows)
        for n, shadows in enumerate(runs)
    ]
    comparison = Comparison(1, 1, "2026-12-08T00:00:00+00:00", pipeline="readings", steps=list(steps))
    comparison.measures.extend(measures)
    comparison.summaries.append(summarize(spec.name, measures, 10.0, 20.0, steps, spec.isolation))
    (shadow,) = comparison.summaries[0].shadows.values()
    assert (shadow.airflow.median if shadow.airflow else None, shadow.matched, shadow.runs) == (0.5, 1, 3)
    assert shadow.dagster is not None and (shadow.dagster.low, shadow.dagster.high) == (0.7, 0.9)
    markdown = write_report(comparison, tmp_path / "report")["markdown"].read_text()
    assert "## Shadowed steps" in markdown
    assert "| airflow+shadow:clean | clean | 0.50 [0.25–0.75] | 0.80 [0.70–0.90] | 1/3 |" in markdown, markdown

    plain = Comparison(1, 1, "2026-12-08T00:00:00+00:00", pipeline="readings", steps=list(steps))
    plain.summaries.append(summarize("dagster", measures[:1], 10.0, 20.0, steps, "x"))
    plain.summaries[0].shadows.clear()
    assert "Shadowed steps" not in write_report(plain, tmp_path / "plain")["markdown"].read_text()
