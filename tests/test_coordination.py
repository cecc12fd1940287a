"""The fleet-wide action semaphore and step leases, in Redis, and the cap seen from a real worker."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from automation.coordination.memory import MemoryCoordinator
from tests.conftest import REDIS_URL, require


@pytest.fixture
def redis_coordinator() -> Any:
    require(REDIS_URL, "Redis")
    from automation.coordination import redis as module

    coordinator = module.RedisCoordinator(REDIS_URL)
    saved = coordinator.client.get(module.LIMIT_KEY)
    coordinator.client.delete(module.SLOTS_KEY, module.LIMIT_KEY)
    yield coordinator
    coordinator.client.delete(module.SLOTS_KEY, module.LIMIT_KEY)
    if saved is not None:
        coordinator.client.set(module.LIMIT_KEY, saved)
    coordinator.close()


def token() -> str:
    return uuid.uuid4().hex


@pytest.mark.parametrize("kind", [pytest.param("redis", marks=pytest.mark.integration), "memory"])
def test_semaphore_counts_slots_up_to_the_limit(kind: str, request: pytest.FixtureRequest) -> None:
    coordinator = request.getfixturevalue("redis_coordinator") if kind == "redis" else MemoryCoordinator()
    a, b, c = token(), token(), token()
    assert coordinator.take_slot(a, ttl_seconds=30, limit=2)
    assert coordinator.take_slot(b, ttl_seconds=30, limit=2)
    assert not coordinator.take_slot(c, ttl_seconds=30, limit=2)
    assert coordinator.running_actions() == 2
    assert coordinator.take_slot(a, ttl_seconds=30, limit=2), "a holder renewing its slot is not refused"
    coordinator.give_back(a)
    assert coordinator.take_slot(c, ttl_seconds=30, limit=2)
    coordinator.give_back(b)
    coordinator.give_back(c)
    assert coordinator.running_actions() == 0


def test_the_limit_set_at_once_wins_and_a_lost_one_comes_back_from_the_config(redis_coordinator: Any) -> None:
    from automation.coordination.redis import LIMIT_KEY

    redis_coordinator.set_limit(1)
    assert redis_coordinator.take_slot(token(), ttl_seconds=30, limit=50)
    assert not redis_coordinator.take_slot(token(), ttl_seconds=30, limit=50), "the applied limit (1) holds"
    redis_coordinator.client.flushdb()  # as a Redis restart without persistence
    holders = [token() for _ in range(3)]
    assert all(redis_coordinator.take_slot(t, ttl_seconds=30, limit=3) for t in holders)
    assert not redis_coordinator.take_slot(token(), ttl_seconds=30, limit=3)
    assert int(redis_coordinator.client.get(LIMIT_KEY)) == 3, "the stored config's limit is put back"


def test_a_dead_holders_slot_expires(redis_coordinator: Any) -> None:
    assert redis_coordinator.take_slot(token(), ttl_seconds=0.3, limit=1)
    assert not redis_coordinator.take_slot(token(), ttl_seconds=30, limit=1)
    deadline = time.monotonic() + 5
    while not redis_coordinator.take_slot(token(), ttl_seconds=30, limit=1):
        assert time.monotonic() < deadline, "the expired slot was never freed"
        time.sleep(0.05)


@pytest.mark.usefixtures("worker")
def test_max_concurrent_actions_caps_the_fleet(engine: Any) -> None:
    from automation import ActionDefinition, AutomationConfig, WorkflowDefinition
    from automation.config.apply import apply_config
    from tests.conftest import unique
    from tests.peers import Answer, HttpPeer

    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def slow(_: Any) -> Answer:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.4)
        with lock:
            in_flight -= 1
        return Answer()

    peer = HttpPeer(slow)
    apply_config(AutomationConfig(**{**engine.config.model_dump(), "max_concurrent_actions": 1}))
    try:
        name = unique("capped")
        engine.register_workflow(WorkflowDefinition(name=name, actions=[
            ActionDefinition(name=f"call{i}", action_type="http.request", depends_on=[],
                             parameters={"url": f"{peer.url}/{i}"}) for i in range(4)
        ]))
        run = engine.run_workflow(name).wait(60)
        assert run.status == "succeeded"
        assert len(peer.received) == 4
        assert peak == 1, "the worker runs 2 tasks at once, but the fleet-wide cap is 1"
        apply_config(engine.config)
        peak = 0
        assert engine.run_workflow(name).wait(60).status == "succeeded"
        assert peak == 2, "without the cap, both of the worker's processes act at once"
    finally:
        apply_config(engine.config)
        peer.close()
