"""Finding runs and steps that lost their way, for the Beat monitoring jobs.

- A run whose steps stopped moving (its enqueuer died before sending it, or the broker lost its
  messages) is dispatched again: every step is guarded by (run, step), so finished steps hand their
  recorded outputs on and only the missing work is done.
- A step whose task was killed (hard time limit) or whose completion was lost in a database crash is
  settled from the outcome Celery recorded for its task id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from automation.choices import RunStatus
from automation.models import StepRun, WorkflowRun
from automation.runs import services
from automation.runs.documents import stored_workflow

logger = logging.getLogger("automation.recovery")

#: Time allowed past a step's hard time limit before its task's recorded outcome is read.
SETTLE_MARGIN = timedelta(seconds=30)


def stall_after() -> timedelta:
    return timedelta(seconds=settings.AUTOMATION_STALL_AFTER)


def redispatch_stalled(now: datetime | None = None, *, limit: int = 500) -> int:
    """Dispatch again the active runs none of whose steps moved for longer than they may legitimately take."""
    from automation.runs.dispatch import dispatch

    now = now or timezone.now()
    cutoff = now - stall_after()
    candidates = (
        WorkflowRun.objects.filter(status__in=RunStatus.ACTIVE, dispatched_at__lt=cutoff)
        .annotate(last_moved=Max("steps__touched_at"))
        .filter(Q(last_moved__lt=cutoff) | Q(last_moved__isnull=True))
        .order_by("dispatched_at")
    )
    count = 0
    for run in candidates.iterator():
        if count >= limit:
            break
        if run.last_moved is not None:
            # A step moved once: one may still be within its time limit.
            longest = max(a["timeout_seconds"] for a in stored_workflow(run.version_id).document["actions"])
            if now - max(run.dispatched_at, run.last_moved) < timedelta(seconds=longest) + stall_after():
                continue
        try:
            dispatch(run)
        except Exception:  # noqa: BLE001 - one run the broker refuses must not stop the others
            logger.exception("could not dispatch stalled run %s again", run.id)
            continue
        services.mark_redispatched(run.id)
        count += 1
    return count


def settle_lost_steps(now: datetime | None = None) -> int:
    """Settle running steps past their hard time limit from the outcome Celery recorded for their task:
    FAILURE (killed at the limit) fails the step; SUCCESS (the completion write was lost) completes it."""
    from automation.celery import app

    now = now or timezone.now()
    running = StepRun.objects.filter(
        status=RunStatus.RUNNING, deferred=False, run__status=RunStatus.RUNNING
    ).values_list("id", "run_id", "name", "task_id", "touched_at", "run__version_id")
    settled = 0
    for step_id, run_id, name, task_id, claimed_at, version_id in running:
        timeout = stored_workflow(version_id).actions[name]["timeout_seconds"]
        # From the latest claim: a copy sent again may be running the step right now.
        if claimed_at is None or now - claimed_at < timedelta(seconds=timeout) + SETTLE_MARGIN:
            continue
        meta = app.backend.get_task_meta(task_id)
        if meta.get("status") == "FAILURE":
            result = meta.get("result")
            reason = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else result
            services.fail_step(step_id, run_id=run_id, error=f"task killed: {reason}")
            settled += 1
        elif meta.get("status") == "SUCCESS":
            result = meta.get("result")
            handed_on: dict[str, Any] = result if isinstance(result, dict) else {}
            output = handed_on.get(name, {"recovered": "completion restored from the task's recorded result"})
            sink = name in stored_workflow(version_id).sinks
            services.complete_step(step_id, run_id=run_id, output=output, sink=sink)
            settled += 1
    return settled
