"""The fleet-wide action semaphore and step leases, in Redis, and the cap seen from a real worker."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from automation.coordination.base import Acquired, Lease
from automation.coordination.memory import MemoryCoordinator
from tests.conftest import REDIS_URL, require


@pytest.fixture
def redis_coordinator() -> Any:
    require(REDIS_URL, "Redis")
    from automation.coordination import redis as module

    coordinator = module.RedisCoordinator(REDIS_URL)
    saved = coordinator.client.get(module.LIMIT_KEY)
    coordinator.client.delete(module.SLOTS_KEY)
    yield coordinator
    coordinator.client.delete(module.SLOTS_KEY)
    if saved is not None:
        coordinator.client.set(module.LIMIT_KEY, saved)


def lease(key: str = "") -> Lease:
    return Lease(key=f"test:lease:{key or uuid.uuid4().hex}", token=uuid.uuid4().hex)


@pytest.mark.parametrize("kind", [pytest.param("redis", marks=pytest.mark.integration), "memory"])
def test_semaphore_and_leases(kind: str, request: pytest.FixtureRequest) -> None:
    coordinator = request.getfixturevalue("redis_coordinator") if kind == "redis" else MemoryCoordinator()
    coordinator.set_action_limit(2)
    a, b, c = lease(), lease(), lease()
    assert coordinator.acquire(a, ttl_seconds=30) is Acquired.OK
    assert coordinator.acquire(b, ttl_seconds=30) is Acquired.OK
    assert coordinator.acquire(c, ttl_seconds=30) is Acquired.FULL
    assert coordinator.running_actions() == 2
    duplicate = Lease(key=a.key, token="someone-else")
    assert coordinator.acquire(duplicate, ttl_seconds=30) is Acquired.HELD
    coordinator.release(a)
    assert coordinator.acquire(c, ttl_seconds=30) is Acquired.OK
    coordinator.release(b)
    coordinator.release(c)
    assert coordinator.running_actions() == 0


def test_a_dead_holders_slot_expires(redis_coordinator: Any) -> None:
    redis_coordinator.set_action_limit(1)
    assert redis_coordinator.acquire(lease(), ttl_seconds=0.3) is Acquired.OK
    assert redis_coordinator.acquire(lease(), ttl_seconds=30) is Acquired.FULL
    time.sleep(0.4)
    assert redis_coordinator.acquire(lease(), ttl_seconds=30) is Acquired.OK


@pytest.mark.usefixtures("worker")
def test_max_concurrent_actions_caps_the_fleet(engine: Any) -> None:
    from automation import ActionDefinition, AutomationConfig, WorkflowDefinition
    from automation.engine_settings import apply_config
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
