"""The only writers of workflow schedules (django-celery-beat's PeriodicTask rows named `workflow:NAME`),
and the job Beat sends for them: one run per slot, its idempotency key the schedule and the slot."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.errors import DefinitionError, InvalidFieldsError, NotFoundError
from automation.timetables.definitions import ScheduleDefinition, cron_fields

logger = logging.getLogger("automation.schedules")

#: PeriodicTask names of workflow schedules (the monitoring jobs have names of their own).
PREFIX = "workflow:"
#: The job Beat sends for a schedule (stamped with Beat's send time, see automation/schedules.py).
TASK = "automation.schedules.run_workflow"
#: The queue of that job: it only stores and sends a run, whose steps go to the workflow's own queue.
QUEUE = "critical"
#: Most schedules one listing returns.
MAX_LISTED = 1000


def _check_workflow(definition: ScheduleDefinition) -> None:
    """The workflow exists and takes these inputs (a schedule that would fail every slot is refused)."""
    from automation.definitions.validation import resolve_inputs
    from automation.runs.dispatch import latest_version_ids
    from automation.runs.documents import stored_workflow
    from automation.runs.intake import check_run_request

    try:
        check_run_request(definition.workflow, definition.inputs, None)  # sizes, NUL characters, types
    except InvalidFieldsError as exc:
        raise DefinitionError(list(exc.errors)) from None

    try:
        latest = latest_version_ids(definition.workflow, fresh=True)
    except NotFoundError:
        missing = f"workflow '{definition.workflow[:200]}' is not registered"
        raise DefinitionError([("workflow", missing)]) from None
    try:
        resolve_inputs(stored_workflow(latest.version_id).document, definition.inputs)
    except InvalidFieldsError as exc:
        errors = [(f"inputs.{path}".rstrip("."), reason) for path, reason in exc.errors]
        raise DefinitionError(errors) from None


def save_schedule(raw: ScheduleDefinition | dict[str, Any]) -> ScheduleDefinition:
    """Store a schedule (new, or a new definition of the same name); all or nothing."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    definition = raw if isinstance(raw, ScheduleDefinition) else ScheduleDefinition.parse(raw)
    _check_workflow(definition)
    # Only the name and the period travel in Beat's messages (Flower shows task arguments): the workflow
    # and its inputs, secret ones included, are read from the stored definition when the slot fires.
    kwargs = {"schedule": definition.name, "period": definition.period}
    with transaction.atomic():
        before = _rows().filter(name=PREFIX + definition.name).values_list("description", flat=True).first()
        crontab = interval = None
        if definition.cron is not None:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                **cron_fields(definition.cron), timezone=definition.timezone
            )
        else:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=int(definition.period), period=IntervalSchedule.SECONDS
            )
        PeriodicTask.objects.update_or_create(
            name=PREFIX + definition.name,
            defaults={
                "task": TASK,
                "crontab": crontab,
                "interval": interval,
                "kwargs": json.dumps(kwargs),
                "queue": QUEUE,
                "enabled": definition.enabled,
                "description": json.dumps(definition.as_document()),
                # A slot whose job was not taken within its period is gone: the next one is on its way.
                "expire_seconds": max(int(definition.period), 60),
            },
        )
        audit.record(
            "schedule.saved",
            "schedule",
            definition.name,
            before=json.loads(before) if before else None,
            after=definition.as_document(),
        )
    return definition


def _rows() -> Any:
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.filter(name__startswith=PREFIX, task=TASK)


def definition_of(row: Any) -> ScheduleDefinition:
    document = json.loads(row.description or "{}")
    document["enabled"] = row.enabled
    return ScheduleDefinition.model_validate(document)


def get_schedule(name: str) -> Any:
    row = _rows().filter(name=PREFIX + name).first()
    if row is None:
        raise NotFoundError(f"schedule '{name[:200]}' does not exist")
    return row


def list_schedules() -> list[Any]:
    return list(_rows().order_by("name")[:MAX_LISTED])


def delete_schedule(name: str) -> None:
    with transaction.atomic():
        before = _rows().filter(name=PREFIX + name).values_list("description", flat=True).first()
        deleted, _ = _rows().filter(name=PREFIX + name).delete()
        if not deleted:
            raise NotFoundError(f"schedule '{name[:200]}' does not exist")
        audit.record("schedule.deleted", "schedule", name, before=json.loads(before) if before else None)


def slot_key(schedule: str, slot: int) -> str:
    return f"schedule:{schedule}:{slot}"


def fire_stored(schedule: str, period: float, now: float) -> str | None:
    """The slot's run of the stored schedule `schedule` (None, logged, when it no longer exists)."""
    row = _rows().filter(name=PREFIX + schedule).first()
    if row is None:
        logger.warning("schedule %s: no longer stored, nothing started", schedule)
        return None
    definition = definition_of(row)
    return fire(schedule, definition.workflow, definition.inputs, period, now)


def fire(schedule: str, workflow: str, inputs: dict[str, Any], period: float, now: float) -> str | None:
    """Start the slot's run of `workflow` (the same run for every message of the slot: two Beats, a
    redelivered job); its id, or None when the workflow can no longer be run (logged, not retried)."""
    from automation.errors import AutomationError
    from automation.runs.dispatch import enqueue_run

    slot = int(now // max(period, 1.0))
    try:
        run, created = enqueue_run(workflow, inputs, idempotency_key=slot_key(schedule, slot))
    except AutomationError as exc:
        logger.error("schedule %s: no run of %s for slot %d: %s", schedule, workflow, slot, exc)
        return None
    if created:
        logger.info("schedule %s: run %s of %s for slot %d", schedule, run.id, workflow, slot)
    return str(run.id)
