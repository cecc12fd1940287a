"""The engine's Redis transport reuses one client object per connection pool (automation/broker/redis.py):
the same object while the pool lives, a new one for a new pool (after a reconnection), and the commands
sent through it reach the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from tests.conftest import REDIS_URL, require


@pytest.fixture
def channel() -> Iterator[Any]:
    require(REDIS_URL, "Redis")
    connection = Connection(REDIS_URL, transport="automation.broker.redis:Transport")
    channel = connection.channel()
    yield channel
    channel.close()
    connection.release()


def test_one_client_per_pool_and_a_new_one_with_a_new_pool(channel: Any) -> None:
    first = channel._create_client()
    assert channel._create_client() is first
    with channel.conn_or_acquire() as client:
        assert client is first
    asynchronous = channel._create_client(asynchronous=True)
    assert asynchronous is not first and channel._create_client(asynchronous=True) is asynchronous
    assert asynchronous.connection_pool is channel.async_pool

    channel._pool = None  # what a reconnection does: the next command builds a new pool
    renewed = channel._create_client()
    assert renewed is not first
    assert renewed.connection_pool is channel.pool is not first.connection_pool


def test_the_shared_client_sends_to_the_real_redis(channel: Any) -> None:
    queue = f"clients-test-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue)
    channel._put(queue, {"body": "hello", "properties": {"delivery_tag": "1"}, "headers": {}})
    with channel.conn_or_acquire() as client:
        assert client.llen(queue) == 1
        client.delete(queue)
