"""JSON views of incidents (with their alerts and timeline) and of the services document, for API answers
and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from automation.incidents.choices import EscalationStatus
from automation.incidents.definitions import ServicesDocument
from automation.incidents.escalation import Policy, Position
from automation.incidents.limits import MAX_ALERTS, MAX_EVENTS
from automation.incidents.services.escalation_config import ScheduleOnCall
from automation.models import Change, Escalation, EscalationPage, Incident, IncidentAlert, IncidentEvent


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def incident_json(incident: Incident) -> dict[str, Any]:
    """The incident as listed: `alert_count` firings of alerts joined it, `firing_count` of them still fire
    (annotated by the queries)."""
    return {
        "id": incident.pk,
        "title": incident.title,
        "status": incident.status,
        "severity": incident.severity,
        "services": list(incident.services),
        "group_keys": list(incident.group_keys),
        "alert_count": getattr(incident, "alerts_count", 0),
        "firing_count": getattr(incident, "firing_count", 0),
        "opened_at": _iso(incident.opened_at),
        "acknowledged_at": _iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by or None,
        "mitigated_at": _iso(incident.mitigated_at),
        "mitigated_by": incident.mitigated_by or None,
        "resolved_at": _iso(incident.resolved_at),
        "resolved_by": incident.resolved_by or None,
    }


def firing_json(link: IncidentAlert) -> dict[str, Any]:
    return {
        "fingerprint": link.fingerprint,
        "name": link.name,
        "service": link.service or None,
        "severity": link.severity,
        "fired_at": _iso(link.fired_at),
        "joined_at": _iso(link.joined_at),
        "resolved_at": _iso(link.resolved_at),
        "reason": link.reason,
    }


def event_json(event: IncidentEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "detail": event.detail,
        "alert": event.alert_fingerprint or None,
        "run_id": str(event.run_id) if event.run_id else None,
    }


def incident_detail_json(incident: Incident) -> dict[str, Any]:
    """The incident, its alerts (one entry per firing, in the order they joined) and its timeline (oldest
    first)."""
    firings = incident.alerts.order_by("joined_at", "id")[:MAX_ALERTS]
    events = incident.events.order_by("at", "id")[:MAX_EVENTS]
    return {
        **incident_json(incident),
        "alerts": [firing_json(link) for link in firings],
        "timeline": [event_json(event) for event in events],
        "escalation": escalation_json(Escalation.objects.filter(incident_id=incident.pk).first()),
    }


RECIPIENT_FIELDS = ("receiver", "who", "via", "run_id")


def page_json(page: EscalationPage) -> dict[str, Any]:
    return {
        "level": page.level + 1,
        "pass": page.round + 1,
        "due_at": page.due_at.isoformat(),
        "paged_at": page.paged_at.isoformat(),
        "recipients": [{key: str(r.get(key, "")) for key in RECIPIENT_FIELDS} for r in page.recipients],
        "skipped": [str(reason) for reason in page.skipped],
    }


def escalation_json(escalation: Escalation | None) -> dict[str, Any] | None:
    """Where the incident's escalation stands: its policy, the next page (1-based level and pass) and when
    it is due, and the pages sent (None: the incident opened before escalation existed)."""
    if escalation is None:
        return None
    policy = Policy.from_json(escalation.plan) if escalation.policy else None
    position = Position(escalation.level, escalation.round)
    active = escalation.status == EscalationStatus.ACTIVE
    following = active and policy is not None and position.level < len(policy.levels)
    return {
        "status": escalation.status,
        "policy": escalation.policy or None,
        "reason": escalation.reason,
        "next_level": position.level + 1 if following else None,
        "next_pass": position.round + 1 if following else None,
        "next_due_at": _iso(escalation.next_due_at),
        "pages": [page_json(page) for page in escalation.pages.order_by("round", "level")],
    }


def services_json(document: ServicesDocument) -> dict[str, Any]:
    return {
        "services": [
            {
                "name": service.name,
                "depends_on": list(service.depends_on),
                "owners": list(service.owners),
                "description": service.description,
            }
            for service in document.services
        ]
    }


def on_call_json(at: datetime, found: list[ScheduleOnCall]) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "schedules": [
            {
                "schedule": entry.schedule,
                "timezone": entry.timezone,
                "user": entry.on_call.user if entry.on_call else None,
                "source": entry.on_call.source if entry.on_call else None,
                "until": _iso(entry.on_call.until) if entry.on_call else None,
            }
            for entry in found
        ],
    }


def change_json(change: Change) -> dict[str, Any]:
    return {
        "id": change.pk,
        "service": change.service,
        "kind": change.kind,
        "description": change.description,
        "at": change.at.isoformat(),
        "actor": change.actor or None,
        "source": change.source,
        "run_id": str(change.run_id) if change.run_id else None,
        "key": change.key or None,
        "recorded_at": change.recorded_at.isoformat(),
    }
