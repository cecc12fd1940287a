"""Sending a workflow's steps by name (a process without the action tasks loaded, such as the API server)
subscribes to no result channel (automation/broker/results.py); any other task still does."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from automation.delivery import step_task_id
from tests.conftest import REDIS_URL


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
