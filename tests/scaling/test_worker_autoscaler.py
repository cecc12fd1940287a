"""The policy's observation built from queue readings: which earlier reading the rates are taken against."""

from __future__ import annotations

import pytest

from automation.scaling.pooltrack import pool_observation
from automation.scaling.queues import QueueLoad


def reading(at: float, backlog: int, completed: int = 0, busy: float = 0.0) -> QueueLoad:
    return QueueLoad(queue="low", at=at, ready=backlog, reserved=0, completed=completed, busy_seconds=busy)


def test_rates_are_taken_against_the_newest_reading_a_window_old() -> None:
    history = [reading(0, 0), reading(5, 10, completed=10, busy=5), reading(9, 40, completed=12, busy=6)]
    seen = pool_observation(history, reading(10, 50, completed=20, busy=10), workers=3, rate_window=5)
    # Against the reading at 5 s: backlog +40 and 10 finished in 5 s -> 10/s; 10 tasks in 5 busy s -> 2/s.
    assert seen.arrival_rate == pytest.approx(10.0)
    assert seen.per_worker_rate == pytest.approx(2.0)
    assert (seen.backlog, seen.workers, seen.at) == (50, 3, 10)


def test_a_short_history_uses_its_oldest_reading_and_none_gives_no_rate() -> None:
    seen = pool_observation([reading(8, 0), reading(9, 5)], reading(10, 10), workers=1, rate_window=5)
    assert seen.arrival_rate == pytest.approx(5.0)
    first = pool_observation([], reading(10, 10), workers=1)
    assert first.arrival_rate is None and first.per_worker_rate is None


def test_a_window_where_nothing_finished_keeps_the_last_throughput() -> None:
    seen = pool_observation([reading(0, 0)], reading(5, 3), workers=1, last_throughput=1.7)
    assert seen.per_worker_rate == 1.7
