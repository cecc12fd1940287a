"""A worker pool's track from one reading to the next: rates against the kept readings, JSON that reads
back the same, stale or foreign readings dropped, a scale-in not made leaving its cooldown alone, and
which pool decisions go into the decision log."""

from __future__ import annotations

import json

import pytest

from automation.scaling.pooltrack import Logged, PoolTrack, log_due, step_pool
from automation.scaling.queues import QueueLoad, QueueLoadError
from automation.scaling.workerpool import PoolMemory, WorkerPoolError, WorkerPoolSettings

SETTINGS = WorkerPoolSettings(
    min_workers=1,
    max_workers=8,
    drain_seconds=10,
    scale_in_backlog=0,
    scale_in_cooldown=10,
    max_scale_in_step=1,
    fallback_throughput=2.0,
)


def reading(at: float, backlog: int, completed: int = 0, busy: float = 0.0, queue: str = "low") -> QueueLoad:
    return QueueLoad(queue=queue, at=at, ready=backlog, reserved=0, completed=completed, busy_seconds=busy)


def test_the_first_reading_gives_no_rate_and_the_next_measures_arrivals_and_throughput() -> None:
    first = step_pool(SETTINGS, PoolTrack(), reading(100, 10), workers=1, rate_window=5)
    assert first.observation.arrival_rate is None
    # 10 waiting, 2/s per worker assumed, drained in 10 s: 1 worker; unknown arrivals count as none.
    assert first.decision.desired == 1 and "2/s per worker assumed" in first.decision.reason
    second = step_pool(
        SETTINGS, first.track, reading(105, 60, completed=10, busy=5), workers=1, rate_window=5
    )
    # +50 waiting and 10 finished in 5 s: 12/s arriving; 10 tasks in 5 busy seconds: 2/s per worker.
    assert second.observation.arrival_rate == pytest.approx(12.0)
    assert second.observation.per_worker_rate == pytest.approx(2.0)
    # (12 + 60 / 10) / 2 = 9 workers wanted, held to max 8.
    assert second.decision.desired == 8 and "held to [1, 8]" in second.decision.reason
    assert [r.at for r in second.track.readings] == [100, 105]


def test_the_track_is_json_and_reads_back_the_same() -> None:
    step = step_pool(SETTINGS, PoolTrack(), reading(100, 0), workers=2, rate_window=5)
    track = step_pool(SETTINGS, step.track, reading(105, 0, 4, 2.0), workers=2, rate_window=5).track
    text = json.dumps(track.to_dict(), allow_nan=False)
    assert PoolTrack.from_dict(json.loads(text)) == track
    assert track.memory.calm_since == 100 and track.throughput == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"readings": "many"}, QueueLoadError),
        ({"readings": [{"queue": "low"}]}, QueueLoadError),
        ({"memory": {"calm_since": "yesterday"}}, WorkerPoolError),
        ({"throughput": -1}, WorkerPoolError),
    ],
)
def test_a_track_that_does_not_read_back_is_refused(document: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        PoolTrack.from_dict(document)


def test_old_readings_are_dropped_and_a_stale_calm_starts_afresh() -> None:
    calm = PoolTrack((reading(100, 0),), PoolMemory(calm_since=50.0), 2.0)
    later = step_pool(SETTINGS, calm, reading(1000, 0), workers=3, rate_window=5)
    # The loop stopped for 15 minutes: no rate from that far back, and the calm is counted from now.
    assert later.observation.arrival_rate is None
    assert later.decision.desired == 3 and "held by cooldown" in later.decision.reason
    assert later.track.memory.calm_since == 1000 and [r.at for r in later.track.readings] == [1000]
    # Within `keep`, the calm goes on and the scale-in comes once it has lasted the cooldown.
    kept = step_pool(SETTINGS, calm, reading(115, 0), workers=3, rate_window=5)
    assert kept.decision.desired == 2 and kept.track.memory.calm_since == 115


def test_readings_of_another_queue_are_not_rates_of_this_one() -> None:
    other = PoolTrack((reading(100, 500, queue="high"),))
    step = step_pool(SETTINGS, other, reading(104, 0), workers=1, rate_window=5)
    assert step.observation.arrival_rate is None and [r.queue for r in step.track.readings] == ["low"]


def test_a_scale_in_not_made_keeps_the_calm_and_its_cooldown() -> None:
    calm = PoolTrack((reading(100, 0),), PoolMemory(calm_since=90.0))
    step = step_pool(SETTINGS, calm, reading(103, 0), workers=4, rate_window=5)
    assert step.decision.desired == 3
    assert step.track.memory.calm_since == 103  # made: the smaller pool is watched a whole cooldown
    assert step.unchanged.memory.calm_since == 90  # not made: the next tick may scale in at once
    up = step_pool(SETTINGS, PoolTrack(), reading(103, 400), workers=1, rate_window=5)
    assert up.decision.desired > 1 and up.unchanged == up.track  # a scale-up not made remembers no calm


def test_every_change_and_every_new_decision_is_logged_a_repeated_hold_once_a_minute() -> None:
    assert log_due(None, "hold", 2, 2, 100.0, 60.0)
    held = Logged("hold", 2, 2, 100.0)
    assert not log_due(held, "hold", 2, 2, 105.0, 60.0)
    assert log_due(held, "hold", 2, 2, 160.0, 60.0)
    assert log_due(held, "hold", 3, 3, 105.0, 60.0)
    assert log_due(held, "error", 2, 2, 105.0, 60.0)
    assert log_due(Logged("scale_up", 1, 2, 100.0), "scale_up", 1, 2, 101.0, 60.0)
    assert not log_due(Logged("error", 1, 1, 100.0), "error", 1, 1, 101.0, 60.0)
