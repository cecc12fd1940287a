"""Sending messages in fewer round trips: a message and its `task-sent` event go to Redis together, and a
whole canvas (a run's first steps, a 1,000-way fan-out) in a few pipelines instead of two commands each.

Kombu 5.7's publish batches (`Producer.batch()`) buffer the final Redis commands of each publish and send
them as one non-transactional pipeline when the outermost batch ends. Celery does not use them; here:
- `AMQP` sends every task message inside a batch of its producer, so the message (LPUSH) and its
  `task-sent` event (PUBLISH) share one round trip, whoever sends it (a run's producer, a worker sending
  a step's successors, a chord's last branch sending the join);
- `batched(app)` holds one producer for this thread and keeps its batch open until the block ends, so
  every message of a canvas goes out in pipelines of up to `BATCH_COMMANDS` commands.

A pipeline that fails (Redis unreachable) leaves its delivery uncertain: some of its messages may have
been stored. Kombu then raises `BatchPublishError` without retrying; here, when Redis could not be
reached, the message, or the canvas, is sent again the ordinary way, under Celery's publish retry policy
(any other failure kombu wrapped is raised as itself). A step delivered twice that way is
harmless: each step is guarded by (run, step) in the database. Transports without batches (the
embedded store's) send each message at once, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP as CeleryAMQP
from kombu.exceptions import BatchPublishError  # type: ignore[attr-defined]  # kombu 5.7's; stubs predate it
from redis.exceptions import RedisError

logger = logging.getLogger("automation.broker")

#: Redis commands per pipeline of a batched canvas (two per message: the message and its event).
BATCH_COMMANDS = 1000

_held = threading.local()

__all__ = ["AMQP", "App", "BATCH_COMMANDS", "BatchPublishError", "batched", "raise_unless_unreachable"]


def _batching(producer: Any) -> bool:
    return getattr(getattr(producer, "_batch_local", None), "current", None) is not None


def _can_batch(producer: Any) -> bool:
    try:
        return bool(producer.supports_batch_publish)
    except Exception:  # noqa: BLE001 - a transport that cannot say sends each message at once
        return False


def raise_unless_unreachable(exc: BaseException) -> None:
    """A pipeline that failed because Redis could not be reached is sent again; anything else kombu wrapped
    (a task's soft time limit arriving during the write, say) is raised as itself."""
    cause = exc.__cause__
    if not isinstance(cause, RedisError | OSError):
        raise cause if cause is not None else exc


class AMQP(CeleryAMQP):
    """Celery's AMQP helper whose task sender puts a message and its `task-sent` event in one pipeline."""

    def _create_task_sender(self) -> Callable[..., Any]:
        send = super()._create_task_sender()  # type: ignore[misc]

        def send_task_message(producer: Any, name: str, message: Any, **options: Any) -> Any:
            if _batching(producer) or not _can_batch(producer):
                # Inside a canvas's batch (its end sends this), or a transport without batches.
                return send(producer, name, message, **options)
            try:
                with producer.batch():
                    return send(producer, name, message, **options)
            except BatchPublishError as exc:
                raise_unless_unreachable(exc)
                logger.warning("message %s: pipeline failed (%r), sending it again", name, exc.__cause__)
                return send(producer, name, message, **options)

        return send_task_message


class App(Celery):
    """The engine's Celery app: inside `batched`, every message of this thread goes through the one
    producer it holds (Celery acquires one from the pool per message otherwise, and a chord does not
    hand its producer on to its header)."""

    amqp_cls = "automation.broker.publishing:AMQP"

    def producer_or_acquire(self, producer: Any = None) -> Any:
        held = getattr(_held, "producer", None)
        if producer is None and held is not None:
            return nullcontext(held)
        return super().producer_or_acquire(producer)


@contextmanager
def batched(app: Celery) -> Iterator[None]:
    """Send the messages published in this block (this thread) in pipelines, when the block ends.

    Raises `BatchPublishError` when a pipeline failed: what it carried may or may not have been stored,
    and the caller sends it again (a step's guard makes a second delivery harmless)."""
    if getattr(_held, "producer", None) is not None:
        yield  # an outer block sends them
        return
    with app.producer_or_acquire() as producer:
        if not _can_batch(producer):
            yield
            return
        _held.producer = producer
        try:
            with producer.batch(max_size=BATCH_COMMANDS):
                yield
        finally:
            _held.producer = None
