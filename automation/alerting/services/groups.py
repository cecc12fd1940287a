"""Notification groups: alerts join the group of each (route, receiver, group labels) they route to; a
flush sends one notification per group when it is due (`automation.alerting.grouping.due`: group_wait,
group_interval, repeat_interval, as Alertmanager does).

A flush takes the group's next sequence number with a guarded update (`WHERE sequence = n`), so two
flushers send it once; the delivery is a run of the receiver's workflow whose idempotency key is the group
and that number, so a redelivered flush sends no second message.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import LOG_RECEIVER
from automation.alerting.grouping import GroupState, Member
from automation.alerting.grouping import due as group_due
from automation.alerting.notifications import notification_content, receiver_workflow_name
from automation.alerting.routing import Destination, Timings
from automation.alerting.services.alerts import at, log
from automation.alerting.services.config import current_document
from automation.errors import AutomationError
from automation.models import Alert, AlertGroup, AlertLog


def join(alert: Alert, destination: Destination, now: float) -> AlertGroup:
    group, _ = AlertGroup.objects.get_or_create(
        key=destination.group_key,
        defaults={
            "receiver": destination.receiver,
            "route": destination.route,
            "group_labels": dict(destination.group_labels),
        },
    )
    group.alerts.add(alert)
    AlertGroup.objects.filter(pk=group.pk, waiting_since__isnull=True).update(waiting_since=at(now))
    timings = destination.timings
    detail = (
        f"group {group.key} (route {destination.route}, receiver {destination.receiver}, "
        f"group_wait {timings.group_wait:.0f}s, group_interval {timings.group_interval:.0f}s)"
    )
    log(alert, Decision.HELD, now, receiver=destination.receiver, detail=detail)
    return group


def _timings(group: AlertGroup) -> Timings:
    route = current_document().route.build()
    stack = [route]
    while stack:
        node = stack.pop()
        if node.path == group.route:
            return node.timings
        stack.extend(node.routes)
    return route.timings


def due(group: AlertGroup, members: list[Alert], now: float, timings: Timings) -> tuple[bool, str]:
    """`grouping.due` for a stored group and its audible members (firing, or resolved and not notified)."""
    state = GroupState(
        waiting_since=group.waiting_since.timestamp() if group.waiting_since else None,
        last_notified_at=group.last_notified_at.timestamp() if group.last_notified_at else None,
        last_digest=group.last_digest or "",
    )
    audible = [
        Member(a.fingerprint, a.state == AlertState.FIRING, a.fired_at.timestamp() if a.fired_at else None)
        for a in members
        if a.state in (AlertState.FIRING, AlertState.RESOLVED)
    ]
    return group_due(state, audible, now, timings)


def flush(group: AlertGroup, now: float) -> Any:
    """Send the group's notification if due; returns the delivery run (or True for the log receiver)."""
    document = current_document()
    receiver = document.receiver(group.receiver)
    members = list(group.alerts.all())
    if receiver is not None and not receiver.send_resolved:
        members = [a for a in members if a.state == AlertState.FIRING]
    from automation.alerting.services.pipeline import muted_by

    audible = []
    for alert in members:
        muted = muted_by(alert, now) if alert.state == AlertState.FIRING else None
        if muted is None and (not alert.flapping or not _spell_notified(alert)):
            audible.append(alert)
        elif muted is not None:
            started = alert.fired_at.timestamp() if alert.fired_at else 0.0
            log(
                alert,
                muted[0],
                now,
                receiver=group.receiver,
                detail=muted[1],
                once_key=f"{muted[0]}:{group.key}:{alert.fingerprint}:{started:.3f}",
            )
    is_due, content = due(group, audible, now, _timings(group))
    if not is_due:
        return None
    sequence = group.sequence + 1
    with transaction.atomic():
        taken = AlertGroup.objects.filter(pk=group.pk, sequence=group.sequence).update(
            sequence=F("sequence") + 1, last_notified_at=at(now), last_digest=content, waiting_since=None
        )
        if not taken:
            return None  # another flusher sent it
        run = _deliver(group, audible, sequence, now)
        for alert in audible:
            log(
                alert,
                Decision.NOTIFIED,
                now,
                receiver=group.receiver,
                run_id=getattr(run, "id", None),
                detail=f"group {group.key} notification {sequence} ({alert.state})",
                once_key=f"notify:{group.key}:{sequence}:{alert.fingerprint}",
            )
            if alert.flapping:
                log(
                    alert,
                    Decision.FLAPPING,
                    now,
                    receiver=group.receiver,
                    detail="flapping: notified once for this spell, held until it settles",
                    once_key=_spell_key(alert),
                )
        done = [a.pk for a in group.alerts.all() if a.state != AlertState.FIRING]
        if done:
            group.alerts.remove(*done)
            reset_empty_groups([group.pk])
    return run


def _spell_key(alert: Alert) -> str:
    spell = alert.flapping_since.timestamp() if alert.flapping_since else 0.0
    return f"flapping-notified:{alert.fingerprint}:{spell:.3f}"


def _spell_notified(alert: Alert) -> bool:
    """Whether a notification already carried this flapping spell (each is notified once)."""
    return AlertLog.objects.filter(once_key=_spell_key(alert)).exists()


def _deliver(group: AlertGroup, alerts: list[Alert], sequence: int, now: float) -> Any:
    if group.receiver == LOG_RECEIVER:
        return True
    from automation.runs.dispatch import enqueue_run

    content = notification_content(group, alerts, sequence)
    try:
        run, _ = enqueue_run(
            receiver_workflow_name(group.receiver),
            {"notification": content},
            idempotency_key=f"notify:{group.key}:{sequence}",
        )
    except AutomationError as exc:
        for alert in alerts:
            log(alert, Decision.DELIVERY_FAILED, now, receiver=group.receiver, detail=str(exc))
        return None
    return run


def reset_empty_groups(keys: list[int] | None = None) -> int:
    """A group left without alerts starts over (as Alertmanager drops it): the next alert waits
    `group_wait` again. Its sequence is kept, so notification keys stay unique."""
    empty = AlertGroup.objects.filter(alerts__isnull=True)
    if keys is not None:
        empty = empty.filter(pk__in=keys)
    return AlertGroup.objects.filter(pk__in=list(empty.values_list("pk", flat=True))).update(
        last_notified_at=None, last_digest="", waiting_since=None
    )


def flush_all(now: float) -> int:
    """Flush every group with members; returns how many notifications were sent."""
    sent = 0
    for group in AlertGroup.objects.filter(alerts__isnull=False).distinct():
        if flush(group, now) is not None:
            sent += 1
    return sent
