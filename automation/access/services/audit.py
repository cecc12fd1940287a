"""The audit log's one writer (insert only, in the caller's transaction) and its reader."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils import timezone

from automation.access.choices import AuditSource
from automation.access.digests import state_digest, summary
from automation.access.principal import Actor, current_actor
from automation.models import AuditEntry


def entry(
    action: str,
    object_type: str,
    object_id: Any,
    *,
    before: Any = None,
    after: Any = None,
    note: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """One entry, not yet stored: who (the bound actor, else the Python API's user), when, what, and the
    digests of the object's state before and after (None: it did not exist / no longer does). A caller
    that stores it in its own statement batch (creating a run) inserts these very fields."""
    who = actor or current_actor()
    return AuditEntry(
        at=timezone.now(),
        actor=who.name[:150],
        source=who.source,
        via=who.via[:100],
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:300],
        before_digest=state_digest(before),
        after_digest=state_digest(after),
        summary=summary(before, after, note),
    )


def record(action: str, object_type: str, object_id: Any, **details: Any) -> AuditEntry:
    """Append one entry (`entry`, with its `before`, `after`, `note` and `actor`) in the caller's
    transaction."""
    row = entry(action, object_type, object_id, **details)
    row.save(force_insert=True)
    return row


def started_by(run_id: Any, actor: str) -> bool:
    """Whether `actor` started the run through the API (its `run.started` entry): what runs:read_own lets
    it read. Only the API's entries count: a CLI user's name may be anything (`AUTOMATION_ACTOR`)."""
    return AuditEntry.objects.filter(
        object_type="run", object_id=str(run_id), action="run.started", actor=actor, source=AuditSource.API
    ).exists()


def entries(
    *,
    since: datetime | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Newest first; `before_id` pages back (the id of the last entry of the previous page)."""
    rows = AuditEntry.objects.order_by("-id")
    if since is not None:
        rows = rows.filter(at__gte=since)
    if actor:
        rows = rows.filter(actor=actor)
    if object_type:
        rows = rows.filter(object_type=object_type)
    if object_id:
        rows = rows.filter(object_id=object_id)
    if before_id is not None:
        rows = rows.filter(id__lt=before_id)
    return list(rows[:limit])


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "source": entry.source,
        "via": entry.via,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before_digest": entry.before_digest,
        "after_digest": entry.after_digest,
        "summary": entry.summary,
    }
