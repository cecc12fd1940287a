"""Sending a workflow's steps by name (a process without the action tasks loaded, such as the API server)
subscribes to no result channel (automation/broker/results.py); any other task still does."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from automation.delivery import step_task_id
from tests.conftest import REDIS_URL, require

TASK = "automation.action.control.wait"


def subscribers(client: redis.Redis, channel: bytes) -> int:
    return int(client.pubsub_numsub(channel)[0][1])


@pytest.mark.integration
def test_a_step_sent_subscribes_to_nothing_another_task_does(idle_queue: str) -> None:
    from automation.broker.results import RedisBackend
    from automation.celery import app

    backend = app.backend
    assert isinstance(backend, RedisBackend)
    client = redis.Redis.from_url(REDIS_URL)
    step = app.send_task(
        "automation.action.control.wait", task_id=step_task_id(str(uuid.uuid4()), "only"), queue=idle_queue
    )
    other = app.send_task("automation.action.control.wait", task_id=str(uuid.uuid4()), queue=idle_queue)
    other_channel = backend.get_key_for_task(other.id)
    deadline = time.monotonic() + 10
    while subscribers(client, other_channel) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    # The other task's subscription arrived, sent after the step's: the step's would have been there.
    assert subscribers(client, other_channel) == 1
    assert subscribers(client, backend.get_key_for_task(step.id)) == 0


@pytest.mark.integration
def test_a_fan_out_of_steps_subscribes_to_nothing(idle_queue: str) -> None:
    """A chord of 300 steps (its header's results gathered twice by Celery, as the chord is set up and as
    its group is sent): no SUBSCRIBE for any of them."""
    from celery import chord

    from automation.celery import app

    client = redis.Redis.from_url(REDIS_URL)
    run = str(uuid.uuid4())
    header = [app.signature(TASK, task_id=step_task_id(run, f"b{i}"), queue=idle_queue) for i in range(300)]
    join = app.signature(TASK, task_id=step_task_id(run, "join"), queue=idle_queue)
    result = chord(header, join, app=app).apply_async()
    backend = app.backend
    # A task that is not a step, sent after the chord: once its subscription is seen, the chord's would be.
    other = app.send_task(TASK, task_id=str(uuid.uuid4()), queue=idle_queue)
    deadline = time.monotonic() + 10
    while subscribers(client, backend.get_key_for_task(other.id)) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert subscribers(client, backend.get_key_for_task(other.id)) == 1
    channels = [backend.get_key_for_task(step_task_id(run, f"b{i}")) for i in range(300)]
    assert sum(subscribers(client, channel) for channel in channels) == 0
    del result


@pytest.mark.integration
def test_waiting_on_a_step_s_result_still_gets_it(idle_queue: str) -> None:
    """Stored before the wait, or while waiting: `get()` subscribes first, then reads what is stored."""
    from automation.celery import app

    backend = app.backend
    done = step_task_id(str(uuid.uuid4()), "done")
    backend.mark_as_done(done, {"done": {"ok": True}})
    assert app.AsyncResult(done).get(timeout=10) == {"done": {"ok": True}}

    later = step_task_id(str(uuid.uuid4()), "later")
    timer = threading.Timer(0.5, lambda: backend.mark_as_done(later, {"later": 1}))
    timer.start()
    try:
        assert app.AsyncResult(later).get(timeout=10) == {"later": 1}
    finally:
        timer.join()


@pytest.mark.integration
def test_joining_a_group_of_steps_that_holds_a_group_gets_every_result() -> None:
    """A header holding a group of steps that all finished before the join (a chord's join from the
    results), joined twice: every result each time, and nothing stays subscribed afterwards."""
    require(REDIS_URL, "Redis")
    from celery.result import GroupResult

    from automation.celery import app

    backend = app.backend
    run = str(uuid.uuid4())
    outer, inner = step_task_id(run, "outer"), [step_task_id(run, f"inner{i}") for i in range(3)]
    for task_id in (outer, *inner):
        backend.mark_as_done(task_id, {task_id: 1})
    nested = GroupResult(str(uuid.uuid4()), [app.AsyncResult(task_id) for task_id in inner], app=app)
    header = GroupResult(str(uuid.uuid4()), [app.AsyncResult(outer), nested], app=app)

    channels = {backend.get_key_for_task(task_id) for task_id in (outer, *inner)}
    for _ in range(2):  # the second time, every outcome is already held
        joined = header.join_native(timeout=10)
        assert joined == [{outer: 1}, [{task_id: 1} for task_id in inner]]
        assert not channels & backend.result_consumer.subscribed_to
