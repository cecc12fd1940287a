"""Recorded changes (deploys, config changes, workflow runs on a service): the only writer of `Change`, and
its readers (the list, and the changes root-cause analysis weighs). A change with a key is recorded once,
however often it is sent: the engine's own are keyed by their run and step, so a redelivered step message
records nothing more."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from automation.incidents.changes import ENGINE_KEY_PREFIX, ChangeRecord
from automation.incidents.choices import ChangeKind, ChangeSource
from automation.incidents.limits import DEFAULT_LISTED, MAX_CHANGE_DESCRIPTION
from automation.incidents.services.timeline import ENGINE, at
from automation.models import Change

__all__ = ["Recorded", "changes_near", "list_changes", "record_change", "record_step_change"]


@dataclass(frozen=True)
class Recorded:
    change: Change
    #: False: a change with the same key was recorded before (this one is that one).
    created: bool


def record_change(record: ChangeRecord, *, source: str, now: float) -> Recorded:
    """Store one change; with a key already recorded, the stored change is answered and nothing is written."""
    if source not in ChangeSource.ALL:
        raise ValueError(f"unknown change source {source!r}")
    row = Change(
        service=record.service,
        kind=record.kind,
        description=record.description,
        at=at(record.at),
        actor=record.actor,
        source=source,
        run_id=record.run_id,
        key=record.key or None,
        recorded_at=at(now),
    )
    if not record.key:
        row.save()
        return Recorded(row, True)
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction goes on after a conflict
            row.save()
        return Recorded(row, True)
    except IntegrityError:  # the key is taken (two deliveries at once: one wins, neither fails)
        return Recorded(Change.objects.get(key=record.key), False)


def record_step_change(
    *, service: str, kind: str, action_type: str, run_id: uuid.UUID, step: str, workflow: str, now: float
) -> Recorded:
    """The engine's own record of a workflow step acting on `service`, made before the step acts (so a
    crash after acting cannot lose it); keyed `run:RUN:STEP`."""
    if kind not in ChangeKind.ALL:
        raise ValueError(f"unknown change kind {kind!r}")
    description = f"{action_type} (step {step} of workflow {workflow})"[:MAX_CHANGE_DESCRIPTION]
    record = ChangeRecord(
        service=service[:200],
        kind=kind,
        description=description,
        at=now,
        actor=ENGINE,
        run_id=run_id,
        key=f"{ENGINE_KEY_PREFIX}{run_id}:{step}"[:200],
    )
    return record_change(record, source=ChangeSource.ENGINE, now=now)


def list_changes(
    *, service: str | None = None, since: float | None = None, limit: int = DEFAULT_LISTED
) -> list[Change]:
    """Changes, newest first."""
    rows = Change.objects.all()
    if service is not None:
        rows = rows.filter(service=service)
    if since is not None:
        rows = rows.filter(at__gte=at(since))
    return list(rows.order_by("-at", "-id")[:limit])


def changes_near(services: Iterable[str], start: datetime, end: datetime) -> list[Change]:
    """The changes on `services` from `start` to `end`, oldest first (what root-cause analysis weighs)."""
    return list(
        Change.objects.filter(service__in=list(services), at__gte=start, at__lte=end).order_by("at", "id")
    )
