"""Alerts other tools raise: Alertmanager's webhook (version 4) and the generic events endpoint. They enter
the same lifecycle and pipeline as the rules' alerts, keyed by their fingerprint; the firing's start is
the sender's `startsAt`, so duplicate webhooks and an HA pair of Alertmanagers converge on one firing
(and one run)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.payloads import ReceivedAlert, alert_name
from automation.alerting.services.alerts import (
    Observation,
    StartWith,
    expire,
    firing_key,
    log,
    observe,
    observe_if_new,
)
from automation.alerting.services.evaluation import compile_rule
from automation.alerting.services.muting import Muting
from automation.alerting.services.pipeline import on_fired, on_resolved, planned_start, record_sent_run
from automation.choices import AlertSeverity
from automation.errors import AutomationError
from automation.models import Alert, AlertRule, WorkflowRun

__all__ = ["ReceivedAlert", "Receipt", "receive"]

logger = logging.getLogger("automation.alerting")


@dataclass(frozen=True)
class Receipt:
    fingerprint: str
    state: str
    outcome: str  # fired, resolved, deduplicated, updated


def _severity(labels: Mapping[str, str]) -> str:
    value = labels.get("severity", "")
    known = {s.value for s in AlertSeverity}
    aliases = {"warning": "medium", "error": "high", "page": "high", "info": "info", "none": "info"}
    return value if value in known else aliases.get(value, AlertSeverity.MEDIUM.value)


#: A received firing whose start is this much later than the one held is a new firing.
NEW_FIRING_AFTER = 1.0


def receive(received: ReceivedAlert, now: float) -> Receipt:
    name = alert_name(received.labels)
    if not received.firing:
        rule = AlertRule.objects.filter(name=name).first()
        transition = expire(received.fingerprint, now, flap=_flap_policy(_definition(rule)))
        if transition is not None and transition.after == AlertState.RESOLVED:
            on_resolved(transition.alert, now)
            return Receipt(received.fingerprint, transition.after, "resolved")
        state = Alert.objects.filter(fingerprint=received.fingerprint).values_list("state", flat=True).first()
        return Receipt(received.fingerprint, state or AlertState.INACTIVE, "deduplicated")
    start = received.starts_at.timestamp()
    observation = Observation(
        fingerprint=received.fingerprint,
        name=name,
        labels=received.labels,
        value=received.value,
        holds=True,
        active_since=min(start, now),
        origin=received.origin,
        severity=_severity(received.labels),
        annotations=received.annotations,
    )
    # A first firing (most of what a storm brings) is written in one statement that also reads the rule;
    # when this process knows the rule, the run it starts is stored and sent just before.
    planner = _Planner.of(name, now, received.fingerprint)
    sight = observe_if_new(observation, now, rule_name=name, plan=planner)
    definition = _definition(sight.rule)
    if sight.rule is None:
        _known.pop(name, None)
    if sight.found is not None or sight.transition is not None:
        _present.remember(received.fingerprint)
    if sight.run is not None and sight.transition is None:
        # This process stored and sent the firing's run, and a copy inserted the alert first: that copy
        # may have decided before this run was committed (and started none, muted or at level manual).
        planned = planner.start if planner is not None else None  # what stored the run
        gated = planned is not None and planned.decision == Decision.APPROVAL_REQUIRED
        _record_sent(received.fingerprint, sight.run, now, gated=gated)
    if sight.transition is not None:
        muting = planner.muting if planner is not None else None
        raced = sight.run is None  # a copy elsewhere may have stored and sent this firing's run first
        on_fired(sight.transition.alert, now, definition, started=sight.run, raced=raced, muting=muting)
        return Receipt(received.fingerprint, sight.transition.after, "fired")
    flap = _flap_policy(definition)
    current = sight.found
    if current is not None and current[0] == AlertState.FIRING and current[1] is not None:
        if current[1].timestamp() + NEW_FIRING_AFTER < start <= now:
            # A firing that started after the one we hold: the sender's resolution of ours was lost
            # (or it does not send resolutions). Ours ends; this one is a firing of its own.
            ended = expire(received.fingerprint, now, flap=flap)
            if ended is not None and ended.after == AlertState.RESOLVED:
                on_resolved(ended.alert, now)
    transition = observe(observation, now, rule=sight.rule, flap=flap)
    if transition is None:
        alert = Alert.objects.get(fingerprint=received.fingerprint)
        started = alert.fired_at.timestamp() if alert.fired_at else 0.0
        log(
            alert,
            Decision.DEDUPLICATED,
            now,
            detail=f"again from {received.origin}",
            once_key=f"dedup:{alert.fingerprint}:{started:.3f}",
        )
        return Receipt(received.fingerprint, alert.state, "deduplicated")
    on_fired(transition.alert, now, definition)
    return Receipt(received.fingerprint, transition.after, "fired")


#: The version (id, updated_at) and definition of each rule this process last read, by name: the run of
#: a new alert's firing is planned from it and stored only if it is still the rule's version.
_known: dict[str, tuple[tuple[Any, datetime], RuleDefinition]] = {}
MAX_KNOWN = 10_000


def _record_sent(fingerprint: str, run: WorkflowRun, now: float, *, gated: bool) -> None:
    """Record `run` on the alert of `fingerprint` when it is that alert's firing's run, not recorded yet."""
    alert = Alert.objects.filter(fingerprint=fingerprint).first()
    if alert is None or alert.last_run_id == run.id or firing_key(alert) != run.idempotency_key:
        return
    record_sent_run(alert, now, run, gated=gated)


class _Fingerprints:
    """The fingerprints this process saw stored lately (bounded): a copy of an alert that exists is not
    planned for, since only a new alert's run is stored before it (Alertmanager sends every firing alert
    again each group_interval). Forgetting one costs a plan that stores nothing, never a wrong run."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: dict[str, None] = {}

    def __contains__(self, fingerprint: str) -> bool:
        return fingerprint in self._seen

    def remember(self, fingerprint: str) -> None:
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[fingerprint] = None


_present = _Fingerprints(MAX_KNOWN * 10)


class _Planner:
    """Plans the run of a new alert's firing under the rule version this process knows, and keeps the
    silences and inhibitions it read for the rest of the pipeline."""

    def __init__(self, now: float, definition: RuleDefinition, version: tuple[Any, datetime]) -> None:
        self.now, self.definition, self.version = now, definition, version
        self.muting: Muting | None = None
        self.start: StartWith | None = None

    @classmethod
    def of(cls, name: str, now: float, fingerprint: str) -> _Planner | None:
        known = _known.get(name)
        if known is None or fingerprint in _present:
            return None
        version, definition = known
        return cls(now, definition, version)

    def __call__(self, alert: Alert) -> StartWith | None:
        self.muting = Muting.now(self.now, alert=alert)
        self.start = planned_start(alert, self.now, self.definition, self.version, self.muting)
        return self.start


def _definition(rule: AlertRule | None) -> RuleDefinition | None:
    """The rule's definition (validated once per version and process); None for no rule, or for a stored
    document that no longer validates (the alert is then handled as one no rule handles, and said so,
    rather than refused after it was stored)."""
    if rule is None:
        return None
    try:
        definition = compile_rule(rule).definition
    except (ValueError, AutomationError) as exc:  # pydantic's ValidationError is a ValueError
        logger.error("rule %s: stored document invalid, alerts handled as without a rule: %s", rule.name, exc)
        _known.pop(rule.name, None)
        return None
    if rule.updated_at is not None:
        if len(_known) >= MAX_KNOWN:
            _known.clear()
        _known[rule.name] = ((rule.pk, rule.updated_at), definition)
    return definition


def _flap_policy(definition: RuleDefinition | None) -> FlapPolicy:
    return FlapPolicy(definition.flap.changes, definition.flap.window) if definition else FlapPolicy()
