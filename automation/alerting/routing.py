"""The routing tree, with Alertmanager's semantics: an alert walks the tree depth first; it goes to the
first child route that matches (and on to the next siblings while the matched child says `continue`); a
route none of whose children matched takes the alert itself. Children inherit the receiver, `group_by`
and timings they do not set. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from automation.alerting.matchers import digest, matches_all
from automation.alerting.series import Matcher

#: `group_by: ["..."]` groups by every label: each alert is a group of its own.
ALL_LABELS = "..."


@dataclass(frozen=True)
class Timings:
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0


@dataclass(frozen=True)
class Route:
    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    timings: Timings = field(default_factory=Timings)
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    #: Position in the tree ("0", "0.1", ...): names the route in group keys and in the log.
    path: str = "0"


@dataclass(frozen=True)
class Destination:
    """Where one alert goes: a receiver, through a route, in the group of these label values."""

    receiver: str
    route: str
    group_labels: tuple[tuple[str, str], ...]
    timings: Timings

    @property
    def group_key(self) -> str:
        return digest("group", self.route, self.receiver, dict(self.group_labels))


def destinations(route: Route, labels: Mapping[str, str]) -> list[Destination]:
    """Every (receiver, group) an alert with these labels is sent to; the root route matches everything."""
    found = _walk(route, labels)
    return found if found is not None else []


def _walk(route: Route, labels: Mapping[str, str]) -> list[Destination] | None:
    if not matches_all(route.matchers, labels):
        return None
    found: list[Destination] = []
    for child in route.routes:
        below = _walk(child, labels)
        if below is None:
            continue
        found.extend(below)
        if not child.continue_:
            break
    if not found:
        found.append(
            Destination(route.receiver, route.path, _group_labels(route.group_by, labels), route.timings)
        )
    return found


def _group_labels(group_by: tuple[str, ...], labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if ALL_LABELS in group_by:
        return tuple(sorted(labels.items()))
    return tuple((name, labels.get(name, "")) for name in sorted(group_by))
