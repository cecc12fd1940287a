"""Guarded remediation: requests and decisions (with services/verification.py, what happens once a run
started, the only writers of `Remediation` rows).

1. `request` (the alerting pipeline, once a firing is committed and joined its incident): one row per
   policy matching the alert, at most once per firing (a unique key), then the start task is sent.
2. `start` (the task `automation.incidents.remediate`, on a worker): under one fleet-wide lock, it reads
   the alert's durable state (a resolved alert is never acted on), asks the guards (circuit breaker, loop,
   rate limits, blast radius: `automation.incidents.guards`, from these rows), then the automation level
   (manual: notify only; gated: wait for an approval, then decide again); else it starts the run, in
   the same transaction as the row's `running`. The lock and the rows are PostgreSQL's: a guard that
   lost its state on a restart would let runs through, so none of it lives in Redis.
3. `follow` (services/verification.py, Beat's `automation.incidents.follow_remediations`): a run that
   failed is rolled back (its compensation: automation/runs/compensation.py) and escalated; one that
   succeeded is verified (the alert resolves, or a health check answers) until the policy's time is up,
   then rolled back and escalated if it did not. It also sends again the starts whose message was lost.

Every decision goes on the incident's timeline and in the alert's notification log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from automation.access.services import audit
from automation.actions.task import BROKER_ERRORS
from automation.alerting.choices import AlertState, Decision
from automation.alerting.remediation import alert_context, is_gated
from automation.alerting.services.alerts import log
from automation.choices import AutomationLevel
from automation.config import current_config
from automation.delivery import MONITORING_QUEUE
from automation.errors import InputError, InvalidFieldsError, NotFoundError, StateError
from automation.incidents.choices import EventKind, Guard, RemediationStatus
from automation.incidents.guards import Active, History, Outcome, Verdict, judge
from automation.incidents.remediation_definitions import RemediationPolicy
from automation.incidents.services.escalations import hasten
from automation.incidents.services.locks import lock
from automation.incidents.services.remediation_config import current_remediation
from automation.incidents.services.timeline import Event, at, record
from automation.models import Alert, Remediation
from automation.runs.dispatch import enqueue_run
from automation.templating import TemplateError, render

logger = logging.getLogger("automation.remediation")

START_TASK = "automation.incidents.remediate"
#: The fleet-wide lock every guard decision is taken under.
GUARD_LOCK = "remediation-guards"


# --- 1. requests --------------------------------------------------------------------------------------


def request(alert: Alert, now: float, incident_id: int | None) -> list[int]:
    """One remediation per policy matching this firing of `alert` (once however often it is asked);
    the start of each is sent once the caller's transaction commits. Returns their ids."""
    fired_at = alert.fired_at
    if fired_at is None or alert.state != AlertState.FIRING:
        return []
    labels = {str(k): str(v) for k, v in alert.labels.items()}
    policies = current_remediation().matching(labels)
    if not policies:
        return []
    made: list[int] = []
    with transaction.atomic():
        for policy in policies:
            made += _request_one(alert, fired_at, now, incident_id, policy, labels)
    if made:
        transaction.on_commit(lambda: send_start(made))
    return made


def _request_one(
    alert: Alert,
    fired_at: datetime,
    now: float,
    incident_id: int | None,
    policy: RemediationPolicy,
    labels: dict[str, str],
) -> list[int]:
    try:
        with transaction.atomic():
            row = Remediation.objects.create(
                policy=policy.name,
                workflow=policy.workflow,
                alert=alert,
                fingerprint=alert.fingerprint,
                fired_at=fired_at,
                incident_id=incident_id,
                service=labels.get(policy.service_label, "")[:200],
                replicas=policy.blast_radius.replicas_touched,
                plan=policy.model_dump(mode="json", by_alias=True),
                requested_at=at(now),
                detail="requested: waiting for its guards",
            )
    except IntegrityError:
        return []  # this firing asked already (the pipeline ran again)
    return [row.pk]


def send_start(ids: list[int]) -> None:
    from automation.celery import app

    for pk in ids:
        try:
            app.send_task(START_TASK, kwargs={"pk": pk}, queue=MONITORING_QUEUE)
        except BROKER_ERRORS as exc:
            logger.warning("remediation %s not sent (%s): the follow job sends it again", pk, exc)


# --- 2. the decision -------------------------------------------------------------------------------


def note(
    row: Remediation,
    now: float,
    kind: str,
    detail: str,
    *,
    decision: str | None = None,
    run_id: Any = None,
) -> None:
    """Put one decision on the incident's timeline and in the alert's notification log."""
    text = f"policy {row.policy} ({row.workflow}): {detail}"
    if row.incident_id is not None:
        record(row.incident_id, now, Event(kind, detail=text, fingerprint=row.fingerprint, run_id=run_id))
    if decision is not None and row.alert_id is not None:
        log(
            Alert(pk=row.alert_id),
            decision,
            now,
            run_id=run_id,
            detail=text,
            once_key=f"remediation:{row.pk}:{kind}:{row.status}",
        )


def set_status(
    row: Remediation, now: float, status: str, detail: str, *, guard: str = "", **fields: Any
) -> None:
    row.status, row.detail, row.guard = status, detail[:5000], guard
    if status in RemediationStatus.TERMINAL:
        row.finished_at = at(now)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()


@dataclass(frozen=True)
class Decided:
    status: str
    guard: str = ""
    detail: str = ""
    run_id: str | None = None


def start(pk: int, now: float) -> Decided | None:
    """Decide remediation `pk` (requested): refused, notify only, awaiting an approval, or started. None
    when it is not waiting for a decision (decided already: a redelivered message)."""
    waiting = Remediation.objects.filter(pk=pk, status=RemediationStatus.REQUESTED).first()
    if waiting is None:
        return None
    # The provider is asked over the network: before the fleet-wide lock, not while holding it.
    replicas = _replicas_of(waiting)
    with transaction.atomic():
        lock({GUARD_LOCK})
        row = (
            Remediation.objects.select_for_update().filter(pk=pk, status=RemediationStatus.REQUESTED).first()
        )
        if row is None:
            return None
        decided = _decide(row, now, replicas)
        if decided.guard in Guard.ESCALATING and row.incident_id is not None:
            # In the decision's transaction: a process dying after the commit cannot leave a refusal
            # whose escalation was never hastened (nothing would look at the refused row again); the
            # nudge sent once it commits may be lost, the escalation tick then pages the level due now.
            hasten(row.incident_id, now, f"policy {row.policy} refused to act ({decided.detail})")
    return decided


def _decide(row: Remediation, now: float, replicas: int | None) -> Decided:
    alert = Alert.objects.filter(pk=row.alert_id).first() if row.alert_id is not None else None
    if alert is None or alert.state != AlertState.FIRING or alert.fired_at != row.fired_at:
        state = "gone" if alert is None else alert.state
        return _refuse(
            row,
            now,
            Verdict(False, Guard.ALERT_RESOLVED, f"the alert no longer fires ({state}): nothing to fix"),
        )
    policy = RemediationPolicy.model_validate(row.plan)
    level = current_config().level
    if level == AutomationLevel.MANUAL and not row.approved_by:
        detail = "level manual: notify only, nothing runs"
        set_status(row, now, RemediationStatus.NOTIFIED, detail, guard=Guard.LEVEL)
        note(row, now, EventKind.REMEDIATION_HELD, detail, decision=Decision.NOT_AUTOMATED)
        return Decided(RemediationStatus.NOTIFIED, Guard.LEVEL, detail)
    verdict = judge(policy, service=row.service, history=_history(policy, row, now, replicas), now=now)
    if not verdict.allowed:
        return _refuse(row, now, verdict)
    if not row.approved_by and is_gated(level, alert.severity):
        detail = f"level {level.value}, severity {alert.severity}: waiting for an approval"
        set_status(row, now, RemediationStatus.AWAITING_APPROVAL, detail, guard=Guard.LEVEL)
        note(row, now, EventKind.REMEDIATION_HELD, detail, decision=Decision.APPROVAL_REQUIRED)
        return Decided(RemediationStatus.AWAITING_APPROVAL, Guard.LEVEL, detail)
    try:
        inputs = _inputs(policy, alert)
        with transaction.atomic():
            run, _ = enqueue_run(policy.workflow, inputs, idempotency_key=f"remediation:{row.pk}")
    except (TemplateError, InputError, NotFoundError, StateError) as exc:
        return _refuse(row, now, Verdict(False, Guard.INPUTS, f"its run could not start: {exc}"))
    approved = f", approved by {row.approved_by}" if row.approved_by else ""
    detail = f"run {run.id} started (level {level.value}{approved})"
    set_status(row, now, RemediationStatus.RUNNING, detail, started_at=at(now), run_id=run.id, inputs=inputs)
    note(row, now, EventKind.REMEDIATION_STARTED, detail, decision=Decision.WORKFLOW_STARTED, run_id=run.id)
    return Decided(RemediationStatus.RUNNING, detail=detail, run_id=str(run.id))


def _refuse(row: Remediation, now: float, verdict: Verdict) -> Decided:
    set_status(row, now, RemediationStatus.REFUSED, verdict.reason, guard=verdict.guard)
    note(row, now, EventKind.REMEDIATION_HELD, f"not run: {verdict.reason}", decision=Decision.GUARD_REFUSED)
    return Decided(RemediationStatus.REFUSED, verdict.guard, verdict.reason)


def _inputs(policy: RemediationPolicy, alert: Alert) -> dict[str, Any]:
    context = {"alert": alert_context(alert)}
    if policy.inputs is None:
        return context
    rendered = render(policy.inputs, context, {})
    if not isinstance(rendered, dict):
        raise TemplateError("inputs must make a mapping")
    return rendered


def _history(policy: RemediationPolicy, row: Remediation, now: float, replicas: int | None) -> History:
    started = Remediation.objects.filter(status__in=RemediationStatus.STARTED).exclude(pk=row.pk)
    rates = policy.rate_limit
    service_starts: list[float] = []
    if rates.per_service is not None:  # "" (no service label) is one bucket of its own
        rows = started.filter(service=row.service, started_at__gt=at(now - rates.per_service.window))
        service_starts = [t.timestamp() for t in rows.values_list("started_at", flat=True) if t]
    workflow_starts: list[float] = []
    if rates.per_workflow is not None:
        rows = started.filter(workflow=policy.workflow, started_at__gt=at(now - rates.per_workflow.window))
        workflow_starts = [t.timestamp() for t in rows.values_list("started_at", flat=True) if t]
    finished = Remediation.objects.filter(policy=policy.name, status__in=RemediationStatus.FINISHED)
    outcomes = outcomes_of(policy, policy.circuit_breaker.failures)
    worked = finished.filter(
        fingerprint=row.fingerprint,
        status=RemediationStatus.SUCCEEDED,
        finished_at__gt=at(now - policy.loop.window),
    ).values_list("finished_at", flat=True)
    active = [
        Active(service, replicas)
        for service, replicas in Remediation.objects.filter(status__in=RemediationStatus.ACTIVE)
        .exclude(pk=row.pk)
        .values_list("service", "replicas")
    ]
    policy_active = (
        Remediation.objects.filter(policy=policy.name, status__in=RemediationStatus.ACTIVE)
        .exclude(pk=row.pk)
        .count()
    )
    return History(
        service_starts=service_starts,
        workflow_starts=workflow_starts,
        outcomes=outcomes,
        worked_for_alert=[t.timestamp() for t in worked if t],
        active=active,
        policy_active=policy_active,
        service_replicas=replicas,
    )


def outcomes_of(policy: RemediationPolicy, count: int) -> list[Outcome]:
    """The policy's last `count` finished remediations, newest first."""
    finished = Remediation.objects.filter(policy=policy.name, status__in=RemediationStatus.FINISHED)
    rows = finished.order_by("-finished_at", "-pk").values_list("finished_at", "status")[:count]
    return [
        Outcome(moment.timestamp(), status == RemediationStatus.SUCCEEDED)
        for moment, status in rows
        if moment
    ]


def _replicas_of(row: Remediation) -> int | None:
    """The replicas of the row's service, when its policy bounds the share touched (None: unknown or
    not needed). Read before the guard lock is taken: it asks the provider."""
    policy = RemediationPolicy.model_validate(row.plan)
    if policy.blast_radius.max_replica_percent is None or not row.service:
        return None
    return _replicas(policy.blast_radius.provider, row.service)


def _replicas(provider: str, service: str) -> int | None:
    from automation.providers import get_provider

    try:
        status = get_provider(provider).status(service)
        return int(status.get("desired_replicas") or 0) or None
    except Exception:  # noqa: BLE001 - unknown replicas refuse the share guard (fail closed)
        logger.warning("replicas of %s unknown to provider %s", service, provider, exc_info=True)
        return None


def approve(pk: int, *, by: str, now: float) -> Remediation:
    """An operator approves remediation `pk` (awaiting approval): it is decided again at once, guards
    and the alert's state included (an approval does not override a guard)."""
    if not by or len(by) > 200:
        raise InvalidFieldsError([("by", "must name who approves (1 to 200 characters)")])
    with transaction.atomic():
        row = Remediation.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            raise NotFoundError(f"remediation {pk} not found")
        if row.status != RemediationStatus.AWAITING_APPROVAL:
            raise StateError(f"remediation {pk} is {row.status}, not awaiting an approval")
        set_status(row, now, RemediationStatus.REQUESTED, f"approved by {by}", approved_by=by)
        audit.record(
            "remediation.approved",
            "remediation",
            pk,
            before={"status": RemediationStatus.AWAITING_APPROVAL},
            after={"status": RemediationStatus.REQUESTED, "approved_by": by},
        )
        transaction.on_commit(lambda: send_start([pk]))
    return row


def listed(
    *, status: str | None = None, incident: int | None = None, policy: str | None = None, limit: int = 100
) -> list[Remediation]:
    """Remediations, newest first, filtered."""
    rows = Remediation.objects.all()
    if status is not None:
        rows = rows.filter(status=status)
    if incident is not None:
        rows = rows.filter(incident_id=incident)
    if policy is not None:
        rows = rows.filter(policy=policy)
    return list(rows.order_by("-requested_at", "-pk")[:limit])
