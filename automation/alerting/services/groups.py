"""Notification groups: alerts join the group of each (route, receiver, group labels) they route to; a
flush sends one notification per group when it is due (`automation.alerting.grouping.due`: group_wait,
group_interval, repeat_interval, as Alertmanager does).

What a notification carries: the group's firing alerts that are not muted (inhibited, silenced; a flapping
alert once per flapping spell), and its resolved alerts not notified yet (unless the receiver says
`send_resolved: false`). A notification that would carry nothing is not sent. An alert that resolved
before its group's first notification leaves the group unannounced, as in Alertmanager.

A flush locks the group row and takes its next sequence number, so two flushers send it once; the
delivery is a run of the receiver's workflow whose idempotency key is the group and that number, so a
redelivered flush sends no second message. The sequence is taken only if the delivery run was stored.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import cache
from typing import Any

from django.db import connection, transaction

from automation.alerting.choices import AlertState, Decision
from automation.alerting.definitions import LOG_RECEIVER, RuleDefinition
from automation.alerting.flapping import FlapPolicy
from automation.alerting.grouping import GroupState, Member
from automation.alerting.grouping import due as group_due
from automation.alerting.notifications import notification_content, receiver_workflow_name
from automation.alerting.routing import Destination, Timings
from automation.alerting.services.alerts import at, log, log_insert_sql, log_params, settle_flapping
from automation.alerting.services.config import current_document
from automation.alerting.services.muting import Muting
from automation.errors import AutomationError
from automation.models import Alert, AlertGroup, AlertLog
from automation.sql import run_statements

logger = logging.getLogger("automation.alerting")


def join(alert: Alert, destination: Destination, now: float) -> None:
    """The alert joins the destination's group (made if new; its first notification waits `group_wait`
    from now if nothing was waiting), and the log says so, once per transition. On PostgreSQL in one
    statement, where the ORM takes four round trips."""
    timings = destination.timings
    detail = (
        f"group {destination.group_key} (route {destination.route}, receiver {destination.receiver}, "
        f"group_wait {timings.group_wait:.0f}s, group_interval {timings.group_interval:.0f}s)"
    )
    moment = alert.fired_at if alert.state == AlertState.FIRING else alert.resolved_at
    stamp = moment.timestamp() if moment else now
    once_key = f"held:{destination.group_key}:{alert.fingerprint}:{alert.state}:{stamp:.3f}"
    if connection.vendor == "postgresql":
        entry = AlertLog(
            alert=alert,
            at=at(now),
            decision=Decision.HELD,
            receiver=destination.receiver,
            detail=detail,
            once_key=once_key,
        )
        params = {
            "key": destination.group_key,
            "receiver": destination.receiver,
            "route": destination.route,
            "labels": json.dumps(dict(destination.group_labels)),
            "now": at(now),
            "alert": alert.pk,
            **log_params(entry),
        }
        run_statements([_join_sql()], params)
        return
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
    log(alert, Decision.HELD, now, receiver=destination.receiver, detail=detail, once_key=once_key)


@cache
def _join_sql() -> str:
    """`join` on PostgreSQL: the group upserted (the update keeps a `waiting_since` already set, and
    returns the id of a group another caller is creating once it is committed), the membership and the
    log line inserted unless there."""
    # The one piece formatted in is a statement built from the model's own column names.
    return (
        "WITH g AS (INSERT INTO automation_alertgroup "  # noqa: S608
        "(key, receiver, route, group_labels, waiting_since, last_digest, sequence) "
        "VALUES (%(key)s, %(receiver)s, %(route)s, CAST(%(labels)s AS jsonb), %(now)s, '', 0) "
        "ON CONFLICT (key) DO UPDATE "
        "SET waiting_since = COALESCE(automation_alertgroup.waiting_since, EXCLUDED.waiting_since) "
        "RETURNING id), "
        "member AS (INSERT INTO automation_alertgroup_alerts (alertgroup_id, alert_id) "
        "SELECT g.id, %(alert)s FROM g ON CONFLICT DO NOTHING), "
        "a AS (SELECT CAST(%(alert)s AS bigint) AS id), "
        f"logged AS ({log_insert_sql('a')}) "
        "SELECT id FROM g"
    )


def _timings(group: AlertGroup, routes: dict[str, Timings]) -> Timings:
    return routes.get(group.route) or routes["0"]


def _route_timings() -> dict[str, Timings]:
    found: dict[str, Timings] = {}
    stack = [current_document().route.build()]
    while stack:
        node = stack.pop()
        found[node.path] = node.timings
        stack.extend(node.routes)
    return found


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


def _flap_policy(alert: Alert) -> FlapPolicy:
    if alert.rule is None:
        return FlapPolicy()
    flap = RuleDefinition.model_validate(alert.rule.document).flap
    return FlapPolicy(flap.changes, flap.window)


def flush(
    group: AlertGroup, now: float, *, muting: Muting | None = None, routes: dict[str, Timings] | None = None
) -> Any:
    """Send the group's notification if due; returns the delivery run (True for the log receiver)."""
    muting = muting or Muting.now(now)
    routes = routes or _route_timings()
    receiver = current_document().receiver(group.receiver)
    send_resolved = receiver is None or receiver.send_resolved
    with transaction.atomic():
        locked = AlertGroup.objects.select_for_update().filter(pk=group.pk).first()
        if locked is None:
            return None
        group = locked
        members = list(group.alerts.select_related("rule"))
        leaving: list[Alert] = []  # resolved members to drop from the group after this flush
        audible: list[Alert] = []
        for alert in members:
            if alert.state == AlertState.FIRING:
                if alert.flapping:
                    settle_flapping(alert, now, _flap_policy(alert))
                muted = muting.of(alert)
                if muted is not None:
                    started = alert.fired_at.timestamp() if alert.fired_at else 0.0
                    log(
                        alert,
                        muted[0],
                        now,
                        receiver=group.receiver,
                        detail=muted[1],
                        once_key=f"{muted[0]}:{group.key}:{alert.fingerprint}:{started:.3f}",
                    )
                elif not alert.flapping or not _spell_notified(alert):
                    audible.append(alert)
            elif alert.state == AlertState.RESOLVED and send_resolved and group.last_notified_at is not None:
                audible.append(alert)
                leaving.append(alert)
            else:
                leaving.append(alert)  # resolved unannounced (or not to be announced), or gone inactive
        is_due, content = due(group, audible, now, _timings(group, routes))
        if not audible or not is_due:
            _leave(group, [a for a in leaving if a not in audible])
            return None
        sequence = group.sequence + 1
        run = _deliver(group, audible, sequence, now)
        if run is None:
            return None  # refused: logged on each alert; the sequence is not taken, a later flush retries
        group.sequence = sequence
        group.last_notified_at = at(now)
        group.last_digest = content
        group.waiting_since = None
        group.save(update_fields=["sequence", "last_notified_at", "last_digest", "waiting_since"])
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
        _leave(group, leaving)
    return run


def _leave(group: AlertGroup, alerts: list[Alert]) -> None:
    if alerts:
        group.alerts.remove(*alerts)
        reset_empty_groups([group.pk])


def _spell_key(alert: Alert) -> str:
    spell = alert.flapping_since.timestamp() if alert.flapping_since else 0.0
    return f"flapping-notified:{alert.fingerprint}:{spell:.3f}"


def _spell_notified(alert: Alert) -> bool:
    """Whether a notification already carried this flapping spell (each is notified once)."""
    return AlertLog.objects.filter(once_key=_spell_key(alert)).exists()


def _deliver(group: AlertGroup, alerts: list[Alert], sequence: int, now: float) -> Any:
    if group.receiver == LOG_RECEIVER:
        return True
    if current_document().receiver(group.receiver) is None:
        for alert in alerts:
            log(
                alert,
                Decision.NO_ROUTE,
                now,
                receiver=group.receiver,
                detail=f"receiver {group.receiver} is no longer in the alerting document",
                once_key=f"gone:{group.key}:{sequence}:{alert.fingerprint}",
            )
        return None
    from automation.runs.dispatch import enqueue_run

    content = notification_content(group, alerts, sequence)
    try:
        with transaction.atomic():
            run, _ = enqueue_run(
                receiver_workflow_name(group.receiver),
                {"notification": content},
                idempotency_key=f"notify:{group.key}:{sequence}",
            )
    except AutomationError as exc:
        for alert in alerts:
            log(
                alert,
                Decision.DELIVERY_FAILED,
                now,
                receiver=group.receiver,
                detail=str(exc),
                once_key=f"refused:{group.key}:{sequence}:{alert.fingerprint}",
            )
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


def record_delivery_results(now: float, *, within: float = 3600.0) -> int:
    """Append each finished delivery's result to the log of the alerts it carried (`delivered`, or
    `delivery_failed` with the step's error): "notified" says a notification was sent to the receiver's
    workflow, this says whether the receiver took it."""
    from automation.choices import RunStatus
    from automation.models import WorkflowRun

    notified = list(
        AlertLog.objects.filter(
            decision=Decision.NOTIFIED, run_id__isnull=False, at__gte=at(now) - timedelta(seconds=within)
        ).values_list("alert_id", "run_id", "receiver")
    )
    if not notified:
        return 0
    keys = {f"delivery:{run_id}:{alert_id}" for alert_id, run_id, _ in notified}
    known = set(AlertLog.objects.filter(once_key__in=keys).values_list("once_key", flat=True))
    todo = [(a, r, rcv) for a, r, rcv in notified if f"delivery:{r}:{a}" not in known]
    runs = {
        run.id: run
        for run in WorkflowRun.objects.filter(id__in={r for _, r, _ in todo}, status__in=RunStatus.TERMINAL)
    }
    written = 0
    for alert_id, run_id, receiver in todo:
        run = runs.get(run_id) if run_id is not None else None
        if run is None:
            continue
        ok = run.status == RunStatus.SUCCEEDED
        alert = Alert(pk=alert_id)
        written += log(
            alert,
            Decision.DELIVERED if ok else Decision.DELIVERY_FAILED,
            now,
            receiver=receiver,
            run_id=run_id,
            detail="the receiver took it" if ok else f"{run.status}: {run.error}"[:2000],
            once_key=f"delivery:{run_id}:{alert_id}",
        )
    return written


def flush_all(now: float) -> int:
    """Flush every group with members; returns how many notifications were sent. One group that fails is
    logged and skipped: the others are still flushed."""
    muting = Muting.now(now)
    routes = _route_timings()
    sent = 0
    for group in AlertGroup.objects.filter(alerts__isnull=False).distinct():
        try:
            if flush(group, now, muting=muting, routes=routes) is not None:
                sent += 1
        except Exception:  # noqa: BLE001 - one group must not stop the others
            logger.exception("alerting: flushing group %s failed", group.key)
    return sent


def forget(names: list[str]) -> int:
    """Delete the alerts of these names, their log and group memberships (a demo starting over, an
    operator retiring a rule's history); returns how many alerts."""
    found = list(Alert.objects.filter(name__in=names).values_list("pk", flat=True))
    Alert.objects.filter(pk__in=found).delete()
    reset_empty_groups()
    return len(found)
