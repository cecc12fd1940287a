"""Monitoring jobs driven by Beat every `monitoring_interval` seconds."""

from __future__ import annotations

from automation.celery import app


@app.task(name="automation.monitoring.redispatch_stalled_runs")
def redispatch_stalled_runs() -> int:
    """Dispatch runs whose enqueuer crashed between storing them and sending their canvas."""
    from automation.runs.recovery import redispatch_undispatched

    return redispatch_undispatched()


@app.task(name="automation.monitoring.settle_killed_steps")
def settle_killed_steps() -> int:
    """Fail the steps whose task was killed at its hard time limit (their bookkeeping never ran)."""
    from automation.runs.recovery import settle_killed_steps as settle

    return settle()
