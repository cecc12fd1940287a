"""What a page says, without I/O: the `notification` input of a receiver's delivery run (the same fields
the alerting pipeline's notifications fill, so every receiver kind takes it as it is), about an incident,
with its link (id, and URL when a base URL is configured) and the signed link that acknowledges it.

Per receiver kind: slack and email send `text` (email's subject is `summary`); the webhook sends the
Alertmanager-shaped `payload` (the incident's alerts; `groupKey` `incident:ID`; `commonAnnotations`
carry `incident_id`, `incident_url`, `ack_url`, `escalation`); PagerDuty triggers with `dedup_key`
`incident:ID` and the links in `custom_details`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from automation.alerting.receivers.alertmanager import NOT_ENDED, rfc3339
from automation.alerting.receivers.pagerduty import PAGERDUTY_SEVERITY

__all__ = ["PageAlert", "PageIncident", "incident_url", "page_content"]

#: Alerts one page carries at most, and their bytes (a delivery run's inputs are bounded at 64 KiB).
MAX_ALERTS = 50
ALERT_BUDGET = 24_000


@dataclass(frozen=True)
class PageAlert:
    fingerprint: str
    name: str
    firing: bool
    fired_at: datetime
    resolved_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PageIncident:
    id: int
    title: str
    severity: str
    status: str
    services: tuple[str, ...]


def incident_url(base_url: str, incident_id: int) -> str | None:
    return f"{base_url.rstrip('/')}/api/v1/incidents/{incident_id}" if base_url else None


#: Longest label or annotation value a page carries (longer ones are cut, so one alert always fits).
MAX_VALUE = 1000


def _trimmed(alert: PageAlert) -> PageAlert:
    def cut(values: dict[str, str]) -> dict[str, str]:
        return {k[:200]: (v if len(v) <= MAX_VALUE else v[: MAX_VALUE - 1] + "…") for k, v in values.items()}

    return replace(alert, labels=cut(alert.labels), annotations=cut(alert.annotations))


def _carried(alerts: Sequence[PageAlert]) -> list[PageAlert]:
    """Firing alerts first, then resolved ones, within the budget; values cut to MAX_VALUE, and the first
    alert's annotations dropped if they alone still exceed the budget (a page too big is sent to nobody)."""
    carried: list[PageAlert] = []
    used = 0
    for alert in sorted(alerts, key=lambda a: not a.firing):
        alert = _trimmed(alert)
        size = len(json.dumps([alert.labels, alert.annotations])) + 200
        if not carried and size > ALERT_BUDGET:
            alert = replace(alert, annotations={})
            size = len(json.dumps([alert.labels, alert.annotations])) + 200
        if carried and (used + size > ALERT_BUDGET or len(carried) >= MAX_ALERTS):
            break
        carried.append(alert)
        used += size
    return carried


def _wire(alert: PageAlert) -> dict[str, Any]:
    labels = alert.labels or {"alertname": alert.name}
    return {
        "status": "firing" if alert.firing else "resolved",
        "labels": labels,
        "annotations": alert.annotations,
        "startsAt": rfc3339(alert.fired_at),
        "endsAt": rfc3339(alert.resolved_at if alert.resolved_at and not alert.firing else NOT_ENDED),
        "generatorURL": "",
        "fingerprint": alert.fingerprint,
    }


def page_content(
    incident: PageIncident,
    alerts: Sequence[PageAlert],
    *,
    step: str,
    receiver: str,
    who: str,
    sequence: int,
    url: str | None,
    ack_url: str,
) -> dict[str, Any]:
    """The `notification` input of one page: `step` says which level (and pass), `who` whom it is for."""
    carried = _carried(alerts)
    firing = [a for a in alerts if a.firing]
    services = ", ".join(incident.services) or "-"
    summary = f"[INCIDENT {incident.id}] {incident.title} ({incident.severity}, {step})"[:1024]
    lines = [
        summary,
        f"For: {who}. Services: {services}. {len(firing)} of {len(alerts)} alert(s) firing.",
        f"Incident: {url or f'incident {incident.id}'}",
        *([f"Acknowledge: {ack_url}"] if ack_url else []),
        *(f"- {'firing' if a.firing else 'resolved'} {a.name} {_labels(a.labels)}" for a in carried),
    ]
    if len(carried) < len(alerts):
        lines.append(f"... and {len(alerts) - len(carried)} more alert(s)")
    key = f"incident:{incident.id}"
    links = {
        "incident_id": str(incident.id),
        "incident_url": url or "",
        "ack_url": ack_url,
        "escalation": step,
    }
    payload = {
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": len(alerts) - len(carried),
        "status": "firing",
        "receiver": receiver,
        "groupLabels": {"incident": str(incident.id)},
        "commonLabels": {"incident": str(incident.id), "severity": incident.severity},
        "commonAnnotations": {"summary": incident.title, **links},
        "externalURL": url or "",
        "alerts": [_wire(a) for a in carried],
    }
    return {
        "payload": payload,
        "text": "\n".join(lines),
        "summary": summary,
        "status": "firing",
        "group_key": key,
        "sequence": sequence,
        "source": "automation",
        "pagerduty_action": "trigger",
        "pagerduty_severity": PAGERDUTY_SEVERITY.get(incident.severity, "warning"),
        "details": {
            **links,
            "title": incident.title,
            "services": list(incident.services),
            "alerts": len(alerts),
            "firing": len(firing),
        },
    }


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
