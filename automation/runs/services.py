"""Every transition of a run or a step happens here; everything else calls these functions.

Each transition is a conditional UPDATE (`WHERE status IN ...`), so a redelivered message, a duplicate
worker or a late timer can never move a finished step or run backwards or count it twice.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from automation.choices import RunStatus
from automation.compiler import step_task_id
from automation.errors import ForbiddenError, NotFoundError, StateError
from automation.models import StepRun, WorkflowRun
from automation.runs import fastpath
from automation.runs.fastpath import ClaimedStep

ACTIVE = RunStatus.ACTIVE
TERMINAL = RunStatus.TERMINAL


def create_run(
    *,
    workflow_id: int,
    version_id: int,
    actions: list[dict[str, Any]],
    inputs: dict[str, Any],
    idempotency_key: str | None,
    queue: str,
    skip_reason: str = "",
) -> tuple[WorkflowRun, bool]:
    """Create a run and its steps, or return the run already created with this idempotency key."""
    run_id = uuid.uuid4()
    status = RunStatus.SKIPPED if skip_reason else RunStatus.PENDING
    key = idempotency_key or None
    steps = [
        (act["name"], act["action_type"], i, step_task_id(str(run_id), act["name"]))
        for i, act in enumerate(actions)
    ]
    run = WorkflowRun(
        id=run_id,
        workflow_id=workflow_id,
        version_id=version_id,
        status=status,
        inputs=inputs,
        idempotency_key=key,
        queue=queue,
        remaining_sinks=sink_count(actions),
        error=skip_reason,
        finished_at=timezone.now() if skip_reason else None,
        dispatched_at=None if skip_reason else timezone.now(),
    )
    try:
        if fastpath.enabled():
            # One statement is atomic on its own; inside a caller's transaction, a savepoint keeps that
            # transaction usable when the idempotency key conflicts.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                fastpath.create(
                    run_id=run_id,
                    workflow_id=workflow_id,
                    version_id=version_id,
                    status=status,
                    inputs=inputs,
                    idempotency_key=key,
                    queue=queue,
                    error=skip_reason,
                    steps=steps,
                    sinks=run.remaining_sinks,
                )
        else:
            with transaction.atomic():
                run.save(force_insert=True)
                StepRun.objects.bulk_create(
                    StepRun(
                        run_id=run_id,
                        name=name,
                        action_type=action_type,
                        position=position,
                        task_id=task_id,
                        status=status,
                        error=skip_reason,
                        finished_at=run.finished_at,
                    )
                    for name, action_type, position, task_id in steps
                )
    except IntegrityError:
        existing = WorkflowRun.objects.filter(workflow_id=workflow_id, idempotency_key=key).first()
        if key is None or existing is None:
            raise
        return existing, False
    run._state.adding = False
    return run, True


def mark_redispatched(run_id: Any) -> None:
    WorkflowRun.objects.filter(id=run_id).update(dispatched_at=timezone.now())


def claim_step(run_id: uuid.UUID, step: str, *, durable: bool = True) -> ClaimedStep | None:
    """Mark a step running (a new attempt, unless it resumes a deferral) if it and its run are active.

    None when the step is finished or its run is over: the caller finds out which with `step_outcome`.
    """
    if fastpath.enabled():
        return fastpath.claim(run_id, step, durable=durable)
    now = timezone.now()
    with transaction.atomic():
        row = (
            StepRun.objects.select_for_update()
            .select_related("run")
            .filter(run_id=run_id, name=step, status__in=ACTIVE, run__status__in=ACTIVE)
            .first()
        )
        if row is None:
            return None
        attempt = row.attempts if row.deferred else row.attempts + 1
        StepRun.objects.filter(id=row.id).update(
            status=RunStatus.RUNNING,
            attempts=attempt,
            deferred=False,
            started_at=row.started_at or now,
            touched_at=now,
        )
        WorkflowRun.objects.filter(id=run_id, status=RunStatus.PENDING).update(
            status=RunStatus.RUNNING, started_at=now
        )
    return ClaimedStep(
        id=row.id, attempt=attempt, state=row.state, inputs=row.run.inputs, version_id=row.run.version_id
    )


def step_outcome(run_id: uuid.UUID, step: str) -> StepRun | None:
    """The step and its run's status, read when a claim was refused."""
    return (
        StepRun.objects.select_related("run")
        .only("id", "status", "output", "run__id", "run__status", "run__version_id")
        .filter(run_id=run_id, name=step)
        .first()
    )


def sink_count(actions: list[dict[str, Any]]) -> int:
    """How many steps have no dependents: a run succeeds when all of them have."""
    return len({a["name"] for a in actions} - {d for a in actions for d in a["depends_on"]})


def complete_step(step_id: int, *, run_id: Any, output: Any, sink: bool, durable: bool = True) -> None:
    """Record a step's success; a step without dependents also counts off its run, which succeeds with
    the last of them. `durable=False` does not wait for the disk: see automation/runs/fastpath.py.
    """
    if fastpath.enabled():
        fastpath.complete(step_id, output, durable=durable, sink=sink)
        return
    now = timezone.now()
    with transaction.atomic():
        updated = StepRun.objects.filter(id=step_id, status__in=(*ACTIVE, RunStatus.CANCELLED)).update(
            status=RunStatus.SUCCEEDED, output=output, finished_at=now, touched_at=now, error=""
        )
        if updated and sink:
            last = When(remaining_sinks__lte=1, status=RunStatus.RUNNING, then=Value(RunStatus.SUCCEEDED))
            WorkflowRun.objects.filter(id=run_id).update(
                remaining_sinks=F("remaining_sinks") - 1,
                status=Case(last, default=F("status")),
                finished_at=Case(
                    When(remaining_sinks__lte=1, status=RunStatus.RUNNING, then=Value(now)),
                    default=F("finished_at"),
                ),
            )


def defer_step(step_id: int, *, state: dict[str, Any] | None, note: str = "") -> None:
    """Park a running step until its next execution; `state` is merged over what is stored (an
    approver's decision, written concurrently, is never lost)."""
    if state is None:
        StepRun.objects.filter(id=step_id, status=RunStatus.RUNNING).update(
            deferred=True, error=note, touched_at=timezone.now()
        )
        return
    with transaction.atomic():
        row = StepRun.objects.select_for_update().filter(id=step_id, status=RunStatus.RUNNING).first()
        if row is not None:
            row.state = {**row.state, **state}
            row.deferred = True
            row.error = note
            row.touched_at = timezone.now()
            row.save(update_fields=["state", "deferred", "error", "touched_at"])


def record_retry(step_id: int, *, error: str) -> None:
    """The attempt failed and another follows: keep the error visible while the step waits."""
    StepRun.objects.filter(id=step_id, status=RunStatus.RUNNING).update(error=error)


def fail_step(step_id: int, *, run_id: Any, error: str) -> bool:
    """Fail a step and its run; the run's steps that have not started are skipped."""
    now = timezone.now()
    with transaction.atomic():
        updated = StepRun.objects.filter(id=step_id, status__in=ACTIVE).update(
            status=RunStatus.FAILED, error=error[:10_000], finished_at=now
        )
        if updated:
            WorkflowRun.objects.filter(id=run_id, status__in=ACTIVE).update(
                status=RunStatus.FAILED, error=f"step failed: {error}"[:10_000], finished_at=now
            )
            StepRun.objects.filter(run_id=run_id, status=RunStatus.PENDING).update(
                status=RunStatus.SKIPPED, error="an earlier step failed", finished_at=now
            )
    return bool(updated)


def close_step_of_finished_run(step_id: int, *, run_status: str) -> None:
    """A message arrived for a step of a run that already ended: settle the step, do not run it."""
    status = RunStatus.CANCELLED if run_status == RunStatus.CANCELLED else RunStatus.SKIPPED
    StepRun.objects.filter(id=step_id, status__in=ACTIVE).update(
        status=status, finished_at=timezone.now(), error=f"run is {run_status}"
    )


def cancel_run(run_id: Any, *, reason: str = "cancelled by request") -> WorkflowRun:
    """Cancel a run: its unfinished steps are marked cancelled; the caller revokes their messages."""
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(id=run_id).first()
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        if run.status in TERMINAL:
            raise StateError(f"run {run_id} is already {run.status}")
        run.status = RunStatus.CANCELLED
        run.error = reason
        run.finished_at = now
        run.save(update_fields=["status", "error", "finished_at"])
        StepRun.objects.filter(run_id=run_id, status__in=ACTIVE).update(
            status=RunStatus.CANCELLED, error=reason, finished_at=now
        )
    return run


def decide_approval(run_id: Any, step: str, *, approved: bool, by: str, comment: str = "") -> StepRun:
    """Record an approver's decision on a `control.approval` step that is waiting for one."""
    with transaction.atomic():
        row = (
            StepRun.objects.select_for_update().select_related("run").filter(run_id=run_id, name=step).first()
        )
        if row is None:
            raise NotFoundError(f"run {run_id} has no step '{step}'")
        if row.action_type != "control.approval":
            raise StateError(f"step '{step}' is a {row.action_type} step, not an approval")
        if row.run.status not in ACTIVE or row.status not in ACTIVE:
            raise StateError(f"step '{step}' is {row.status} and its run {row.run.status}: nothing to decide")
        if "requested_at" not in row.state:
            raise StateError(f"step '{step}' has not asked for approval yet")
        if "decision" in row.state:
            raise StateError(f"step '{step}' was already {row.state['decision']}")
        approvers = row.state.get("approvers") or []
        if approvers and by not in approvers:
            raise ForbiddenError(
                f"'{by or 'anonymous'}' is not an approver of step '{step}' ({', '.join(approvers)})"
            )
        row.state = {
            **row.state,
            "decision": "approved" if approved else "rejected",
            "decided_by": by,
            "comment": comment,
            "decided_at": timezone.now().isoformat(),
        }
        row.touched_at = timezone.now()
        row.save(update_fields=["state", "touched_at"])
    return row
