"""Celery's consumer, with every message it cannot run set aside (automation/broker/deadletter.py)
instead of dropped, and never allowed to stop the worker.

Celery already acknowledges a message whose body does not decode or whose task is unknown, and logs
it; a message whose headers are incomplete can still raise out of the consumer and end the worker.
"""

from __future__ import annotations

import logging
from typing import Any

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

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"body does not decode: {exc!r}")
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._set_aside(message, "not a task message")
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"unknown task {message.headers.get('task')!r}")
        try:
            super().on_unknown_task(body, message, exc)
        except Exception as error:  # noqa: BLE001 - incomplete headers; the message is set aside already
            logger.warning("unknown task message with incomplete headers: %r", error)
            self._ack(message)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"invalid task message: {exc!r}")
        super().on_invalid_task(body, message, exc)

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
