"""Steering running runs from outside: cancellation (the run's queued messages are revoked)."""

from __future__ import annotations

from typing import Any

from automation.models import StepRun, WorkflowRun
from automation.runs import services


def cancel(run_id: Any, *, reason: str = "cancelled by request") -> WorkflowRun:
    run = services.cancel_run(run_id, reason=reason)
    task_ids = list(StepRun.objects.filter(run_id=run_id).values_list("task_id", flat=True))
    from automation.celery import app

    # Courtesy only: a message that escapes revocation finds its run cancelled and does nothing.
    app.control.revoke(task_ids)
    return run
