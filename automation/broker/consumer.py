"""Celery's consumer, with every message it cannot run set aside (automation/broker/deadletter.py)
instead of dropped, and never allowed to stop the worker.

Celery's own handlers acknowledge such a message and log it whole (secrets included); a message whose
headers are incomplete can still raise out of the consumer and end the worker.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from celery.exceptions import NotRegistered
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.exceptions import MessageStateError

from automation.broker.deadletter import as_text, set_aside

logger = logging.getLogger("automation.broker")


def _describe(message: Any) -> str:
    body = message.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    return as_text(
        {"headers": message.headers, "properties": message.properties, "body": body,
         "content_type": message.content_type}
    )


def _queue_of(message: Any) -> str:
    info = message.delivery_info or {}
    return str(info.get("routing_key") or info.get("exchange") or "")


class Consumer(CeleryConsumer):
    def _set_aside(self, message: Any, reason: str) -> None:
        try:
            set_aside(queue=_queue_of(message), payload=_describe(message), reason=reason)
        except Exception:  # noqa: BLE001 - never let bookkeeping stop the worker
            logger.exception("could not set a message aside")

    @staticmethod
    def _ack(message: Any) -> None:
        try:
            if not message.acknowledged:
                message.ack()
        except MessageStateError:
            pass

    # Celery's own handlers log the whole message (its body and headers, secrets included): these log
    # only why, and the dead letter keeps the message where `automation dead-letters show` masks it.

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"body does not decode: {type(exc).__name__}")
        self._ack(message)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._set_aside(message, "not a task message")
        self._reject(message)
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        name, task_id = headers.get("task"), headers.get("id")
        self._set_aside(message, f"unknown task {name!r} (id {task_id})")
        self._reject(message)
        if isinstance(task_id, str) and isinstance(name, str):
            try:  # so a caller waiting on the result learns it at once
                self.app.backend.mark_as_failure(task_id, NotRegistered(name))
            except Exception as error:  # noqa: BLE001 - the message is set aside already
                logger.warning("could not record task %s as unknown: %r", task_id, error)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"invalid task message: {type(exc).__name__}: {str(exc)[:200]}")
        self._reject(message)
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def _reject(self, message: Any) -> None:
        try:
            if not message.acknowledged:
                message.reject(requeue=False)
        except MessageStateError:
            pass

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handler = super().create_task_handler(*args, **kwargs)
        connection_errors = tuple(getattr(self, "connection_errors", None) or ())

        def on_task_received(message: Any) -> Any:
            try:
                return handler(message)
            except (MemoryError, *connection_errors):
                raise
            except Exception as exc:  # noqa: BLE001 - a message this worker cannot even read
                self._set_aside(message, f"unreadable task message: {exc!r}")
                self._ack(message)
                return None

        return on_task_received
