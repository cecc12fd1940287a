"""One page: the level's targets resolved to receivers (whoever is on call now), one delivery run of each
receiver's workflow (the alerting receivers: a notification is a run of the receiver's one-step workflow),
the page stored, and the timeline told who was paged, how, and which targets reached nobody.

A level of a pass is paged at most once: the page row's unique key (escalation, pass, level) is taken
before anything is sent, and each delivery run's idempotency key is `page:INCIDENT:PASS:LEVEL:RECEIVER`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from automation.alerting.notifications import receiver_workflow_name
from automation.errors import AutomationError, IdempotencyConflict
from automation.incidents.ack_links import ack_path, sign
from automation.incidents.choices import EventKind
from automation.incidents.escalation import Policy, Position, Reach, Recipient, reach
from automation.incidents.escalation_definitions import EscalationDocument
from automation.incidents.oncall import on_call
from automation.incidents.paging import PageAlert, PageIncident, incident_url, page_content
from automation.incidents.services.escalation_config import known_receivers
from automation.incidents.services.timeline import Event, at, record
from automation.models import Escalation, EscalationPage, Incident
from automation.runs.dispatch import enqueue_run

#: The incident's alerts a page reads at most (the newest firings first).
MAX_READ_ALERTS = 200

logger = logging.getLogger("automation.incidents")


def page_level(
    escalation: Escalation,
    incident: Incident,
    policy: Policy,
    position: Position,
    document: EscalationDocument,
    now: float,
) -> bool:
    """Page `position` of the escalation (the caller holds its lock); whether it reached anyone."""
    due = escalation.next_due_at or at(now)
    try:
        with transaction.atomic():
            page = EscalationPage.objects.create(
                escalation=escalation,
                level=position.level,
                round=position.round,
                due_at=due,
                paged_at=at(now),
            )
    except IntegrityError:  # paged already (by a caller that held the lock before): never twice
        done = EscalationPage.objects.get(escalation=escalation, level=position.level, round=position.round)
        return bool(done.recipients)
    found = _reach(policy, position, document, now)
    step = position.describe(policy)
    sent: list[dict[str, Any]] = []
    events = [Event(EventKind.PAGE_SKIPPED, detail=f"{step}: {reason}") for reason in found.skipped]
    content = _Content(incident, due)
    for recipient in found.recipients:
        run_id, problem = _deliver(
            incident, position, recipient, content.build(recipient, step, len(sent) + 1)
        )
        if problem:
            events.append(Event(EventKind.PAGE_SKIPPED, detail=f"{step}: {problem}"))
            continue
        sent.append({**vars(recipient), "run_id": run_id})
        detail = f"{step}: {recipient.via} via receiver {recipient.receiver}"
        events.append(Event(EventKind.PAGED, detail=detail, run_id=run_id))
    if not sent:
        events.append(Event(EventKind.PAGE_SKIPPED, detail=f"{step} reached nobody: the next one is due now"))
    page.recipients = sent
    page.skipped = [event.detail for event in events if event.kind == EventKind.PAGE_SKIPPED]
    page.save(update_fields=["recipients", "skipped"])
    record(incident.pk, now, *events)
    return bool(sent)


def _reach(policy: Policy, position: Position, document: EscalationDocument, now: float) -> Reach:
    moment = datetime.fromtimestamp(now, UTC)
    schedules = {s.name: s for s in document.schedules}

    def holder(name: str) -> str | None:
        try:
            found = on_call(schedules[name].build(), moment) if name in schedules else None
        except (ArithmeticError, ValueError) as exc:  # one broken schedule must not silence a whole level
            logger.error("escalation: schedule %s could not say who is on call: %r", name, exc)
            return None
        return found.user if found else None

    return reach(
        policy.levels[position.level],
        users=document.receivers_of_users(),
        on_call=holder,
        # read now: the page must follow an alerting document applied a moment ago
        receivers=known_receivers(fresh=True),
    )


class _Content:
    """What every page of one level says about the incident, read once."""

    def __init__(self, incident: Incident, due: datetime) -> None:
        self.incident = PageIncident(
            incident.pk, incident.title, incident.severity, incident.status, tuple(incident.services)
        )
        links = incident.alerts.select_related("alert").order_by("resolved_at", "-fired_at")[:MAX_READ_ALERTS]
        self.alerts = [
            PageAlert(
                link.fingerprint,
                link.name,
                link.resolved_at is None,
                link.fired_at,
                link.resolved_at,
                {str(k): str(v) for k, v in (link.alert.labels if link.alert else {}).items()},
                {str(k): str(v) for k, v in (link.alert.annotations if link.alert else {}).items()},
            )
            for link in links
        ]
        # From the page's due time, not the moment it is built: the same page always says the same.
        self.expires = int(due.timestamp()) + int(settings.AUTOMATION_ACK_LINK_TTL)
        self.url = incident_url(settings.AUTOMATION_BASE_URL, incident.pk)

    def build(self, recipient: Recipient, step: str, sequence: int) -> dict[str, Any]:
        ack_url = ""  # without a secret of the deployment's own, a link would be forgeable: none is sent
        if settings.AUTOMATION_ACK_LINKS:
            token = sign(
                self.incident.id, recipient.who, expires=self.expires, secret=settings.AUTOMATION_ACK_SECRET
            )
            ack_url = f"{settings.AUTOMATION_BASE_URL}{ack_path(self.incident.id, token)}"
        return page_content(
            self.incident,
            self.alerts,
            step=step,
            receiver=recipient.receiver,
            who=recipient.who,
            sequence=sequence,
            url=self.url,
            ack_url=ack_url,
        )


def _deliver(
    incident: Incident, position: Position, recipient: Recipient, content: dict[str, Any]
) -> tuple[str, str]:
    """Enqueue the receiver's delivery run: (its id, "") or ("", why it was refused)."""
    key = f"page:{incident.pk}:{position.round}:{position.level}:{recipient.receiver}"
    try:
        with transaction.atomic():
            run, _ = enqueue_run(
                receiver_workflow_name(recipient.receiver), {"notification": content}, idempotency_key=key
            )
    except IdempotencyConflict as exc:
        return exc.run_id, ""  # sent already, under this key: not again
    except AutomationError as exc:
        return "", f"receiver {recipient.receiver} ({recipient.via}) refused the page: {str(exc)[:500]}"
    return str(run.id), ""
