"""Whether an alert is muted now, by an inhibiting alert or a silence: asked when an alert fires (a muted
alert starts no remediation) and at every flush (a muted alert is left out of its group's notification,
and notified once the silence ends or the inhibiting alert resolves).

`Muting.now()` reads the firing alerts and the active silences once; a flush asks it for every member.
`Muting.now(at, alert=...)`, asked about one alert as it fires, reads only the firing alerts that could
inhibit it (none when no rule's target matchers match it): a storm's every alert does not read every
alert firing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet

from automation.alerting.choices import AlertState, Decision
from automation.alerting.inhibition import FiringAlert, InhibitRule, inhibited_by
from automation.alerting.matchers import matches_all
from automation.alerting.services.config import current_document
from automation.alerting.services.silences import active_silences
from automation.alerting.silencing import ActiveSilence, silenced_by
from automation.models import Alert


@dataclass(frozen=True)
class Muting:
    at: float
    rules: tuple[InhibitRule, ...]
    firing: tuple[FiringAlert, ...]
    silences: tuple[ActiveSilence, ...]
    #: The one alert (fingerprint, labels) this was read for, with the firing alerts that could inhibit it
    #: only; None: read for every alert.
    only: tuple[str, dict[str, str]] | None = None

    @staticmethod
    def now(at: float, *, alert: Alert | None = None) -> Muting:
        """The inhibitions and silences as they stand: for every alert, or for `alert` alone."""
        document = current_document()
        rules = tuple(
            InhibitRule(r.source_matchers, r.target_matchers, r.equal) for r in document.inhibit_rules
        )
        firing: tuple[FiringAlert, ...] = ()
        if rules:
            every = Alert.objects.filter(state=AlertState.FIRING, flapping=False)
            rows = every if alert is None else _possible_sources(every, dict(alert.labels), rules)
            if rows is not None:
                found = rows.values_list("fingerprint", "labels")
                firing = tuple(FiringAlert(fingerprint, labels) for fingerprint, labels in found)
        only = (alert.fingerprint, dict(alert.labels)) if alert is not None else None
        return Muting(at, rules, firing, tuple(active_silences(at)), only)

    def of(self, alert: Alert) -> tuple[str, str] | None:
        """(decision, detail) when `alert` is muted (inhibited, silenced); None otherwise. ValueError for
        an alert other than the one this was read for (`now(at, alert=...)`), labels included."""
        labels = dict(alert.labels)
        if self.only is not None and (alert.fingerprint, labels) != self.only:
            raise ValueError(f"muting read for alert {self.only[0]} asked about alert {alert.fingerprint}")
        if self.rules:
            source = inhibited_by(alert.fingerprint, labels, self.firing, self.rules)
            if source is not None:
                return Decision.INHIBITED, f"inhibited by alert {source}"
        silence = silenced_by(labels, self.silences, self.at)
        if silence is not None:
            return Decision.SILENCED, f"silenced by {silence}"
        return None


def _possible_sources(
    rows: QuerySet[Alert], labels: Mapping[str, str], rules: tuple[InhibitRule, ...]
) -> QuerySet[Alert] | None:
    """`rows` narrowed to the alerts that could inhibit an alert of `labels` (a superset: `inhibited_by`
    judges them); None when no rule's target matchers match it. On PostgreSQL, per rule whose targets
    match, the alerts whose labels contain the source's equality matchers and this alert's values of the
    `equal` labels it has (JSON containment); elsewhere, every firing alert."""
    applicable = [rule for rule in rules if matches_all(rule.target, labels)]
    if not applicable:
        return None
    if connection.vendor != "postgresql":
        return rows
    wanted = Q()
    for rule in applicable:
        required = {name: labels[name] for name in rule.equal if labels.get(name)}
        for matcher in rule.source:
            if matcher.op == "=" and matcher.value:
                if required.get(matcher.name, matcher.value) != matcher.value:
                    break  # this rule's sources can never carry the alert's value: it inhibits nothing
                required[matcher.name] = matcher.value
        else:
            if not required:
                return rows  # a rule that may pick any firing alert as its source
            wanted |= Q(labels__contains=required)
    return rows.filter(wanted) if wanted else None
