"""Finding runs and steps that lost their way (a dead enqueuer, a task killed at its hard time limit)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from automation.choices import RunStatus
from automation.definitions.validation import HARD_LIMIT_GRACE
from automation.models import StepRun, WorkflowRun
from automation.runs import services
from automation.runs.documents import stored_workflow

#: A run created this long ago and never dispatched lost its dispatch (the enqueuer died in between).
UNDISPATCHED_AFTER = timedelta(seconds=30)
#: Extra time given to a step past its hard time limit before its task's recorded outcome is read.
KILLED_MARGIN = timedelta(seconds=30)


def redispatch_undispatched(now: datetime | None = None, *, limit: int = 500) -> int:
    from automation.runs.dispatch import dispatch

    cutoff = (now or timezone.now()) - UNDISPATCHED_AFTER
    runs = WorkflowRun.objects.filter(
        status=RunStatus.PENDING, dispatched_at__isnull=True, created_at__lt=cutoff
    )
    count = 0
    for run in runs[:limit]:
        dispatch(run)
        count += 1
    return count


def settle_killed_steps(now: datetime | None = None) -> int:
    """Fail steps whose task the pool killed at its hard time limit: the step's own bookkeeping never ran,
    but Celery recorded the failure under the step's task id."""
    from automation.celery import app

    now = now or timezone.now()
    running = StepRun.objects.filter(
        status=RunStatus.RUNNING, deferred=False, run__status=RunStatus.RUNNING
    ).values_list("id", "run_id", "name", "task_id", "started_at", "run__version_id")
    settled = 0
    for step_id, run_id, name, task_id, started_at, version_id in running:
        timeout = stored_workflow(version_id).actions[name]["timeout_seconds"]
        if (
            started_at is None
            or now - started_at < timedelta(seconds=timeout + HARD_LIMIT_GRACE) + KILLED_MARGIN
        ):
            continue
        meta = app.backend.get_task_meta(task_id)
        if meta.get("status") == "FAILURE":
            result = meta.get("result")
            reason = (
                f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else str(result)
            )
            services.fail_step(step_id, run_id=run_id, error=f"task killed: {reason}")
            settled += 1
    return settled
