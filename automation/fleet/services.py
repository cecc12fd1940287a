"""What operators see and do about the fleet: worker nodes and their liveness, messages set aside.

The only code that changes the fleet's records besides the worker's own heartbeat
(automation/fleet/heartbeat.py) and the broker's hooks (automation/broker/deadletter.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from automation.errors import NotFoundError
from automation.models import DeadLetter, WorkerNode
from automation.runs.services import NODE_DEAD_AFTER
from automation.secrets import mask


@dataclass(frozen=True)
class NodeView:
    id: str
    nodename: str
    hostname: str
    state: str
    seen_at: datetime
    executing: int


def node_state(node: WorkerNode, now: datetime) -> str:
    if node.stopped_at is not None:
        return "stopped"
    if node.seen_at >= now - NODE_DEAD_AFTER:
        return "alive"
    return "recovered" if node.reaped_at is not None else "dead"


def list_nodes() -> list[NodeView]:
    now = timezone.now()
    return [
        NodeView(
            id=node.id,
            nodename=node.nodename,
            hostname=node.hostname,
            state=node_state(node, now),
            seen_at=node.seen_at,
            executing=len([part for part in node.executing.split(",") if part]),
        )
        for node in WorkerNode.objects.order_by("-seen_at")
    ]


def dead_letter_json(letter: DeadLetter, *, with_payload: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": letter.pk,
        "queue": letter.queue,
        "reason": letter.reason,
        "size": letter.size,
        "received_at": letter.received_at.isoformat(),
        "worker": letter.worker,
    }
    if with_payload:
        data["payload"] = masked_payload(letter.payload)
    return data


#: Python reprs of a task's arguments (Celery's headers): not JSON, so nothing in them could be masked.
_REPRS = frozenset({"argsrepr", "kwargsrepr"})


def masked_payload(text: str) -> Any:
    """The payload with values under sensitive keys masked, when it is JSON (nested JSON strings and
    base64 bodies too); the argument reprs Celery adds to headers are left out."""
    try:
        value = json.loads(text)
    except ValueError:
        return "(not JSON: not shown, it may hold secrets)"
    return mask(_decode_nested(value))


def _decode_nested(value: Any) -> Any:
    if isinstance(value, dict):
        encoding = (value.get("properties") or {}).get("body_encoding")
        if isinstance(value.get("body"), str) and encoding == "base64":
            try:
                value = {**value, "body": base64.b64decode(value["body"]).decode("utf-8")}
            except (ValueError, UnicodeDecodeError):
                pass
        return {key: _decode_nested(item) for key, item in value.items() if key not in _REPRS}
    if isinstance(value, list):
        return [_decode_nested(item) for item in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _decode_nested(json.loads(value))
        except ValueError:
            return value
    return value


def list_dead_letters(*, limit: int = 50) -> list[DeadLetter]:
    return list(DeadLetter.objects.order_by("-received_at", "-id")[:limit])


def get_dead_letter(letter_id: int) -> DeadLetter:
    letter = DeadLetter.objects.filter(pk=letter_id).first()
    if letter is None:
        raise NotFoundError(f"dead letter {letter_id} does not exist")
    return letter


def purge_dead_letters(*, older_than: timedelta) -> int:
    deleted, _ = DeadLetter.objects.filter(received_at__lt=timezone.now() - older_than).delete()
    return int(deleted)
