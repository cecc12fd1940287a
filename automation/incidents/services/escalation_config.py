"""The escalation document (users, schedules, policies), stored whole (all or none) and read fresh by each
escalation tick, so a page follows the document just applied; and who is on call, read from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.alerting.services.config import current_document
from automation.errors import NotFoundError
from automation.incidents.escalation_definitions import EscalationDocument
from automation.incidents.oncall import OnCall, on_call
from automation.models import EscalationConfig


def known_receivers(*, fresh: bool = False) -> frozenset[str]:
    """The receivers of the alerting document (cached a few seconds unless `fresh`)."""
    return frozenset(receiver.name for receiver in current_document(fresh=fresh).receivers)


def apply_escalation(raw: Any) -> EscalationDocument:
    """Validate `raw` (DefinitionError naming each field at fault: nothing stored) and store it in place
    of the stored document."""
    document = EscalationDocument.parse(raw, receivers=known_receivers(fresh=True))
    with transaction.atomic():
        before = EscalationConfig.objects.filter(pk=1).values_list("document", flat=True).first()
        EscalationConfig.objects.update_or_create(pk=1, defaults={"document": as_json(document)})
        audit.record(
            "config.applied", "escalation_document", "escalation", before=before, after=as_json(document)
        )
    return document


def as_json(document: EscalationDocument) -> dict[str, Any]:
    return document.model_dump(mode="json", by_alias=True, exclude_none=True)


def current_escalation() -> EscalationDocument:
    """The stored document (valid when stored: its shapes are not judged again; a name it refers to may
    have left the alerting document since, which the page that meets it says)."""
    stored = EscalationConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    return EscalationDocument.model_validate(stored) if stored else EscalationDocument()


@dataclass(frozen=True)
class ScheduleOnCall:
    schedule: str
    timezone: str
    on_call: OnCall | None


def who_is_on_call(schedule: str | None, at: float) -> list[ScheduleOnCall]:
    """Who is on call at `at` for `schedule` (every schedule when None); NotFoundError naming an unknown
    schedule."""
    document = current_escalation()
    if schedule is None:
        chosen = list(document.schedules)
    else:
        found = document.schedule(schedule)
        if found is None:
            known = ", ".join(s.name for s in document.schedules) or "none declared"
            raise NotFoundError(f"schedule {schedule[:100]} is not declared (known: {known})")
        chosen = [found]
    moment = datetime.fromtimestamp(at, UTC)
    return [ScheduleOnCall(s.name, s.timezone, on_call(s.build(), moment)) for s in chosen]
