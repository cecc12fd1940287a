"""JSON views of alerts, their notification log and silences, for API answers and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from automation.alerting.limits import MAX_LOG_ENTRIES
from automation.models import Alert, AlertLog, Silence


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "origin": alert.origin,
        "state": alert.state,
        "severity": alert.severity,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "value": alert.value,
        "active_since": _iso(alert.active_since),
        "fired_at": _iso(alert.fired_at),
        "resolved_at": _iso(alert.resolved_at),
        "flapping": alert.flapping,
        "last_run_id": str(alert.last_run_id) if alert.last_run_id else None,
    }


def log_json(entry: AlertLog) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "decision": entry.decision,
        "receiver": entry.receiver,
        "run_id": str(entry.run_id) if entry.run_id else None,
        "detail": entry.detail,
    }


def alert_log_json(alert: Alert) -> dict[str, Any]:
    """The alert and its newest log entries, oldest first: "why was I (not) paged?"."""
    newest = list(alert.log.order_by("-at", "-id")[:MAX_LOG_ENTRIES])
    return {"alert": alert_json(alert), "log": [log_json(e) for e in reversed(newest)]}


def silence_state(silence: Silence, now: float) -> str:
    # Compared as stored times (microseconds): a silence starting `now` is active at `now`, whichever
    # way the float's rounding went.
    moment = datetime.fromtimestamp(now, tz=UTC)
    if silence.ends_at <= moment:
        return "expired"
    return "pending" if silence.starts_at > moment else "active"


def silence_json(silence: Silence, now: float) -> dict[str, Any]:
    return {
        "id": str(silence.id),
        "matchers": silence.matchers,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "state": silence_state(silence, now),
    }
