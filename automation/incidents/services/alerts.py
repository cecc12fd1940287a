"""Alerts joining and leaving incidents, called by the alerting pipeline once a firing or a resolution is
committed (automation/alerting/services/pipeline.py). Each firing of an alert (fingerprint, firing
start) joins one incident once: the pipeline may run again for the same transition (`repair`) and finds
it joined. The decision is `automation.incidents.correlation`'s, taken under the locks of the alert's
group keys (and of the graph, for a service in it), so concurrent alerts of one outage open one incident.
An incident's escalation is made in the transaction that opens it (`services/escalations.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from automation.config import current_config
from automation.incidents.choices import EventKind, IncidentStatus
from automation.incidents.correlation import (
    Correlation,
    OpenIncident,
    correlate,
    linkable_services,
    service_of,
)
from automation.incidents.graph import ServiceGraph
from automation.incidents.lifecycle import highest_severity, more_severe
from automation.incidents.services.catalog import current_graph
from automation.incidents.services.escalations import begin
from automation.incidents.services.locks import GRAPH, lock
from automation.incidents.services.timeline import Event, at, record
from automation.models import Alert, Incident, IncidentAlert

#: Longest service name kept (a label longer than that names no declared service).
MAX_SERVICE = 200


@dataclass(frozen=True)
class Firing:
    """One firing of one alert, as the incidents see it."""

    alert: Alert
    fired_at: datetime
    labels: dict[str, str]
    service: str | None

    @staticmethod
    def of(alert: Alert) -> Firing | None:
        if alert.fired_at is None:
            return None
        labels = {str(k): str(v) for k, v in alert.labels.items()}
        service = service_of(labels)
        return Firing(
            alert, alert.fired_at, labels, service if service and len(service) <= MAX_SERVICE else None
        )

    @property
    def where(self) -> str:
        return f" on {self.service}" if self.service else ""


def alert_fired(alert: Alert, now: float, *, group_keys: Iterable[str], may_open: bool = True) -> int | None:
    """This firing of `alert` joins the open incident it correlates with, or opens one (unless
    `may_open` is false: a muted alert joins an incident but opens none). Returns the incident's id;
    None when the alert joined nothing."""
    firing = Firing.of(alert)
    if firing is None:
        return None
    keys = frozenset(group_keys)
    with transaction.atomic():
        graph = current_graph()
        names = {*(f"group:{key}" for key in keys), f"firing:{alert.fingerprint}"}
        joined = lock(
            names | {GRAPH} if firing.service in graph else names,
            _JOINED,
            # Adapted as the ORM stores it (SQLite keeps naive UTC text; PostgreSQL takes it as it is).
            [alert.fingerprint, connection.ops.adapt_datetimefield_value(firing.fired_at)],
        )
        if joined is not None:
            return int(joined[0])  # this firing joined already (the pipeline ran again)
        incident, found = _correlate(firing, keys, graph)
        opened = incident is None
        if incident is None:
            if not may_open:
                return None
            incident = _open(firing, now)
        _join(incident, firing, now, keys, found)
        if opened:
            begin(incident, now)
        return int(incident.pk)


#: The incident this firing (fingerprint, fired_at) joined, if any.
_JOINED = "SELECT incident_id FROM automation_incidentalert WHERE fingerprint = %s AND fired_at = %s"


def alert_resolved(alert: Alert, now: float) -> int | None:
    """The firing of `alert` that just resolved is marked so in its incident; the incident turns quiet
    (auto-resolve's hold starts) when no alert of it fires any more. Returns the incident's id, if any."""
    if alert.fired_at is None:
        return None
    resolved_at = alert.resolved_at or at(now)
    with transaction.atomic():
        link = IncidentAlert.objects.filter(
            fingerprint=alert.fingerprint, fired_at=alert.fired_at, resolved_at__isnull=True
        ).first()
        if link is None:
            return None  # joined nothing, or its resolution is recorded already
        incident = Incident.objects.select_for_update().get(pk=link.incident_id)
        if not IncidentAlert.objects.filter(pk=link.pk, resolved_at__isnull=True).update(
            resolved_at=resolved_at
        ):
            return int(incident.pk)
        detail = f"{alert.name}{f' on {link.service}' if link.service else ''} resolved"
        record(
            incident.pk, now, Event(EventKind.ALERT_RESOLVED, detail=detail, fingerprint=alert.fingerprint)
        )
        if not IncidentAlert.objects.filter(incident_id=incident.pk, resolved_at__isnull=True).exists():
            Incident.objects.filter(pk=incident.pk).update(quiet_since=resolved_at)
        return int(incident.pk)


def _correlate(
    firing: Firing, keys: frozenset[str], graph: ServiceGraph
) -> tuple[Incident | None, Correlation]:
    """The open incident the firing joins, locked (None: a new one), and why."""
    refused: set[int] = set()
    window = current_config().incident_correlation_window
    linkable = linkable_services(firing.labels, graph)
    since = firing.fired_at - timedelta(seconds=window)
    while True:
        found = correlate(
            labels=firing.labels,
            group_keys=keys,
            fired_at=firing.fired_at.timestamp(),
            open_incidents=_open_incidents(refused, keys, linkable, since),
            graph=graph,
            window=window,
        )
        if found.incident is None:
            return None, found
        chosen = Incident.objects.select_for_update().filter(
            pk=int(found.incident), status__in=IncidentStatus.ACTIVE
        )
        incident = chosen.first()
        if incident is not None:
            return incident, found
        refused.add(int(found.incident))  # resolved meanwhile: correlate again without it


def _open_incidents(
    refused: set[int], keys: frozenset[str], linkable: frozenset[str], since: datetime
) -> list[OpenIncident]:
    """The open incidents `correlate` could join the firing to. On PostgreSQL only those holding one of
    its group keys, or one of the services it links to and fired since `since` (during a storm with a
    thousand incidents open, reading every one per alert was most of the alert's cost); elsewhere all."""
    found = Incident.objects.filter(status__in=IncidentStatus.ACTIVE).exclude(pk__in=refused)
    if connection.vendor == "postgresql":
        joinable = Q(group_keys__has_any_keys=sorted(keys)) if keys else Q(pk__in=[])
        if linkable:
            joinable |= Q(services__has_any_keys=sorted(linkable), last_fired_at__gte=since)
        found = found.filter(joinable)
    rows = found.values_list("pk", "group_keys", "services", "last_fired_at")
    return [
        OpenIncident(str(pk), frozenset(held), frozenset(services), last.timestamp())
        for pk, held, services, last in rows
    ]


def _open(firing: Firing, now: float) -> Incident:
    return Incident.objects.create(
        title=f"{firing.alert.name}{firing.where}"[:300],
        status=IncidentStatus.TRIGGERED,
        severity=firing.alert.severity,
        opened_at=at(now),
        last_fired_at=firing.fired_at,
    )


def _join(incident: Incident, firing: Firing, now: float, keys: frozenset[str], found: Correlation) -> None:
    alert = firing.alert
    events = (
        []
        if found.incident
        else [Event(EventKind.OPENED, detail=found.reason, fingerprint=alert.fingerprint)]
    )
    joined = f"{alert.name}{firing.where} ({alert.severity}): {found.reason}"
    events.append(Event(EventKind.ALERT_JOINED, detail=joined, fingerprint=alert.fingerprint))
    severity = highest_severity([incident.severity, alert.severity])
    if more_severe(severity, incident.severity):
        raised = f"{incident.severity} -> {severity} by {alert.name}{firing.where}"
        events.append(Event(EventKind.SEVERITY_RAISED, detail=raised, fingerprint=alert.fingerprint))
    incident.severity = severity
    incident.services = sorted({*incident.services, *([firing.service] if firing.service else [])})
    incident.group_keys = sorted({*incident.group_keys, *keys})
    incident.last_fired_at = max(incident.last_fired_at, firing.fired_at)
    incident.quiet_since = None
    if connection.vendor == "postgresql":
        _store_join(incident, firing, now, found.reason, events)
        return
    IncidentAlert.objects.create(
        incident=incident,
        alert=alert,
        fingerprint=alert.fingerprint,
        name=alert.name,
        service=firing.service or "",
        severity=alert.severity,
        fired_at=firing.fired_at,
        joined_at=at(now),
        reason=found.reason,
    )
    record(incident.pk, now, *events)
    incident.save(
        update_fields=["severity", "services", "group_keys", "last_fired_at", "quiet_since", "updated_at"]
    )


_INSERT_FIRING = (
    "INSERT INTO automation_incidentalert (incident_id, alert_id, fingerprint, name, service, severity, "
    "fired_at, joined_at, resolved_at, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, %s)"
)
_INSERT_EVENTS = (
    "INSERT INTO automation_incidentevent "
    "(incident_id, at, kind, actor, detail, alert_fingerprint, run_id) VALUES "
)
_EVENT_ROW = "(%s, %s, %s, %s, %s, %s, %s)"
_UPDATE_INCIDENT = (
    "UPDATE automation_incident SET severity = %s, services = CAST(%s AS jsonb), "
    "group_keys = CAST(%s AS jsonb), last_fired_at = %s, quiet_since = NULL, updated_at = %s "
    "WHERE id = %s"
)


def _store_join(incident: Incident, firing: Firing, now: float, reason: str, events: list[Event]) -> None:
    """`_join`'s three writes (the firing joined, its timeline events, the incident's new state) in one
    round trip on PostgreSQL, where the ORM takes three."""
    alert, moment = firing.alert, at(now)
    incident.updated_at = timezone.now()
    statements = [_INSERT_FIRING, _INSERT_EVENTS + ", ".join([_EVENT_ROW] * len(events)), _UPDATE_INCIDENT]
    params: list[Any] = [
        *(incident.pk, alert.pk, alert.fingerprint, alert.name, firing.service or "", alert.severity),
        *(firing.fired_at, moment, reason),
    ]
    for event in events:
        params += [incident.pk, moment, event.kind, event.actor[:200], event.detail, event.fingerprint]
        params.append(event.run_id)
    params += [incident.severity, json.dumps(incident.services), json.dumps(incident.group_keys)]
    params += [incident.last_fired_at, incident.updated_at, incident.pk]
    with connection.cursor() as cursor:
        cursor.execute(";".join(statements), params)
