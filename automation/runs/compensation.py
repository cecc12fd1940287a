"""Starting the run that undoes a run (its workflow's `<name>.compensation`, see
automation/definitions/compensation.py): once per run undone, whoever asks first (the executor when a
step fails for good, a remediation whose verification failed, a sweep that finds one not started)."""

from __future__ import annotations

import logging
from typing import Any

from automation.choices import RunStatus
from automation.definitions.compensation import COMPENSATION_INPUT, compensation_input
from automation.errors import IdempotencyConflict
from automation.models import StepRun, WorkflowRun
from automation.runs.dispatch import enqueue_run
from automation.runs.documents import stored_workflow

logger = logging.getLogger("automation.compensation")


def compensation_key(run_id: Any) -> str:
    return f"compensate:{run_id}"


def compensate(run_id: Any, *, reason: str) -> WorkflowRun | None:
    """Start (once) the run undoing `run_id`'s succeeded steps, in reverse order; None when its workflow
    declares no compensation or none of the steps that declare one succeeded. A failed run is undone for
    its own error whoever asks, so every caller asks with the same inputs."""
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
        reason = run.error or reason
    record = compensation_input(
        run_id=str(run.pk), workflow=document["name"], reason=reason, succeeded=succeeded
    )
    inputs = {**{k: v for k, v in run.inputs.items() if k != COMPENSATION_INPUT}, COMPENSATION_INPUT: record}
    try:
        undo, created = enqueue_run(str(name), inputs, idempotency_key=compensation_key(run.pk))
    except IdempotencyConflict as exc:  # asked before for another reason: that run undoes it
        return WorkflowRun.objects.filter(pk=exc.run_id).first()
    if created:
        logger.warning("run %s undone by run %s (%s): %s", run.pk, undo.pk, name, reason)
    return undo


def compensation_of(run_id: Any) -> WorkflowRun | None:
    """The run undoing `run_id`, if one was started."""
    return WorkflowRun.objects.filter(idempotency_key=compensation_key(run_id)).first()
