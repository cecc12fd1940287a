"""What the alerting API receives, checked into plain values without I/O: Alertmanager's webhook payload
(version 4), an event from any tool, a silence request. Every refusal names its field
(`alerts[2].labels`, `ends_at`), all of a request's refusals in one `InvalidFieldsError`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from automation.alerting.choices import AlertOrigin
from automation.alerting.limits import (
    LATEST_EPOCH,
    MAX_ALERT_NAME,
    MAX_ANNOTATION_VALUE,
    MAX_LABEL_NAME,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_WEBHOOK_ALERTS,
)
from automation.alerting.matchers import digest
from automation.errors import InvalidFieldsError

#: Alertmanager's fingerprints are 16 hex digits; ours are too. A fingerprint is a path segment later.
FINGERPRINT = re.compile(r"[A-Za-z0-9._:-]{1,40}")
FINGERPRINT_TEXT = "1 to 40 letters, digits, '.', '_', ':' or '-'"
MAX_TIME_TEXT = 64
STATUSES = ("firing", "resolved")
EVENT_FIELDS = ("labels", "annotations", "status", "starts_at", "ends_at", "fingerprint")
SILENCE_FIELDS = ("matchers", "starts_at", "ends_at", "created_by", "comment")


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert another tool raised, as the intake service takes it."""

    fingerprint: str
    origin: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    firing: bool
    starts_at: datetime
    ends_at: datetime | None = None
    value: float | None = None


@dataclass(frozen=True)
class SilenceRequest:
    matchers: Any
    starts_at: float
    ends_at: float
    created_by: Any
    comment: Any


def alert_name(labels: Mapping[str, str]) -> str:
    """The name a received alert goes by (and the handler rule it looks for)."""
    return labels.get("alertname") or labels.get("name") or "event"


class _Refused(ValueError):
    """One field is refused; the message is the reason."""


def _path(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (a zone-less one is UTC) or epoch seconds, between 1970 and 9999; None for Go's
    zero time (0001-01-01T00:00:00Z), which Alertmanager sends for "not set"."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Refused("must be an RFC 3339 time (a string) or epoch seconds (a number)")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if not 0 <= seconds <= LATEST_EPOCH:
            raise _Refused(f"{value} is not epoch seconds between 1970 and 9999")
        return datetime.fromtimestamp(seconds, tz=UTC)
    if len(value) > MAX_TIME_TEXT:
        raise _Refused(f"is {len(value)} characters long; an RFC 3339 time is far shorter")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Refused(f"'{value}' is not an RFC 3339 time (2026-11-29T10:00:00Z)") from None
    if parsed.year == 1:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed.timestamp() < 0:
        raise _Refused(f"'{value}' is before 1970")
    return parsed


def _time(value: Any, field: str, errors: list[tuple[str, str]]) -> datetime | None:
    try:
        return parse_time(value)
    except _Refused as exc:
        errors.append((field, str(exc)))
        return None


def _strings(value: Any, field: str, limit: int, errors: list[tuple[str, str]]) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        errors.append((field, "must be an object of strings"))
        return {}
    if len(value) > MAX_LABELS:
        errors.append((field, f"has {len(value)} entries; at most {MAX_LABELS}"))
        return {}
    for name, text in value.items():
        if not 1 <= len(name) <= MAX_LABEL_NAME:
            errors.append((field, f"names are 1 to {MAX_LABEL_NAME} characters long"))
        elif len(text) > limit:
            errors.append((f"{field}.{name}", f"is {len(text)} characters long; at most {limit}"))
    return dict(value)


def _alert(
    item: Any, where: str, *, origin: str, now: float, start_key: str, end_key: str
) -> tuple[ReceivedAlert | None, list[tuple[str, str]]]:
    if not isinstance(item, Mapping):
        return None, [(where or "body", "must be an object")]
    errors: list[tuple[str, str]] = []
    labels = _strings(item.get("labels"), _path(where, "labels"), MAX_LABEL_VALUE, errors)
    annotations = _strings(
        item.get("annotations", {}), _path(where, "annotations"), MAX_ANNOTATION_VALUE, errors
    )
    if not labels and not errors:
        errors.append((_path(where, "labels"), "at least one label is required"))
    elif len(alert_name(labels)) > MAX_ALERT_NAME:
        errors.append((_path(where, "labels.alertname"), f"at most {MAX_ALERT_NAME} characters"))
    status = item.get("status", "firing")
    if status not in STATUSES:
        errors.append((_path(where, "status"), "must be 'firing' or 'resolved'"))
    fingerprint = item.get("fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and FINGERPRINT.fullmatch(fingerprint)):
        errors.append((_path(where, "fingerprint"), f"must be {FINGERPRINT_TEXT}"))
    starts = item.get(start_key)
    starts_at = _time(starts, _path(where, start_key), errors) if starts is not None else None
    ends = item.get(end_key)
    ends_at = _time(ends, _path(where, end_key), errors) if ends is not None else None
    if errors:
        return None, errors
    received = ReceivedAlert(
        fingerprint=fingerprint or digest(origin, labels),
        origin=origin,
        labels=labels,
        annotations=annotations,
        firing=status == "firing" and (ends_at is None or ends_at.timestamp() > now),
        starts_at=starts_at or datetime.fromtimestamp(now, tz=UTC),
        ends_at=ends_at,
    )
    return received, []


def webhook_alerts(body: Mapping[str, Any], now: float) -> list[ReceivedAlert]:
    """The alerts of an Alertmanager webhook call (version 4; the group fields are not needed)."""
    if str(body.get("version", "4")) != "4":
        raise InvalidFieldsError([("version", f"'{str(body.get('version'))[:20]}' is not 4")])
    items = body.get("alerts")
    if not isinstance(items, list) or not items:
        raise InvalidFieldsError([("alerts", "must be a non-empty list")])
    if len(items) > MAX_WEBHOOK_ALERTS:
        raise InvalidFieldsError(
            [("alerts", f"{len(items)} alerts; at most {MAX_WEBHOOK_ALERTS} (set the webhook's max_alerts)")]
        )
    errors: list[tuple[str, str]] = []
    alerts: list[ReceivedAlert] = []
    for i, item in enumerate(items):
        found, refused = _alert(
            item,
            f"alerts[{i}]",
            origin=AlertOrigin.ALERTMANAGER,
            now=now,
            start_key="startsAt",
            end_key="endsAt",
        )
        errors.extend(refused)
        if found is not None:
            alerts.append(found)
    if errors:
        raise InvalidFieldsError(errors)
    return alerts


def event_alert(body: Mapping[str, Any], now: float) -> ReceivedAlert:
    """One event: labels, optional annotations, status, starts_at, ends_at and fingerprint."""
    errors = [(str(name), "unknown field") for name in body if name not in EVENT_FIELDS]
    found, refused = _alert(
        body, "", origin=AlertOrigin.EVENT, now=now, start_key="starts_at", end_key="ends_at"
    )
    errors.extend(refused)
    if errors or found is None:
        raise InvalidFieldsError(errors)
    return found


def silence_request(body: Mapping[str, Any], now: float) -> SilenceRequest:
    """The fields of a silence to create; `starts_at` defaults to now, `ends_at` is required. The matchers
    and texts are checked by the service that stores it."""
    errors = [(str(name), "unknown field") for name in body if name not in SILENCE_FIELDS]
    starts = _time(body["starts_at"], "starts_at", errors) if body.get("starts_at") is not None else None
    ends: datetime | None = None
    if body.get("ends_at") is None:
        errors.append(("ends_at", "is required: when the silence ends"))
    else:
        before = len(errors)
        ends = _time(body["ends_at"], "ends_at", errors)
        if ends is None and len(errors) == before:
            errors.append(("ends_at", "the zero time is not an end"))
    if errors or ends is None:
        raise InvalidFieldsError(errors)
    return SilenceRequest(
        matchers=body.get("matchers"),
        starts_at=starts.timestamp() if starts else now,
        ends_at=ends.timestamp(),
        created_by=body.get("created_by", ""),
        comment=body.get("comment", ""),
    )
