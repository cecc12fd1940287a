"""JSON views of alerts, their notification log, silences, rules and the alerting document, for API
answers and the CLI; secrets masked (`automation.secrets`: by name, and notification settings by place)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from automation.alerting.choices import SilenceState
from automation.alerting.definitions import ACTION_ALIASES, AlertingDocument
from automation.alerting.limits import MAX_LOG_ENTRIES
from automation.models import Alert, AlertLog, Silence
from automation.secrets import is_notification, mask, mask_notification


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
        return SilenceState.EXPIRED
    return SilenceState.PENDING if silence.starts_at > moment else SilenceState.ACTIVE


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


def alerting_document_json(document: AlertingDocument) -> dict[str, Any]:
    """The alerting document as shown: every receiver's settings masked by place (its `url` may be the
    credential), the Prometheus source's password and bearer token by name."""
    shown: dict[str, Any] = mask(document.model_dump(mode="json", by_alias=True, exclude_none=True))
    for receiver, settings in zip(shown.get("receivers", []), document.receivers, strict=True):
        receiver[settings.kind] = mask_notification(settings.settings)
    return shown


def rule_document_json(document: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's document as shown: masked by name, its notification actions' parameters by place."""
    shown: dict[str, Any] = mask(document)
    actions = document.get("actions")
    if isinstance(actions, list):
        shown["actions"] = [_masked_action(action) for action in actions]
    return shown


def _masked_action(action: Any) -> Any:
    shown = mask(action)
    if isinstance(action, Mapping) and isinstance(action.get("parameters"), Mapping):
        kind = str(action.get("type", ""))
        if is_notification(ACTION_ALIASES.get(kind, kind)):
            shown["parameters"] = mask_notification(action["parameters"])
    return shown
