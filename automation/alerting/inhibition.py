"""Inhibition, as Alertmanager's: a firing alert matching a rule's source matchers mutes the alerts matching
its target matchers that carry the same values of the `equal` labels. An alert never inhibits itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from automation.alerting.matchers import matches_all
from automation.alerting.series import Matcher


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class FiringAlert:
    fingerprint: str
    labels: Mapping[str, str]


def inhibited_by(
    fingerprint: str, labels: Mapping[str, str], firing: Iterable[FiringAlert], rules: Iterable[InhibitRule]
) -> str | None:
    """The fingerprint of a firing alert that inhibits this one (None: not inhibited)."""
    rules = [r for r in rules if matches_all(r.target, labels)]
    if not rules:
        return None
    for source in firing:
        if source.fingerprint == fingerprint:
            continue
        for rule in rules:
            if matches_all(rule.source, source.labels) and all(
                source.labels.get(name, "") == labels.get(name, "") for name in rule.equal
            ):
                return source.fingerprint
    return None
