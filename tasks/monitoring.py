"""Monitoring jobs driven by Beat every `monitoring_interval` seconds."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from automation.celery import app
from automation.choices import RunStatus

#: A run created this long ago and never dispatched lost its dispatch (the enqueuer died in between).
STALLED_AFTER = timedelta(seconds=30)


@app.task(name="automation.monitoring.redispatch_stalled_runs")
def redispatch_stalled_runs() -> int:
    """Dispatch runs whose enqueuer crashed between storing them and sending their canvas."""
    from automation.models import WorkflowRun
    from automation.runs.dispatch import dispatch

    cutoff = timezone.now() - STALLED_AFTER
    stalled = WorkflowRun.objects.filter(
        status=RunStatus.PENDING, dispatched_at__isnull=True, created_at__lt=cutoff
    )[:500]
    count = 0
    for run in stalled:
        dispatch(run)
        count += 1
    return count
