"""Queue load read from the real Redis broker: kombu's own transport fills the lists and the unacked hash."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from automation.scaling.queues import (
    BrokerKeys,
    QueueLoad,
    QueueLoadError,
    queue_rates,
    read_queue_load,
    read_queue_loads,
)
from tests.conftest import REDIS_URL, require, wait_for


@pytest.fixture
def broker() -> Iterator[Any]:
    require(REDIS_URL, "Redis")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def queue_name(broker: Any) -> Iterator[str]:
    name = f"scaling-test-{uuid.uuid4().hex[:8]}"
    yield name
    keys = [*BrokerKeys().queue_lists(name), f"automation:queue-stats:{name}"]
    broker.delete(*keys)


def publish(queue: str, count: int, *, priority: int = 0) -> None:
    from kombu import Connection, Exchange, Queue

    with Connection(REDIS_URL) as connection:
        producer = connection.Producer()
        target = Queue(queue, Exchange(queue, "direct"), routing_key=queue)
        for index in range(count):
            producer.publish(
                {"n": index}, exchange=target.exchange, routing_key=queue, declare=[target], priority=priority
            )


@pytest.mark.integration
def test_ready_counts_every_priority_sub_list_kombu_writes(broker: Any, queue_name: str) -> None:
    publish(queue_name, 3)
    publish(queue_name, 2, priority=6)
    publish(queue_name, 1, priority=9)
    # The lists are where kombu put them: the plain name for priority 0, NAME<sep>STEP for the others.
    lengths = [broker.llen(key) for key in BrokerKeys().queue_lists(queue_name)]
    assert lengths == [3, 0, 2, 1]
    load = read_queue_load(broker, queue_name)
    assert (load.ready, load.reserved, load.backlog) == (6, 0, 6)
    assert load.completed == 0 and load.busy_seconds == 0.0


@pytest.mark.integration
def test_reserved_counts_messages_taken_and_not_acknowledged_per_queue(broker: Any, queue_name: str) -> None:
    from kombu import Connection, Exchange, Queue

    other = f"{queue_name}-other"
    publish(queue_name, 5)
    publish(other, 2)
    try:
        with Connection(REDIS_URL) as connection:
            channel = connection.channel()
            taken = []
            for _ in range(2):
                message = Queue(queue_name, Exchange(queue_name, "direct"), routing_key=queue_name)(
                    channel
                ).get(no_ack=False)
                assert message is not None
                taken.append(message)
            held = Queue(other, Exchange(other, "direct"), routing_key=other)(channel).get(no_ack=False)
            assert held is not None
            mine, theirs = read_queue_loads(broker, [queue_name, other])
            assert (mine.ready, mine.reserved, mine.backlog) == (3, 2, 5)
            assert (theirs.ready, theirs.reserved) == (1, 1)
            taken[0].ack()
            assert read_queue_load(broker, queue_name).reserved == 1
            taken[1].ack()
            held.ack()
    finally:
        broker.delete(*BrokerKeys().queue_lists(other))
    assert read_queue_load(broker, queue_name).reserved == 0


@pytest.mark.integration
def test_messages_held_until_their_eta_are_scheduled_not_backlog(broker: Any, queue_name: str) -> None:
    from kombu import Connection, Exchange, Queue

    from automation.celery import app

    # Celery's own messages: one due now, one with a countdown (as a retry or a parked wait sends it).
    app.send_task("automation.scaling-test.noop", queue=queue_name)
    app.send_task("automation.scaling-test.noop", queue=queue_name, countdown=600)
    with Connection(REDIS_URL) as connection:
        channel = connection.channel()
        queue = Queue(queue_name, Exchange(queue_name, "direct"), routing_key=queue_name)
        taken = [queue(channel).get(no_ack=False) for _ in range(2)]
        assert all(message is not None for message in taken)
        load = read_queue_load(broker, queue_name)
        assert (load.ready, load.reserved, load.scheduled, load.backlog) == (0, 1, 1, 1)
        for message in taken:
            message.ack()


@pytest.mark.integration
def test_worker_counters_are_read_back(broker: Any, queue_name: str) -> None:
    from automation.fleet import throughput

    task = SimpleNamespace(request=SimpleNamespace(delivery_info={"routing_key": queue_name}))

    def count(task_id: str, on: Any = task) -> None:
        throughput._task_started(task_id=task_id)
        throughput._task_finished(task_id=task_id, task=on)

    throughput._flushed_at = 0.0
    count("t0")  # the first count after a quiet second is written at once...
    wait_for(lambda: read_queue_load(broker, queue_name).completed == 1, timeout=5)
    count("t1")  # ...the next ones within the second wait for the process's next write
    count("t2")
    count("eager", SimpleNamespace(request=SimpleNamespace(delivery_info=None)))  # no queue: not counted
    time.sleep(0.2)
    assert read_queue_load(broker, queue_name).completed == 1
    throughput.flush()  # as at the process's next write, or its shutdown
    # Counts are written without waiting for replies: they land a moment later.
    wait_for(lambda: read_queue_load(broker, queue_name).completed == 3, timeout=5)
    assert 0 < read_queue_load(broker, queue_name).busy_seconds < 1
    # Right after a failure, nothing is written (no connect attempt on every task of a broker that is
    # down), and what was counted meanwhile is kept for the write after the retry wait.
    throughput._drop_connection()
    count("t9")
    throughput.flush()
    time.sleep(0.2)
    assert read_queue_load(broker, queue_name).completed == 3
    throughput._retry_at = 0.0
    throughput.flush()
    wait_for(lambda: read_queue_load(broker, queue_name).completed == 4, timeout=5)


@pytest.mark.integration
def test_readings_use_the_brokers_clock(broker: Any, queue_name: str) -> None:
    seconds, micros = broker.time()
    load = read_queue_load(broker, queue_name)
    assert seconds <= load.at < seconds + 5


@pytest.mark.integration
def test_a_queue_name_must_be_given(broker: Any) -> None:
    with pytest.raises(QueueLoadError) as caught:
        read_queue_loads(broker, ["ok", ""])
    assert caught.value.errors[0][0] == "queue"


def test_transport_options_rename_the_keys() -> None:
    keys = BrokerKeys.from_transport_options({"sep": ":", "priority_steps": [0, 5], "global_keyprefix": "p-"})
    assert keys.queue_lists("low") == ["p-low", "p-low:5"]


def reading(at: float, *, ready: int, reserved: int = 0, completed: int = 0, busy: float = 0.0) -> QueueLoad:
    return QueueLoad(queue="q", at=at, ready=ready, reserved=reserved, completed=completed, busy_seconds=busy)


def test_arrivals_are_backlog_change_plus_completions() -> None:
    # 10 s: backlog 40 -> 70 while 50 finished: 80 arrived, 8/s; 50 tasks took 25 busy seconds: 2/s each.
    rates = queue_rates(
        reading(100, ready=30, reserved=10, completed=200, busy=100),
        reading(110, ready=66, reserved=4, completed=250, busy=125),
    )
    assert rates.arrival_rate == pytest.approx(8.0)
    assert rates.completion_rate == pytest.approx(5.0)
    assert rates.per_worker_rate == pytest.approx(2.0)


def test_messages_going_back_from_a_dead_worker_are_no_arrivals() -> None:
    rates = queue_rates(reading(0, ready=10, reserved=4), reading(5, ready=14, reserved=0))
    assert rates.arrival_rate == 0.0
    assert rates.per_worker_rate is None  # nothing finished: throughput unknown, not zero


def test_counters_going_backwards_give_no_rate() -> None:
    rates = queue_rates(reading(0, ready=1, completed=500, busy=9), reading(5, ready=3, completed=2, busy=1))
    assert rates.arrival_rate is None and rates.per_worker_rate is None


def test_readings_too_close_give_no_rate_and_other_queues_are_refused() -> None:
    assert queue_rates(reading(0, ready=1), reading(0.1, ready=50)).arrival_rate is None
    other = QueueLoad(queue="r", at=10, ready=0, reserved=0, completed=0, busy_seconds=0)
    with pytest.raises(QueueLoadError):
        queue_rates(reading(0, ready=1), other)


def test_a_stored_reading_comes_back_the_same_and_a_broken_one_names_its_field() -> None:
    load = reading(12.5, ready=3, reserved=1, completed=7, busy=2.5)
    assert QueueLoad.from_dict(load.to_dict()) == load
    document = load.to_dict()
    del document["completed"]
    with pytest.raises(QueueLoadError) as caught:
        QueueLoad.from_dict(document)
    assert caught.value.errors[0][0] == "completed"


@pytest.mark.integration
def test_a_broker_that_answers_despite_reply_off_gets_no_counts(broker: Any, queue_name: str) -> None:
    """A broker user denied CLIENT (an ACL) answers every write: the process finds out at a later write,
    disconnects and counts nothing more there, instead of piling up unread replies on the broker."""
    from urllib.parse import urlsplit, urlunsplit

    from django.test import override_settings

    from automation.fleet import throughput

    user = f"no-client-{uuid.uuid4().hex[:8]}"
    broker.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-client")
    parts = urlsplit(REDIS_URL)
    url = urlunsplit(parts._replace(netloc=f"{user}:pw@{parts.hostname}:{parts.port or 6379}"))
    task = SimpleNamespace(request=SimpleNamespace(delivery_info={"routing_key": queue_name}))

    def count(task_id: str) -> None:
        throughput._task_started(task_id=task_id)
        throughput._task_finished(task_id=task_id, task=task)
        throughput.flush()

    def clients_of_user() -> list[dict[str, Any]]:
        return [c for c in broker.client_list() if c.get("user") == user]

    throughput._drop_connection()
    throughput._retry_at = 0.0
    try:
        with override_settings(CELERY_BROKER_URL=url):
            count("a")  # connects and asks for no replies (refused), writes or already sees the refusal
            time.sleep(0.2)
            count("b")  # sees the replies by now: disconnected, disabled in this process
            wait_for(lambda: not clients_of_user(), timeout=5)
            assert throughput._connection is not None and throughput._connection[1] is None
            count("c")  # no new connection, nothing written
            time.sleep(0.2)
            assert not clients_of_user()
            assert read_queue_load(broker, queue_name).completed <= 1
    finally:
        broker.execute_command("ACL", "DELUSER", user)
        throughput._connection = None
        throughput._pending.clear()
