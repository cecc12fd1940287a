"""The incident timeline: every writer of an incident's state appends here, in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from automation.models import IncidentEvent

#: The actor of what the engine did by itself.
ENGINE = "engine"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str = ENGINE
    detail: str = ""
    fingerprint: str = ""
    run_id: Any = None


def record(incident_id: int, now: float, *events: Event) -> None:
    """Append `events` to the incident's timeline at `now`, in this order (one statement)."""
    moment = at(now)
    IncidentEvent.objects.bulk_create(
        IncidentEvent(
            incident_id=incident_id,
            at=moment,
            kind=event.kind,
            actor=event.actor[:200],
            detail=event.detail,
            alert_fingerprint=event.fingerprint,
            run_id=event.run_id,
        )
        for event in events
    )
