"""Monitoring jobs driven by Beat: recovery every few seconds, slower sweeps every `monitoring_interval`."""

from __future__ import annotations

from typing import Any

from automation.celery import app


@app.task(name="automation.monitoring.recover_runs")
def recover_runs() -> dict[str, Any]:
    """Send again the runs that lost messages: broker data loss, refused publishes, dead workers,
    parked steps long overdue."""
    from dataclasses import asdict

    from automation.runs.recovery import recover_runs as recover

    return asdict(recover())


@app.task(name="automation.monitoring.redispatch_stalled_runs")
def redispatch_stalled_runs() -> int:
    """Mark for sending again the runs whose steps stopped moving for far longer than they may take."""
    from automation.runs.recovery import redispatch_stalled

    return redispatch_stalled()


@app.task(name="automation.monitoring.settle_lost_steps")
def settle_lost_steps() -> int:
    """Fail steps killed at their hard time limit (Celery's record says so); run again the internal
    steps whose completion was lost."""
    from automation.runs.recovery import settle_lost_steps as settle

    return settle()


@app.task(name="automation.monitoring.add_up_finished")
def add_up_finished() -> int:
    """Add the finished runs and steps to the metric tallies, so a scrape never reads the whole tables."""
    from automation.runs.tallies import add_up

    return add_up()


@app.task(name="automation.monitoring.compensate_failed_runs")
def compensate_failed_runs() -> int:
    """Start the compensation of failed runs that declare one, have none and have no step still running
    (their worker died between failing the step and asking, or a parallel step still ran when the run
    failed): once per run, by its key."""
    from automation.runs.compensation import compensate_missed

    return compensate_missed()
