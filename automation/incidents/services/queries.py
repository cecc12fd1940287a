"""Reading incidents for the API and the CLI: one incident by id, a filtered list."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from automation.errors import NotFoundError
from automation.incidents.filters import IncidentFilter
from automation.incidents.services.timeline import at
from automation.models import Incident, IncidentAlert

#: The largest id an incident can have (a bigint).
MAX_ID = 2**63 - 1


def incident_id(text: str | int) -> int:
    """The id an incident is named by (in a path, on a command line); NotFoundError when it cannot be one."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if not 0 < value <= MAX_ID:
        raise NotFoundError(f"incident {str(text)[:40]} does not exist")
    return value


def _counted(rows: QuerySet[Incident]) -> QuerySet[Incident]:
    return rows.annotate(
        alerts_count=Count("alerts"), firing_count=Count("alerts", filter=Q(alerts__resolved_at__isnull=True))
    )


def get_incident(text: str | int) -> Incident:
    """The incident, with `alerts_count` and `firing_count`; NotFoundError naming it."""
    found = _counted(Incident.objects.filter(pk=incident_id(text))).first()
    if found is None:
        raise NotFoundError(f"incident {str(text)[:40]} does not exist")
    return found


def list_incidents(chosen: IncidentFilter) -> list[Incident]:
    """The incidents the filter asks for, newest first."""
    rows = Incident.objects.all()
    if chosen.statuses is not None:
        rows = rows.filter(status__in=chosen.statuses)
    if chosen.since is not None:
        rows = rows.filter(opened_at__gte=at(chosen.since))
    if chosen.service is not None:
        of_service = IncidentAlert.objects.filter(service=chosen.service).values("incident_id")
        rows = rows.filter(pk__in=of_service)
    return list(_counted(rows).order_by("-opened_at", "-id")[: chosen.limit])
