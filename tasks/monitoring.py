"""Monitoring jobs driven by Beat every `monitoring_interval` seconds."""

from __future__ import annotations

from automation.celery import app


@app.task(name="automation.monitoring.redispatch_stalled_runs")
def redispatch_stalled_runs() -> int:
    """Dispatch again the runs whose steps stopped moving (a dead enqueuer, lost messages)."""
    from automation.runs.recovery import redispatch_stalled

    return redispatch_stalled()


@app.task(name="automation.monitoring.settle_lost_steps")
def settle_lost_steps() -> int:
    """Settle steps killed at their hard time limit, or whose completion was lost, from Celery's record."""
    from automation.runs.recovery import settle_lost_steps as settle

    return settle()
