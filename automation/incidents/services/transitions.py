"""An incident's status changes: the operators' steps (acknowledge, mitigate, resolve) and auto-resolve.
Each is one guarded update (`WHERE status IN` the statuses it leaves) with its timeline event in the same
transaction: asked twice, or by two people at once, it is taken once; asked again once taken, it
changes nothing (idempotent); from a status it cannot leave, it is refused (StateError)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from automation.access.services import audit
from automation.errors import NotFoundError, StateError
from automation.incidents.choices import EventKind, IncidentStatus
from automation.incidents.lifecycle import ACKNOWLEDGE, MITIGATE, RESOLVE, Step
from automation.incidents.services.timeline import Event, at, record
from automation.models import Incident

#: Incidents auto-resolved per statement (the next sweep takes the rest).
AUTO_RESOLVE_BATCH = 500


@dataclass(frozen=True)
class Outcome:
    incident: Incident
    changed: bool  # False: the step was taken already


def acknowledge(incident_id: int, *, by: str, now: float, comment: str = "") -> Outcome:
    return _take(ACKNOWLEDGE, incident_id, by, now, comment)


def mitigate(incident_id: int, *, by: str, now: float, comment: str = "") -> Outcome:
    return _take(MITIGATE, incident_id, by, now, comment)


def resolve(incident_id: int, *, by: str, now: float, comment: str = "") -> Outcome:
    return _take(RESOLVE, incident_id, by, now, comment)


def _fields(step: Step, by: str, moment: Any) -> dict[str, Any]:
    """What the step writes besides the status: its time and author; mitigating an incident nobody
    acknowledged acknowledges it too (someone is on it)."""
    if step is ACKNOWLEDGE:
        return {"acknowledged_at": moment, "acknowledged_by": by}
    if step is MITIGATE:
        return {
            "mitigated_at": moment,
            "mitigated_by": by,
            # one UPDATE reads the row as it was: both test whether it had been acknowledged
            "acknowledged_at": Coalesce(F("acknowledged_at"), Value(moment)),
            "acknowledged_by": Case(
                When(acknowledged_at__isnull=True, then=Value(by)), default=F("acknowledged_by")
            ),
        }
    return {"resolved_at": moment, "resolved_by": by}


def _take(step: Step, incident_id: int, by: str, now: float, comment: str) -> Outcome:
    moment = at(now)
    with transaction.atomic():
        taken = Incident.objects.filter(pk=incident_id, status__in=step.leaves).update(
            status=step.to, updated_at=timezone.now(), **_fields(step, by, moment)
        )
        incident = Incident.objects.filter(pk=incident_id).first()
        if incident is None:
            raise NotFoundError(f"incident {incident_id} does not exist")
        if taken:
            detail = _detail(step, incident, comment)
            record(incident.pk, now, Event(step.event, actor=by, detail=detail))
            audit.record(
                f"incident.{step.event}",
                "incident",
                incident.pk,
                before={"status": list(step.leaves)},
                after={"status": incident.status},
                note={"by": by},
            )
            return Outcome(incident, True)
    if step.outcome(incident.status) == "done":
        return Outcome(incident, False)
    raise StateError(step.refusal(incident_id, incident.status))


def _detail(step: Step, incident: Incident, comment: str) -> str:
    parts = []
    if step is RESOLVE:
        firing = incident.alerts.filter(resolved_at__isnull=True).count()
        if firing:
            parts.append(f"{firing} alert(s) still firing")
    if comment:
        parts.append(comment)
    return "; ".join(parts)


def auto_resolve(now: float, hold: float) -> list[int]:
    """Resolve the open incidents none of whose alerts has fired for `hold` seconds; their ids."""
    cutoff = at(now - hold)
    with transaction.atomic():
        due = (
            Incident.objects.select_for_update(skip_locked=True)
            .filter(status__in=IncidentStatus.ACTIVE, quiet_since__lte=cutoff)
            .order_by("quiet_since")
            .values_list("pk", flat=True)[:AUTO_RESOLVE_BATCH]
        )
        ids = list(due)
        if not ids:
            return []
        Incident.objects.filter(pk__in=ids, status__in=IncidentStatus.ACTIVE, quiet_since__lte=cutoff).update(
            status=IncidentStatus.RESOLVED, resolved_at=at(now), resolved_by="", updated_at=timezone.now()
        )
        for incident in Incident.objects.filter(pk__in=ids).annotate(alerts_count=Count("alerts")):
            detail = f"all {incident.alerts_count} alert(s) resolved for {hold:.0f} s"
            record(incident.pk, now, Event(EventKind.AUTO_RESOLVED, detail=detail))
    return ids
