"""Setting aside a message no worker can run: stored where an operator can see it, counted, logged.

The worker goes on. The payload is kept (cut to 64 KiB) in PostgreSQL, never written to the log: a
message may carry a workflow's inputs, secrets included.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

logger = logging.getLogger("automation.deadletter")

MAX_PAYLOAD = 64 * 1024
#: Fallback when PostgreSQL cannot be written: a bounded Redis list.
REDIS_FALLBACK_KEY = "automation:dead-letters"
REDIS_FALLBACK_LENGTH = 10_000


def as_text(payload: Any) -> str:
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, default=repr)
    except (TypeError, ValueError):
        return repr(payload)


def set_aside(*, queue: str, payload: Any, reason: str, redis_client: Any = None) -> int | None:
    """Record a message no worker can run; returns its dead-letter id (None if only logged)."""
    text = as_text(payload)
    size = len(text.encode("utf-8", errors="replace"))
    try:
        letter = _store(queue=queue, reason=reason, text=text, size=size)
    except Exception as exc:  # noqa: BLE001 - the worker must go on whatever the database says
        logger.error(
            "message from queue %s set aside (%s, %d bytes) but not stored: %s", queue, reason, size, exc
        )
        if redis_client is not None:
            try:
                entry = json.dumps({"queue": queue, "reason": reason, "payload": text[:MAX_PAYLOAD]})
                redis_client.lpush(REDIS_FALLBACK_KEY, entry)
                redis_client.ltrim(REDIS_FALLBACK_KEY, 0, REDIS_FALLBACK_LENGTH - 1)
            except Exception:  # noqa: BLE001, S110 - already logged above; nothing else to try
                pass
        return None
    logger.error(
        "message from queue %s set aside as dead letter %d: %s (%d bytes)", queue, letter.pk, reason, size
    )
    return int(letter.pk)


def _store(*, queue: str, reason: str, text: str, size: int) -> Any:
    from django.db import InterfaceError, OperationalError, connection

    from automation.models import DeadLetter

    fields = {
        "queue": queue[:200],
        "reason": reason[:2000],
        "payload": text[:MAX_PAYLOAD].replace("\x00", "\\u0000"),
        "size": size,
        "worker": socket.gethostname()[:255],
    }
    try:
        return DeadLetter.objects.create(**fields)
    except (OperationalError, InterfaceError):
        # The consumer's connection may have died while idle (a database restart): once more, on a new one.
        connection.close()
        return DeadLetter.objects.create(**fields)
