"""Celery targets in the scaling loop, on the real database and broker (no worker needed): a backlog read
from the broker scales up once per slot through a run on `critical` with a timeout past the warm
shutdown, no second run while one is going, the pool's track stored on the target, a quiet pool's holds
logged once a minute, an unreadable queue an error that changes nothing, and each Beat tick deciding its
own kind of targets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.test_pipeline import runs_of
from tests.conftest import REDIS_URL, stored_run, unique

pytestmark = pytest.mark.usefixtures("engine", "predictive_scaling")

TICK = 1.0


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue of the broker nobody consumes (its list removed after the test)."""
    import redis

    name = unique("pool").replace("-", "_")
    client = redis.Redis.from_url(REDIS_URL)
    yield name
    client.delete(name)
    client.close()


def enqueue(queue: str, count: int) -> None:
    """`count` messages waiting on `queue`, as kombu's Redis transport keeps them (one list entry each)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.lpush(queue, *[f'{{"body": "{k}"}}' for k in range(count)])
    finally:
        client.close()


def store_pool(name: str, queue: str, **changes: Any) -> Any:
    from automation.scaling.services.targets import save_target

    return save_target(
        {
            "kind": "celery",
            "name": name,
            "queue": queue,
            "provider": "stub",
            "min_replicas": 1,
            "max_replicas": 6,
            "pool": {"drain_seconds": 10, "fallback_throughput": 1, "rate_window": 1, "grace_period": 30},
            **changes,
        }
    )


def decisions(name: str) -> list[Any]:
    from automation.models import ScalingDecision

    return list(ScalingDecision.objects.filter(target__name=name).order_by("at", "id"))


def state(name: str) -> Any:
    from automation.models import ScalingState

    return ScalingState.objects.get(target__name=name)


def test_a_backlog_scales_up_once_per_slot_through_a_run_on_critical(engine: Any, queue: str) -> None:
    from automation import ActionDefinition
    from automation.models import ScalingState, WorkflowVersion
    from automation.scaling.services.ticks import evaluate_targets

    name = unique("pool")
    store_pool(name, queue)
    enqueue(queue, 40)
    now = (time.time() // TICK) * TICK + 0.2
    [first] = evaluate_targets([name], now, TICK)
    # 40 waiting, 1/s per worker assumed, drained within 10 s: 4 workers (the stub cannot say: min 1).
    assert (first["action"], first["current"], first["desired"]) == ("scale_up", 1, 4), first
    assert "backlog 40" in first["reasons"][1] and "want 4" in first["reasons"][1], first["reasons"]
    [again] = evaluate_targets([name], now + 0.5, TICK)  # a redelivered tick, in the same slot
    assert again["skipped"] == "already decided in this slot"
    [run] = runs_of(f"scaling.{name}")
    [decision] = decisions(name)
    assert decision.run_id == run.id and run.idempotency_key == f"scaling:{name}:{decision.slot}"
    assert run.inputs == {"replicas": 4} and decision.observed_load == 40
    # The scale run goes to `critical`, never the queue it scales, and outwaits the warm shutdown.
    assert run.queue == "critical"
    document = WorkflowVersion.objects.get(id=run.version_id).definition
    assert document["actions"][0]["timeout_seconds"] == 30 + 60
    assert document["actions"][0]["parameters"]["service_name"] == f"celery-{queue}"

    # The next slot: the flood goes on, but the last scale run is still going (stored, never sent).
    going = stored_run(
        engine,
        unique("slow-scale"),
        ActionDefinition(name="w", action_type="control.wait", parameters={"seconds": 0}),
    )
    ScalingState.objects.filter(target__name=name).update(last_run_id=going.id)
    enqueue(queue, 40)
    [held] = evaluate_targets([name], now + 2, TICK)
    assert held["action"] == "hold" and held["desired"] == held["current"] == 4, held
    assert "want 6" in held["reasons"][1]  # 80 waiting: more wanted, none started
    assert held["reasons"][-1].endswith("still going; no second run meanwhile")
    assert len(runs_of(f"scaling.{name}")) == 1
    track = state(name).pool
    assert [r["ready"] for r in track["readings"]] == [40, 80]  # carried to whichever worker ticks next


def test_a_quiet_pool_logs_a_repeated_hold_once_a_monitoring_interval(queue: str) -> None:
    from automation.config import current_config
    from automation.scaling.services.ticks import evaluate_targets

    name = unique("quiet")
    store_pool(name, queue)
    every = float(current_config().monitoring_interval)
    now = (time.time() // TICK) * TICK + 0.2
    reports = [evaluate_targets([name], now + k, TICK)[0] for k in range(4)]
    assert [r["action"] for r in reports] == ["hold"] * 4
    assert [r["logged"] for r in reports] == [True, False, False, False]
    assert "provider could not answer" in reports[0]["reasons"][0]  # the stub has no such service
    [later] = evaluate_targets([name], now + every, TICK)
    assert later["logged"] and len(decisions(name)) == 2
    assert len(state(name).pool["readings"]) >= 2  # every tick read the queue, logged or not


def test_an_unreadable_queue_is_an_error_decision_that_changes_nothing(queue: str) -> None:
    import redis

    from automation.models import ScalingTarget
    from automation.scaling.services.pools import evaluate_pool

    name = unique("unread")
    store_pool(name, queue)
    target = ScalingTarget.objects.get(name=name)
    now = time.time()
    evaluate_pool(target, now, TICK)
    before = state(name).pool
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)  # nothing listens there
    report = evaluate_pool(target, now + TICK, TICK, client=nowhere)
    assert report["action"] == "error" and report["desired"] == report["current"], report
    assert report["reasons"][-1].startswith(f"queue '{queue}' not read: "), report["reasons"]
    assert state(name).pool == before and decisions(name)[-1].action == "error"
    assert runs_of(f"scaling.{name}") == []


def test_each_beat_tick_decides_its_own_kind_of_targets(queue: str) -> None:
    import beat_schedule
    from automation.models import ScalingTarget
    from automation.scaling.pooltrack import POOL_INTERVAL
    from automation.scaling.services.targets import save_target
    from automation.schedules import STAMPED_TASKS
    from tasks.scaling import evaluate, evaluate_pools

    ScalingTarget.objects.update(enabled=False)  # only this test's targets
    store_pool(unique("pool"), queue)
    save_target(
        {
            "name": unique("web"),
            "service": "web-api",
            "provider": "stub",
            "load": {"metric": unique("rps").replace("-", "_")},
            "capacity_per_replica": 100,
            "policy": "reactive",
        }
    )
    now = time.time()
    assert evaluate_pools(now) == 1 and evaluate(now) == 1
    entry = beat_schedule.build_schedule()["automation-scaling-pools"]
    assert entry["task"] == "automation.scaling.evaluate_pools" and entry["schedule"] == POOL_INTERVAL
    assert entry["options"] == {"queue": "critical", "expire_seconds": POOL_INTERVAL}
    assert "automation.scaling.evaluate_pools" in STAMPED_TASKS  # sent with Beat's time: one slot each
