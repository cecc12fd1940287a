"""The escalation of incidents: made in the transaction that opens an incident, advanced by Beat's tick
(`automation.incidents.escalate`, every few seconds) and nudged once the incident is committed.

A step is taken under the incident's row lock, then the escalation's: by one caller at a time, and never
beside an acknowledgement (which updates the incident row): once an incident is no longer triggered, none
of its pages is sent, and the next tick records the escalation stopped. A page, its delivery runs and the
escalation's next position commit together: a worker or Beat that dies before the commit leaves the page
due for the next tick; once committed, a second tick (two Beats, a redelivered message) finds it not due.
The decisions are `automation.incidents.escalation`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction

from automation.actions.task import BROKER_ERRORS
from automation.delivery import MONITORING_QUEUE
from automation.incidents.choices import EscalationStatus, EscalationStep, EventKind, IncidentStatus
from automation.incidents.escalation import ESCALATE_TASK, Policy, Position, after_page, choose_policy, decide
from automation.incidents.escalation_definitions import EscalationDocument
from automation.incidents.services.catalog import owners_of
from automation.incidents.services.escalation_config import current_escalation
from automation.incidents.services.paging import page_level
from automation.incidents.services.timeline import ENGINE, Event, at, record
from automation.models import Escalation, Incident

logger = logging.getLogger("automation.incidents")

#: Escalations one tick advances at most (the next tick takes the rest).
TICK_BATCH = 200
#: Steps one escalation takes in one go at most (levels that reach nobody hand on at once).
MAX_STEPS = 50


def begin(incident: Incident, now: float) -> Escalation:
    """The escalation of `incident`, due at once; called in the transaction that opens it. The tick is
    nudged once that commits (Beat's next tick does it otherwise)."""
    escalation = Escalation.objects.create(incident=incident, started_at=at(now), next_due_at=at(now))
    transaction.on_commit(lambda: nudge([escalation.pk]))
    return escalation


def nudge(ids: list[int]) -> None:
    from automation.celery import app

    try:
        app.send_task(ESCALATE_TASK, kwargs={"ids": ids}, queue=MONITORING_QUEUE)
    except BROKER_ERRORS as exc:
        logger.warning("escalation of %s not nudged (%s): the next tick takes it", ids, exc)


def tick(now: float, ids: Sequence[int] | None = None) -> dict[str, list[str]]:
    """Advance the active escalations due at `now` and stop those whose incident is no longer triggered
    (only `ids`, when given); returns the steps taken, by escalation id. One that fails is logged and
    left to the next tick."""
    rows = Escalation.objects.filter(status=EscalationStatus.ACTIVE)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    due = rows.filter(next_due_at__lte=at(now)).order_by("next_due_at").values_list("pk", flat=True)
    taken = rows.exclude(incident__status=IncidentStatus.TRIGGERED).values_list("pk", flat=True)
    todo = list(dict.fromkeys([*taken[:TICK_BATCH], *due[:TICK_BATCH]]))
    if not todo:
        return {}
    document = current_escalation()
    done: dict[str, list[str]] = {}
    for pk in todo:
        try:
            steps = advance(pk, now, document)
        except Exception:  # noqa: BLE001 - one escalation must not hold up the others
            logger.exception("escalation %s failed; the next tick tries again", pk)
            continue
        if steps:
            done[str(pk)] = steps
    return done


def advance(pk: int, now: float, document: EscalationDocument | None = None) -> list[str]:
    """Take the escalation's steps due at `now` (EscalationStep values); none when someone else holds
    its incident (the next tick comes back) or it is over."""
    # Times are stored to the microsecond: `now` too, so a page due at the moment it was decided (a level
    # that reached nobody) reads as due, not a rounding later.
    now = at(now).timestamp()
    with transaction.atomic():
        incident_id = Escalation.objects.filter(pk=pk).values_list("incident_id", flat=True).first()
        if incident_id is None:
            return []
        incident = (
            Incident.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=incident_id).first()
        )
        if incident is None:
            return []
        escalation = (
            Escalation.objects.select_for_update().filter(pk=pk, status=EscalationStatus.ACTIVE).first()
        )
        if escalation is None:
            return []
        document = document if document is not None else current_escalation()
        steps: list[str] = []
        for _ in range(MAX_STEPS):
            step = _step(escalation, incident, document, now)
            if step == EscalationStep.WAIT:
                break
            steps.append(step)
            if escalation.status != EscalationStatus.ACTIVE:
                break
        escalation.save()
        return steps


def hasten(incident_id: int, now: float, reason: str) -> bool:
    """Remediation gave up on `incident_id` (its fix failed, its breaker opened, a loop): its escalation's
    next level is due now, and the tick is nudged. False (and the timeline says why) when its escalation
    is not active: someone acknowledged it, every level was paged, or no policy matched."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update(no_key=True).filter(pk=incident_id).first()
        if incident is None:
            return False
        escalation = Escalation.objects.select_for_update().filter(incident_id=incident_id).first()
        if escalation is None or escalation.status != EscalationStatus.ACTIVE:
            where = f"escalation {escalation.status}: {escalation.reason}" if escalation else "no escalation"
            detail = f"{reason}; nobody more to page ({where})"
            record(incident_id, now, Event(EventKind.ESCALATION_HASTENED, detail=detail))
            return False
        escalation.next_due_at = at(now)
        escalation.save(update_fields=["next_due_at", "updated_at"])
        detail = f"{reason}: paging the next level now"
        record(incident_id, now, Event(EventKind.ESCALATION_HASTENED, detail=detail))
        pk = escalation.pk
        transaction.on_commit(lambda: nudge([pk]))
    return True


def _policy(escalation: Escalation) -> Policy | None:
    return Policy.from_json(escalation.plan) if escalation.policy else None


def _step(escalation: Escalation, incident: Incident, document: EscalationDocument, now: float) -> str:
    policy = _policy(escalation)
    position = Position(escalation.level, escalation.round)
    due = escalation.next_due_at.timestamp() if escalation.next_due_at else None
    step = decide(
        triggered=incident.status == IncidentStatus.TRIGGERED,
        policy=policy,
        position=position,
        due=due,
        now=now,
    )
    if step == EscalationStep.STOP:
        _stop(escalation, incident, policy, position, now)
    elif step == EscalationStep.CHOOSE:
        _choose(escalation, incident, document, now)
    elif step == EscalationStep.EXHAUST and policy is not None:
        _end(escalation, EscalationStatus.EXHAUSTED, f"nobody acknowledged: {_extent(policy)} paged")
        record(incident.pk, now, Event(EventKind.ESCALATION_EXHAUSTED, detail=escalation.reason))
    elif step == EscalationStep.PAGE and policy is not None:
        _page(escalation, incident, policy, position, document, now)
    return step


def _choose(escalation: Escalation, incident: Incident, document: EscalationDocument, now: float) -> None:
    policies = [defined.build() for defined in document.policies]
    services = [str(s) for s in incident.services]
    chosen = choose_policy(
        policies, services=services, owners=owners_of(services), severity=incident.severity
    )
    if chosen is None:
        facts = f"services {', '.join(services) or '-'}, severity {incident.severity}"
        _end(escalation, EscalationStatus.UNMATCHED, f"no escalation policy matches ({facts})")
        if policies:  # with none declared, escalation is simply not in use
            record(incident.pk, now, Event(EventKind.ESCALATION_UNMATCHED, detail=escalation.reason))
        return
    policy, why = chosen
    escalation.policy, escalation.plan, escalation.reason = policy.name, policy.as_json(), why
    detail = f"policy {policy.name} ({_extent(policy)}): {why}"
    record(incident.pk, now, Event(EventKind.ESCALATION_STARTED, detail=detail))


def _extent(policy: Policy) -> str:
    passes = f" x {policy.passes} pass(es)" if policy.repeat else ""
    return f"{len(policy.levels)} level(s){passes}"


def _page(
    escalation: Escalation,
    incident: Incident,
    policy: Policy,
    position: Position,
    document: EscalationDocument,
    now: float,
) -> None:
    if position != Position(0, 0):
        record(
            incident.pk, now, Event(EventKind.ESCALATED, detail=_why_escalated(escalation, policy, position))
        )
    reached = page_level(escalation, incident, policy, position, document, now)
    following, due = after_page(policy, position, paged_at=now, reached=reached)
    escalation.level, escalation.round, escalation.next_due_at = following.level, following.round, at(due)


def _why_escalated(escalation: Escalation, policy: Policy, position: Position) -> str:
    last = escalation.pages.order_by("-round", "-level").first()
    if last is None:
        return f"paging {position.describe(policy)}"
    previous = Position(last.level, last.round).describe(policy)
    if not last.recipients:
        return f"{previous} reached nobody: paging {position.describe(policy)}"
    timeout = policy.levels[last.level].timeout
    return f"nobody acknowledged {previous} within {timeout:g} s: paging {position.describe(policy)}"


def _stop(
    escalation: Escalation, incident: Incident, policy: Policy | None, position: Position, now: float
) -> None:
    by = {
        IncidentStatus.ACKNOWLEDGED: incident.acknowledged_by,
        IncidentStatus.MITIGATED: incident.mitigated_by,
        IncidentStatus.RESOLVED: incident.resolved_by,
    }.get(incident.status, "")
    taken = f"{incident.status} by {by}" if by else f"{incident.status} by itself"
    if policy is None:
        where = "before any page"
    elif position.level >= len(policy.levels):
        where = "after its last page"
    else:
        where = f"before {position.describe(policy)}"
    _end(escalation, EscalationStatus.STOPPED, f"{taken}: stopped {where}")
    if policy is not None:  # an escalation that never chose a policy paged nobody: nothing to say
        record(
            incident.pk,
            now,
            Event(EventKind.ESCALATION_STOPPED, actor=by or ENGINE, detail=escalation.reason),
        )


def _end(escalation: Escalation, status: str, reason: str) -> None:
    escalation.status, escalation.reason, escalation.next_due_at = status, reason, None
