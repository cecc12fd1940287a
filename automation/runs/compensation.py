"""Starting the run that undoes a run (its workflow's `<name>.compensation`, see
automation/definitions/compensation.py): once per run undone, whoever asks first (the executor when a
step fails for good, a remediation whose verification failed, a sweep that finds one not started). A
failed run is undone only once none of its steps is still running: a parallel branch that succeeds after
the run failed is undone with the others (the sweep starts it once the last step settled)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Value
from django.db.models.functions import Concat
from django.utils import timezone

from automation.choices import RunStatus
from automation.definitions.compensation import COMPENSATION_INPUT, SUFFIX, compensation_input, undone_run
from automation.definitions.registry import compensation_version
from automation.errors import IdempotencyConflict
from automation.models import StepRun, WorkflowRun
from automation.runs.dispatch import enqueue_run
from automation.runs.documents import stored_workflow

logger = logging.getLogger("automation.compensation")

SWEEP_HORIZON = timedelta(hours=1)
SWEEP_BATCH = 100


def compensation_key(run_id: Any) -> str:
    return f"compensate:{run_id}"


def compensate(run_id: Any, *, reason: str) -> WorkflowRun | None:
    """Start (once) the run undoing `run_id`'s succeeded steps, in reverse order, with the compensation
    derived from the version `run_id` ran; None when that version declares none or none of the steps
    that declare one succeeded. A failed run is undone for its own error whoever asks, so every caller
    asks with the same inputs."""
    run = WorkflowRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    document = stored_workflow(run.version_id).document
    name = document.get("compensation")
    if not name:
        return None
    undoable = {a["name"] for a in document["actions"] if a.get("compensate")}
    succeeded = dict(
        StepRun.objects.filter(run_id=run.pk, status=RunStatus.SUCCEEDED, name__in=undoable).values_list(
            "name", "output"
        )
    )
    if not succeeded:
        return None
    if run.status == RunStatus.FAILED:
        if steps_active(run.pk):
            logger.info("run %s: not undone yet, some of its steps still run (the sweep asks again)", run.pk)
            return None
        reason = run.error or reason
    record = compensation_input(
        run_id=str(run.pk), workflow=document["name"], reason=reason, succeeded=succeeded
    )
    inputs = {**{k: v for k, v in run.inputs.items() if k != COMPENSATION_INPUT}, COMPENSATION_INPUT: record}
    # The compensation of the version this run ran, not the latest: the workflow may have been registered
    # again since the run started, with other steps to undo or other ways of undoing them.
    version = compensation_version(document)
    if version is None:
        return None
    try:
        undo, created = enqueue_run(
            str(name), inputs, idempotency_key=compensation_key(run.pk), undoing=True, pinned=version
        )
    except IdempotencyConflict as exc:  # asked before for another reason: that run undoes it
        return WorkflowRun.objects.filter(pk=exc.run_id).first()
    if created:
        logger.warning("run %s undone by run %s (%s): %s", run.pk, undo.pk, name, reason)
    return undo


def steps_active(run_id: Any) -> bool:
    """Whether some step of `run_id` is still pending or running (a failed run is not undone yet)."""
    return StepRun.objects.filter(run_id=run_id, status__in=RunStatus.ACTIVE).exists()


def undone_succeeded(compensation_workflow: str, inputs: dict[str, Any]) -> set[str]:
    """The steps that succeeded in the run a compensation run undoes, read from that run's own step
    records (its id is in the input; a run of another workflow, or none, has nothing to undo)."""
    run_id = undone_run(inputs)
    if run_id is None or not compensation_workflow.endswith(SUFFIX):
        return set()
    try:
        run_uuid = uuid.UUID(run_id)
    except ValueError:
        return set()
    workflow = compensation_workflow[: -len(SUFFIX)]
    steps = StepRun.objects.filter(
        run_id=run_uuid, run__workflow__name=workflow, status=RunStatus.SUCCEEDED
    ).values_list("name", flat=True)
    return set(steps)


def compensation_of(run_id: Any) -> WorkflowRun | None:
    """The run undoing `run_id`, if one was started."""
    return WorkflowRun.objects.filter(idempotency_key=compensation_key(run_id)).first()


def compensate_missed(*, limit: int = SWEEP_BATCH) -> int:
    """Start the compensation of the runs that failed in the last hour, declare one but have none, and
    have no step still running: the process that failed the step died before asking, or a parallel
    step was still running when the run failed (asked again once it settled). Returns how many started.
    A run with nothing to undo is looked at again on each pass until it leaves the horizon."""
    now = timezone.now()
    undone = WorkflowRun.objects.filter(idempotency_key=Concat(Value("compensate:"), OuterRef("id")))
    active = StepRun.objects.filter(run_id=OuterRef("id"), status__in=RunStatus.ACTIVE)
    missed = (
        WorkflowRun.objects.filter(
            status=RunStatus.FAILED,
            finished_at__gte=now - SWEEP_HORIZON,
            version__definition__has_key="compensation",
        )
        .exclude(Exists(undone))
        .exclude(Exists(active))
        .order_by("finished_at")
        .values_list("id", flat=True)[:limit]
    )
    started = 0
    for run_id in missed:
        try:
            started += compensate(run_id, reason="a step failed") is not None
        except Exception:  # noqa: BLE001 - one run must not hold up the others
            logger.exception("run %s: compensation not started; the next pass tries again", run_id)
    return started
