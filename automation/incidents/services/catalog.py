"""The service dependency graph, stored: the `services:` document replaces the stored services whole (all
or none), and every correlation reads the graph from it."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, transaction

from automation.access.services import audit
from automation.incidents.definitions import ServiceDefinition, ServicesDocument
from automation.incidents.graph import ServiceGraph
from automation.incidents.services.locks import lock
from automation.models import Service


def apply_services(raw: Any) -> ServicesDocument:
    """Validate `raw` (a `services:` document or its list) and store it in place of the stored one.
    DefinitionError naming each field at fault: then nothing changes."""
    document = ServicesDocument.parse(raw)
    names = [service.name for service in document.services]
    with transaction.atomic():
        lock({"catalog"})  # two documents applied at once: one after the other, not interleaved
        before = list(
            Service.objects.order_by("position").values("name", "depends_on", "owners", "description")
        )
        Service.objects.exclude(name__in=names).delete()
        stored = {s.name: s for s in Service.objects.select_for_update().filter(name__in=names)}
        for position, declared in enumerate(document.services):
            row = stored.get(declared.name) or Service(name=declared.name)
            row.depends_on = list(declared.depends_on)
            row.owners = list(declared.owners)
            row.description = declared.description
            row.position = position
            row.save()
        after = list(
            Service.objects.order_by("position").values("name", "depends_on", "owners", "description")
        )
        audit.record("config.applied", "services_document", "services", before=before, after=after)
    return document


def current_services() -> ServicesDocument:
    """The stored document, in its declared order (it was valid when stored, so it is not checked again)."""
    rows = Service.objects.order_by("position", "name").values_list(
        "name", "depends_on", "owners", "description"
    )
    return ServicesDocument.model_construct(
        services=tuple(
            ServiceDefinition.model_construct(
                name=name, depends_on=tuple(deps), owners=tuple(owners), description=description
            )
            for name, deps, owners, description in rows
        )
    )


def current_graph() -> ServiceGraph:
    """The graph as stored now (read for every firing: the driver's cursor, not a queryset, which costs
    more to build than the read)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, depends_on FROM automation_service")
        rows = cursor.fetchall()
    return ServiceGraph({name: _json_list(deps) for name, deps in rows})


def _json_list(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def owners_of(services: list[str]) -> set[str]:
    """The owners the services document gives these services."""
    rows = Service.objects.filter(name__in=services).values_list("owners", flat=True)
    return {str(owner) for owners in rows for owner in owners}
