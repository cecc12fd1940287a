"""The service dependency graph: who depends on whom, and what lies upstream or downstream of a service.

`depends_on` points from a service to the services it calls: a failure travels the other way, from a
dependency to its dependents. Cycles are allowed (they happen in real fleets); walks visit each service
once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from automation.errors import InvalidFieldsError

__all__ = ["ServiceGraph"]


class ServiceGraph:
    """Services and their dependencies; unknown names in `depends_on` are an error naming the service."""

    def __init__(self, depends_on: Mapping[str, Iterable[str]]) -> None:
        self._deps: dict[str, tuple[str, ...]] = {s: tuple(dict.fromkeys(d)) for s, d in depends_on.items()}
        errors = [
            (f"services.{service}.depends_on", f"unknown service {dep!r}")
            for service, deps in self._deps.items()
            for dep in deps
            if dep not in self._deps
        ]
        errors += [
            (f"services.{service}.depends_on", "a service cannot depend on itself")
            for service, deps in self._deps.items()
            if service in deps
        ]
        if errors:
            raise InvalidFieldsError(errors)
        self._dependents: dict[str, list[str]] = {s: [] for s in self._deps}
        for service, deps in self._deps.items():
            for dep in deps:
                self._dependents[dep].append(service)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self._deps)

    def __contains__(self, service: object) -> bool:
        return service in self._deps

    def dependencies(self, service: str) -> tuple[str, ...]:
        return self._deps[service]

    def dependents(self, service: str) -> tuple[str, ...]:
        return tuple(self._dependents[service])

    def upstream(self, service: str) -> dict[str, int]:
        """Every service `service` depends on, directly or not, with its distance in hops."""
        return self._walk(service, self._deps)

    def downstream(self, service: str) -> dict[str, int]:
        """Every service that depends on `service`, directly or not, with its distance in hops."""
        return self._walk(service, self._dependents)

    @staticmethod
    def _walk(start: str, edges: Mapping[str, Iterable[str]]) -> dict[str, int]:
        found: dict[str, int] = {}
        queue = deque([(start, 0)])
        while queue:
            service, distance = queue.popleft()
            for neighbour in edges[service]:
                if neighbour != start and neighbour not in found:
                    found[neighbour] = distance + 1
                    queue.append((neighbour, distance + 1))
        return found
