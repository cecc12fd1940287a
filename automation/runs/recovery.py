"""Finding runs that lost their messages and sending them again, for the Beat monitoring jobs.

Every few seconds (`recover_runs`), runs are marked to be sent again when
- the broker lost its data (its epoch key changed: a restart without persistence, a flush);
- a worker could not send a finished step's successors (marked by automation/runs/handoff.py);
- the worker node executing one of their steps, or holding one of their messages, died;
- a parked step (a wait, an approval) or a retry after a failed attempt is long overdue: its delayed
  message was lost;
and the marked runs are sent again as a new generation (automation/runs/dispatch.py).

Every `monitoring_interval`, as a last resort, a run none of whose steps moved for far longer than they
may legitimately take is sent again, steps killed at their hard time limit are failed from the outcome
Celery recorded for their task, and engine-internal steps whose completion was lost in a database
crash run again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.utils import timezone

from automation.choices import RunStatus
from automation.delivery import parse_step_task_id
from automation.fleet.identity import NODE_ID
from automation.models import StepRun, WorkerNode, WorkflowRun
from automation.runs import services
from automation.runs.documents import stored_workflow

logger = logging.getLogger("automation.recovery")

#: Time allowed past a step's hard time limit before its task's recorded outcome is read.
SETTLE_MARGIN = timedelta(seconds=30)
#: A parked step's message this late is taken for lost.
OVERDUE_AFTER = timedelta(seconds=30)
#: Runs sent again per pass; the rest stay marked for the next pass.
BATCH = 500


@dataclass
class RecoveryPass:
    broker_lost: int = 0
    dead_nodes: int = 0
    overdue: int = 0
    sent: int = 0


def recover_runs(now: datetime | None = None) -> RecoveryPass:
    now = now or timezone.now()
    found = RecoveryPass()
    found.broker_lost = mark_runs_if_broker_lost()
    found.dead_nodes = mark_runs_of_dead_nodes(now)
    found.overdue = mark_overdue_parked_runs(now)
    found.sent = send_marked_runs()
    return found


def _mark(runs: Any) -> int:
    return int(runs.filter(status__in=RunStatus.ACTIVE).update(redispatch_requested_at=timezone.now()))


def mark_runs_if_broker_lost() -> int:
    from automation.broker.epoch import broker_lost_its_data

    if not broker_lost_its_data():
        return 0
    marked = _mark(WorkflowRun.objects.all())
    logger.warning("the broker lost its messages: %d active run(s) to be sent again", marked)
    return marked


def mark_runs_of_dead_nodes(now: datetime) -> int:
    """Runs a dead node held: a step it claimed, or a message it held without executing it yet (its
    prefetched messages, and the retries and waits it was counting down). Judged only once this
    worker's own heartbeats have been fresh for a whole dead-after window: after a database outage
    every heartbeat is stale at once, and a live node may not have beaten again yet."""
    stale = now - services.NODE_DEAD_AFTER
    if not WorkerNode.objects.filter(id=NODE_ID, seen_at__gte=stale, fresh_since__lte=stale).exists():
        return 0
    marked = 0
    dead = WorkerNode.objects.filter(seen_at__lt=stale, stopped_at__isnull=True, reaped_at__isnull=True)
    for node in dead:
        held = {named[0] for named in map(parse_step_task_id, node.holding.split(",")) if named}
        held_runs = [run_id for run_id in held if _is_uuid(run_id)]
        steps = StepRun.objects.filter(claimed_node=node.id, run__status__in=RunStatus.ACTIVE)
        claimed = steps.values("run_id")
        count = _mark(WorkflowRun.objects.filter(Q(id__in=claimed) | Q(id__in=held_runs)))
        WorkerNode.objects.filter(id=node.id, reaped_at__isnull=True).update(reaped_at=now)
        logger.warning("worker node %s stopped heartbeating: %d run(s) to be sent again", node, count)
        marked += count
    WorkerNode.objects.filter(
        Q(stopped_at__lt=now - timedelta(days=1)) | Q(reaped_at__lt=now - timedelta(days=1))
    ).delete()
    return marked


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def mark_overdue_parked_runs(now: datetime) -> int:
    """Runs with a step whose next message is long overdue: a parked step (a wait, an approval) or a
    retry after a failed attempt, whose delayed message was lost."""
    overdue = StepRun.objects.filter(
        Q(deferred=True) | Q(claim_token=""),
        status=RunStatus.RUNNING,
        due_at__lt=now - OVERDUE_AFTER,
        run__status__in=RunStatus.ACTIVE,
        run__redispatch_requested_at__isnull=True,
    ).values("run_id")
    count = _mark(WorkflowRun.objects.filter(id__in=overdue))
    if count:
        logger.warning("%d run(s) with a step's message long overdue: to be sent again", count)
    return count


def send_marked_runs(limit: int = BATCH) -> int:
    from automation.runs.dispatch import redispatch

    sent = 0
    marked = WorkflowRun.objects.filter(redispatch_requested_at__isnull=False).order_by(
        "redispatch_requested_at"
    )
    for run in marked[:limit]:
        if run.status not in RunStatus.ACTIVE:
            services.clear_redispatch_request(run.id)
            continue
        if redispatch(run, reason="marked for recovery"):
            sent += 1
    return sent


def stall_after() -> timedelta:
    return timedelta(seconds=settings.AUTOMATION_STALL_AFTER)


def redispatch_stalled(now: datetime | None = None, *, limit: int = BATCH) -> int:
    """Mark the active runs none of whose steps moved for longer than they may legitimately take."""
    now = now or timezone.now()
    cutoff = now - stall_after()
    candidates = (
        WorkflowRun.objects.filter(
            status__in=RunStatus.ACTIVE, dispatched_at__lt=cutoff, redispatch_requested_at__isnull=True
        )
        .annotate(last_moved=Max("steps__touched_at"))
        .filter(Q(last_moved__lt=cutoff) | Q(last_moved__isnull=True))
        .order_by("dispatched_at")
    )
    stalled: list[Any] = []
    for run in candidates.iterator():
        if len(stalled) >= limit:
            break
        if run.last_moved is not None:
            # A step moved once: one may still be within its time limit.
            longest = max(a["timeout_seconds"] for a in stored_workflow(run.version_id).document["actions"])
            if now - max(run.dispatched_at, run.last_moved) < timedelta(seconds=longest) + stall_after():
                continue
        stalled.append(run.id)
    count = _mark(WorkflowRun.objects.filter(id__in=stalled))
    if count:
        logger.warning("%d run(s) stalled: to be sent again", count)
    return count


def settle_lost_steps(now: datetime | None = None) -> int:
    """Settle running steps past their hard time limit, from their latest claim.

    A step whose task Celery recorded as failed (the pool killed it at the limit) fails. An engine-internal
    step with no recorded outcome is run again: its completion, written without waiting for the disk, was
    lost in a database crash (its message is acknowledged; no copy of it will come), and running it again
    acts on nothing outside. A step acting outside completes durably, so that cannot happen to it.
    """
    from automation.actions.registry import get_action
    from automation.celery import app

    now = now or timezone.now()
    running = StepRun.objects.filter(
        status=RunStatus.RUNNING, deferred=False, run__status=RunStatus.RUNNING
    ).values_list("id", "run_id", "name", "task_id", "touched_at", "run__version_id")
    settled = 0
    for step_id, run_id, name, task_id, claimed_at, version_id in running:
        act = stored_workflow(version_id).actions[name]
        # From the latest claim: a copy sent again may be running the step right now.
        if claimed_at is None or now - claimed_at < timedelta(seconds=act["timeout_seconds"]) + SETTLE_MARGIN:
            continue
        meta = app.backend.get_task_meta(task_id)
        if meta.get("status") == "FAILURE":
            result = meta.get("result")
            reason = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else result
            services.fail_step(step_id, run_id=run_id, error=f"task killed: {reason}")
            settled += 1
            continue
        spec = get_action(act["action_type"])
        if spec is not None and not spec.external and services.resume_lost_step(step_id, run_id=run_id):
            logger.warning("run %s: step %s lost its completion; it runs again", run_id, name)
            settled += 1
    return settled
