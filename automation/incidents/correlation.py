"""Which incident a firing alert belongs to: an open incident that already holds its group (same
notification group key), else one with a service linked to the alert's in the dependency graph that
fired within the correlation window, else a new incident. Pure: the services pass in what is open."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from automation.incidents.graph import ServiceGraph

__all__ = ["Correlation", "OpenIncident", "SERVICE_LABELS", "correlate", "linkable_services", "service_of"]

#: Labels that name an alert's service, in order of preference.
SERVICE_LABELS = ("service", "service_name", "job", "app")
#: How far apart in the graph two services may be and still share an incident.
MAX_HOPS = 3


@dataclass(frozen=True)
class OpenIncident:
    id: str
    group_keys: frozenset[str]
    services: frozenset[str]
    last_fired_at: float  # the latest firing of any of its alerts


@dataclass(frozen=True)
class Correlation:
    incident: str | None  # None: open a new incident
    reason: str


def service_of(labels: Mapping[str, str]) -> str | None:
    for name in SERVICE_LABELS:
        value = labels.get(name)
        if value:
            return value
    return None


def linkable_services(labels: Mapping[str, str], graph: ServiceGraph) -> frozenset[str]:
    """The services an open incident must hold for `correlate` to join the alert to it through the graph
    (the alert's own, and those within MAX_HOPS of it); none when its service is not in the graph. With
    the alert's group keys, what a store may filter open incidents by before calling `correlate`."""
    service = service_of(labels)
    if service is None or service not in graph:
        return frozenset()
    near = {**graph.upstream(service), **graph.downstream(service)}
    return frozenset({service, *(other for other, hops in near.items() if hops <= MAX_HOPS)})


def correlate(
    *,
    labels: Mapping[str, str],
    group_keys: Iterable[str],
    fired_at: float,
    open_incidents: Iterable[OpenIncident],
    graph: ServiceGraph,
    window: float,
) -> Correlation:
    """The incident the alert joins (the most recently active of those that qualify) and why."""
    candidates = sorted(open_incidents, key=lambda i: (-i.last_fired_at, i.id))
    keys = set(group_keys)
    for incident in candidates:
        shared = keys & incident.group_keys
        if shared:
            return Correlation(incident.id, f"same group {sorted(shared)[0]}")
    service = service_of(labels)
    if service is None or service not in graph:
        return Correlation(None, "no known service label: a new incident")
    near = {**graph.upstream(service), **graph.downstream(service)}
    for incident in candidates:
        if fired_at - incident.last_fired_at > window:
            continue
        linked = sorted((near[s], s) for s in incident.services if s in near and near[s] <= MAX_HOPS) + [
            (0, s) for s in incident.services if s == service
        ]
        if linked:
            hops, other = min(linked)
            relation = (
                "same service"
                if hops == 0
                else (
                    f"{service} depends on {other}"
                    if other in graph.upstream(service)
                    else f"{other} depends on {service}"
                )
            )
            return Correlation(incident.id, f"{relation} ({hops} hop(s)), fired within {window:.0f} s")
    return Correlation(None, "no open incident linked by group or dependency: a new incident")
