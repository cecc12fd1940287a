"""Alert transitions and the notification log.

inactive → pending → firing → resolved, per fingerprint. Each transition runs under the alert's row lock
(SELECT ... FOR UPDATE) and is taken only from the states it leaves, so a second evaluator, a second
Beat, a duplicated webhook or a redelivered message finds it already taken and changes nothing. What
follows a transition (suppression, the remediation run, grouping) is done by the one caller that took it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from automation.alerting.choices import AlertOrigin, AlertState, Decision
from automation.alerting.flapping import FlapPolicy
from automation.alerting.lifecycle import observed_state, record_change, resolves
from automation.models import Alert, AlertLog, AlertRule


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True)
class Observation:
    """What one evaluation (or one received alert) says about a fingerprint."""

    fingerprint: str
    name: str
    labels: Mapping[str, str]
    value: float | None
    #: The condition holds now, its duration (or `for`) met.
    holds: bool
    #: Since when the condition has held (None: it does not hold now).
    active_since: float | None
    origin: str = AlertOrigin.RULE
    severity: str = "medium"
    annotations: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Transition:
    alert: Alert
    before: str
    after: str


def log(
    alert: Alert,
    decision: str,
    now: float,
    *,
    receiver: str = "",
    run_id: Any = None,
    detail: str = "",
    once_key: str | None = None,
) -> bool:
    """Append to the notification log; with `once_key`, only the first call writes (False after that)."""
    entry = AlertLog(
        alert=alert,
        at=at(now),
        decision=decision,
        receiver=receiver,
        run_id=run_id,
        detail=detail,
        once_key=once_key,
    )
    if once_key is None:
        entry.save()
        return True
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        return False
    return True


def _locked(observation: Observation, rule: AlertRule | None) -> Alert:
    alert = Alert.objects.select_for_update().filter(fingerprint=observation.fingerprint).first()
    if alert is not None:
        return alert
    try:
        with transaction.atomic():
            Alert.objects.create(
                fingerprint=observation.fingerprint,
                rule=rule,
                name=observation.name,
                origin=observation.origin,
                severity=observation.severity,
                labels=dict(observation.labels),
                annotations=dict(observation.annotations or {}),
            )
    except IntegrityError:
        pass  # created meanwhile by another evaluator: lock that one
    return Alert.objects.select_for_update().get(fingerprint=observation.fingerprint)


def observe(
    observation: Observation, now: float, *, rule: AlertRule | None = None, flap: FlapPolicy | None = None
) -> Transition | None:
    """Apply one observation: the transition it causes, if this caller is the one that took it."""
    flap = flap or FlapPolicy()
    with transaction.atomic():
        alert = _locked(observation, rule)
        before = alert.state
        if rule is not None and alert.rule_id is None:
            alert.rule = rule  # its rule was deleted and made again: the alert is the new rule's
            alert.save(update_fields=["rule"])
        after = observed_state(before, holds=observation.holds, active_since=observation.active_since)
        fields = ["value", "labels", "annotations", "severity", "updated_at"]
        alert.value = observation.value
        alert.labels = dict(observation.labels)
        if observation.annotations is not None:
            alert.annotations = dict(observation.annotations)
        alert.severity = observation.severity
        if observation.holds or observation.active_since is not None:
            alert.last_seen_at = at(now)
            fields.append("last_seen_at")
        if after == before:
            alert.save(update_fields=fields)
            return None
        alert.state = after
        alert.active_since = at(observation.active_since) if observation.active_since is not None else None
        alert.changed_at = at(now)
        fields += ["state", "active_since", "changes", "flapping", "changed_at"]
        if after == AlertState.FIRING:
            alert.fired_at = alert.active_since or at(now)
            alert.resolved_at = None
            fields += ["fired_at", "resolved_at"]
        _changed(alert, now, flap)
        alert.save(update_fields=[*fields, "flapping_since"])
        if after == AlertState.PENDING:
            log(
                alert,
                Decision.PENDING,
                now,
                detail=f"value {observation.value}",
                once_key=f"pending:{alert.fingerprint}:{observation.active_since or now:.3f}",
            )
        else:
            log(
                alert, Decision.FIRED, now, detail=f"value {observation.value}", once_key=_key("fired", alert)
            )
        return Transition(alert, before, after)


def expire(
    fingerprint: str, now: float, *, keep_firing_for: float = 0.0, flap: FlapPolicy | None = None
) -> Transition | None:
    """The condition no longer holds for `fingerprint`: pending → inactive at once; firing → resolved once
    `keep_firing_for` has passed since it last held."""
    flap = flap or FlapPolicy()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(fingerprint=fingerprint).first()
        if alert is None or alert.state not in AlertState.ACTIVE:
            return None
        before = alert.state
        if before == AlertState.FIRING:
            last = alert.last_seen_at.timestamp() if alert.last_seen_at else None
            if not resolves(last, now, keep_firing_for):
                return None
            alert.state = AlertState.RESOLVED
            alert.resolved_at = at(now)
            _changed(alert, now, flap)
        else:
            alert.state = AlertState.INACTIVE
        alert.active_since = None
        alert.changed_at = at(now)
        alert.save(
            update_fields=[
                "state",
                "resolved_at",
                "active_since",
                "changes",
                "flapping",
                "flapping_since",
                "changed_at",
                "updated_at",
            ]
        )
        if alert.state == AlertState.RESOLVED:
            log(alert, Decision.RESOLVED, now, once_key=_key("resolved", alert))
        return Transition(alert, before, alert.state)


def _changed(alert: Alert, now: float, flap: FlapPolicy) -> None:
    """Record a state change; start or end a flapping spell."""
    alert.changes, flapping = record_change(alert.changes, now, flap)
    if flapping and not alert.flapping:
        alert.flapping_since = at(now)
    alert.flapping = flapping


def settle_flapping(alert: Alert, now: float, flap: FlapPolicy) -> bool:
    """A flapping alert whose changes have left the window is flapping no more (checked while it is
    steady, when no transition recomputes it); returns whether it changed."""
    if not alert.flapping or flap.is_flapping(alert.changes, now):
        return False
    updated = Alert.objects.filter(pk=alert.pk, flapping=True).update(flapping=False)
    alert.flapping = False
    if updated:
        log(alert, Decision.HELD, now, detail="no longer flapping: notified as it is now")
    return bool(updated)


def _key(kind: str, alert: Alert) -> str:
    started = alert.fired_at.timestamp() if alert.fired_at else 0.0
    return f"{kind}:{alert.fingerprint}:{started:.3f}"


def firing_key(alert: Alert) -> str:
    """Names one firing of one alert: the idempotency key of the run it starts, and of its log lines."""
    return _key("firing", alert)


def record_run(alert: Alert, run_id: Any, now: float) -> None:
    Alert.objects.filter(pk=alert.pk).update(last_run_id=run_id, last_run_at=at(now))
    alert.last_run_id = run_id
    alert.last_run_at = at(now)
