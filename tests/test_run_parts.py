"""A run's seconds split into parts: every second lands in exactly one part, whatever the runner's layout."""

from __future__ import annotations

import random

import pytest

from dataset_pipeline.run_parts import CLOCK_RESOLUTION_SECONDS, PARTS, split_run, timing_of
from shared_tasks.project.records import StepTiming

STEPS = ("pull_data", "modify_data", "push_data")


def test_a_process_per_step_run_is_cut_into_queue_start_ups_work_gaps_and_the_client() -> None:
    requested = 1000.0
    timings = [
        ("pull_data", StepTiming(process_started_at=1002.0, started_at=1005.0, seconds=1.0, load_seconds=0.5)),
        ("modify_data", StepTiming(process_started_at=1007.0, started_at=1010.0, seconds=0.5, load_seconds=0.25)),
        ("push_data", StepTiming(process_started_at=1011.5, started_at=1014.0, seconds=2.0, load_seconds=0.25)),
    ]
    parts = split_run(requested, 1017.0, timings)
    assert parts.by_part() == {"queue": 2.0, "start-up": 8.5, "work": 3.5, "gaps": 2.0, "to client": 1.0}
    assert parts.steps["modify_data"].gap_before == 1.0 and parts.steps["modify_data"].startup == 3.0
    assert parts.steps["pull_data"].our_imports == 0.5


def test_steps_sharing_a_process_pay_only_our_import_and_the_orchestrators_hand_over() -> None:
    worker_started = 1001.0  # one run worker for all three steps (Dagster's in-process executor)
    timings = [
        ("pull_data", StepTiming(process_started_at=worker_started, started_at=1004.0, seconds=1.0, load_seconds=0.5)),
        ("modify_data", StepTiming(process_started_at=worker_started, started_at=1005.5, seconds=1.0, load_seconds=0)),
        ("push_data", StepTiming(process_started_at=worker_started, started_at=1007.0, seconds=1.0, load_seconds=0.1)),
    ]
    parts = split_run(1000.0, 1009.0, timings)
    assert parts.steps["pull_data"].startup == 3.0  # the worker starting is the first step's start-up
    assert parts.steps["modify_data"].startup == 0 and parts.steps["modify_data"].gap_before == 0.5
    assert parts.steps["push_data"].startup == pytest.approx(0.1)
    assert parts.by_part()["queue"] == 1.0 and parts.total() == pytest.approx(9.0)


def test_a_run_in_a_process_older_than_the_request_has_no_start_up_but_our_import() -> None:
    timings = [
        (name, StepTiming(process_started_at=10.0, started_at=100.0 + 2 * index, seconds=1.5, load_seconds=0.2))
        for index, name in enumerate(STEPS)
    ]
    parts = split_run(99.5, 106.0, timings)
    assert parts.by_part()["start-up"] == pytest.approx(0.6)
    assert parts.by_part()["queue"] == pytest.approx(0.3)
    assert parts.total() == pytest.approx(6.5)


@pytest.mark.parametrize("seed", range(200))
def test_the_parts_of_any_run_add_up_to_its_end_to_end_time_and_none_is_negative(seed: int) -> None:
    rng = random.Random(seed)
    clock = requested = rng.uniform(0, 1e9)
    process_started: float | None = requested - rng.uniform(0, 100)
    timings = []
    for name in STEPS:
        clock += rng.choice([0.0, rng.uniform(0, 10)])  # a gap, or none
        if rng.random() < 0.5:  # a fresh process (its start read to 10 ms), else the one before
            process_started = round(clock, 2) if rng.random() < 0.9 else None
        clock += rng.uniform(0, 5)  # start-up, then our import of the step
        load = rng.choice([0.0, rng.uniform(0, 1)])
        clock += load
        work = rng.uniform(0, 20)
        timings.append(
            (name, StepTiming(process_started_at=process_started, started_at=clock, seconds=work, load_seconds=load))
        )
        clock += work
    seen = clock + rng.uniform(0, 5)
    parts = split_run(requested, seen, timings)
    assert set(parts.by_part()) == set(PARTS)
    assert all(value >= 0 for value in parts.by_part().values())
    assert parts.total() == pytest.approx(seen - requested, abs=len(STEPS) * CLOCK_RESOLUTION_SECONDS)
    assert parts.by_part()["work"] == pytest.approx(sum(timing.seconds for _, timing in timings))
    assert all(step.our_imports <= step.startup + 1e-9 for step in parts.steps.values())


def test_a_record_without_a_timing_has_none_and_one_with_it_is_read_back() -> None:
    timing = StepTiming(process_started_at=None, started_at=5.0, seconds=1.0, load_seconds=0.0)
    assert timing_of({"run_id": "r", "timing": timing.to_dict()}) == timing
    assert timing_of({"run_id": "r", "timing": None}) is None
    assert timing_of(None) is None
