"""The worker-pool policy: drain-time sizing, immediate scale-up, scale-in only after a calm cooldown."""

from __future__ import annotations

import math

import pytest

from automation.scaling.workerpool import (
    PoolMemory,
    PoolObservation,
    WorkerPoolError,
    WorkerPoolSettings,
    decide_pool_size,
    drain_time,
    workers_needed,
)

SETTINGS = WorkerPoolSettings(
    min_workers=1,
    max_workers=10,
    drain_seconds=30,
    scale_in_backlog=5,
    scale_in_cooldown=10,
    max_scale_in_step=2,
)


def seen(at: float, backlog: int, workers: int, arrivals: float | None = 0.0, each: float | None = 2.0):
    return PoolObservation(
        at=at, backlog=backlog, workers=workers, arrival_rate=arrivals, per_worker_rate=each
    )


def test_sizing_keeps_up_with_arrivals_and_drains_the_backlog_in_time() -> None:
    # 120/s arriving and 3,400 waiting, 25/s per worker: (120 + 3400/30) / 25 = 9.33 -> 10 workers.
    assert workers_needed(3400, 120, 25, 30) == 10
    assert drain_time(3400, 10, 120, 25) == pytest.approx(3400 / 130)
    assert drain_time(3400, 4, 120, 25) == math.inf
    assert workers_needed(0, 0, 25, 30) == 0
    assert workers_needed(0, 50, 25, 30) == 2  # exactly two workers' worth is two, not three


def test_scale_up_is_immediate_and_says_why() -> None:
    decision = decide_pool_size(SETTINGS, seen(0, 3400, 4, arrivals=120, each=25))
    assert decision.desired == 10
    assert decision.reason == (
        "backlog 3,400, arrivals 120/s, 25/s per worker: 10 workers drain it in 26.2 s (target 30 s): want 10"
    )


def test_max_workers_caps_and_the_reason_shows_the_need() -> None:
    decision = decide_pool_size(SETTINGS, seen(0, 10_000, 2, arrivals=30, each=2))
    assert decision.desired == 10 and decision.needed == 182
    assert "10 workers never drain it" in decision.reason
    assert "182 needed, held to [1, 10]" in decision.reason


def test_unknown_rates_use_the_assumed_throughput_and_no_arrivals() -> None:
    decision = decide_pool_size(SETTINGS, seen(0, 90, 1, arrivals=None, each=None))
    assert decision.desired == 3  # 90 / 30 s at the assumed 1/s per worker
    assert "arrivals unknown yet" in decision.reason and "1/s per worker assumed" in decision.reason


def test_scale_in_waits_for_a_calm_backlog_through_a_whole_cooldown() -> None:
    memory = PoolMemory()
    # Over the bound: nothing needs 8 workers any more, but the backlog is not calm yet.
    decision = decide_pool_size(SETTINGS, seen(0, 20, 8, arrivals=0.1), memory)
    assert decision.desired == 8 and "scale-in held: backlog 20 over 5" in decision.reason
    memory = decision.memory
    assert memory.calm_since is None
    decision = decide_pool_size(SETTINGS, seen(1, 3, 8, arrivals=0.1), memory)
    assert decision.desired == 8 and "cooldown" in decision.reason and "0 s of 10 s" in decision.reason
    memory = decision.memory
    assert memory.calm_since == 1
    decision = decide_pool_size(SETTINGS, seen(6, 4, 8, arrivals=0.1), memory)
    assert decision.desired == 8 and "5 s of 10 s" in decision.reason
    memory = decision.memory
    # A burst over the bound starts the cooldown again.
    decision = decide_pool_size(SETTINGS, seen(7, 6, 8, arrivals=0.1), memory)
    assert decision.desired == 8 and decision.memory.calm_since is None
    memory = decision.memory
    for at in (8, 12, 17):
        decision = decide_pool_size(SETTINGS, seen(at, 2, 8, arrivals=0.1), memory)
        assert decision.desired == 8
        memory = decision.memory
    decision = decide_pool_size(SETTINGS, seen(18, 2, 8, arrivals=0.1), memory)
    assert decision.desired == 6, decision.reason
    assert "scale in to 6 (at most 2 down per step)" in decision.reason
    # The smaller pool is watched for a cooldown before the next step down.
    assert decision.memory.calm_since == 18
    held = decide_pool_size(SETTINGS, seen(19, 2, 6, arrivals=0.1), decision.memory)
    assert held.desired == 6
    later = decide_pool_size(SETTINGS, seen(28, 2, 6, arrivals=0.1), held.memory)
    assert later.desired == 4


def test_scale_in_stops_at_what_arrivals_need_and_at_min_workers() -> None:
    calm = PoolMemory(calm_since=0)
    assert decide_pool_size(SETTINGS, seen(100, 0, 8, arrivals=13.5, each=2), calm).desired == 7
    assert decide_pool_size(SETTINGS, seen(100, 0, 2, arrivals=0, each=2), calm).desired == 1
    no_floor = WorkerPoolSettings(min_workers=0, max_workers=4, scale_in_cooldown=0, max_scale_in_step=4)
    assert decide_pool_size(no_floor, seen(0, 0, 4, arrivals=0), PoolMemory()).desired == 0


def test_a_pool_over_max_or_under_min_comes_back_at_once() -> None:
    assert decide_pool_size(SETTINGS, seen(0, 500, 14, arrivals=5)).desired == 10
    assert decide_pool_size(SETTINGS, seen(0, 0, 0, arrivals=0)).desired == 1


def test_memory_survives_storage() -> None:
    assert PoolMemory.from_dict(PoolMemory(12.5).to_dict()) == PoolMemory(12.5)
    assert PoolMemory.from_dict({}) == PoolMemory()
    with pytest.raises(WorkerPoolError) as caught:
        PoolMemory.from_dict({"calm_since": "soon"})
    assert caught.value.errors == [("calm_since", "must be a number or null")]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"min_workers": 5, "max_workers": 3}, "max_workers"),
        ({"drain_seconds": 0}, "drain_seconds"),
        ({"scale_in_cooldown": -1}, "scale_in_cooldown"),
        ({"max_scale_in_step": 0}, "max_scale_in_step"),
        ({"min_workers": True}, "min_workers"),
        ({"fallback_throughput": math.nan}, "fallback_throughput"),
    ],
)
def test_bad_settings_name_their_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(WorkerPoolError) as caught:
        WorkerPoolSettings(**fields)  # type: ignore[arg-type]
    assert caught.value.errors[0][0] == field


def test_bad_observations_name_their_field() -> None:
    with pytest.raises(WorkerPoolError) as caught:
        PoolObservation(at=0, backlog=-1, workers=1, arrival_rate=math.inf)
    assert [field for field, _ in caught.value.errors] == ["backlog", "arrival_rate"]
