"""The job Beat sends for a workflow schedule (automation/timetables): start the slot's run."""

from __future__ import annotations

import time
from typing import Any

from automation.celery import app


@app.task(name="automation.schedules.run_workflow", acks_late=True)
def run_workflow(schedule: str, period: float = 60.0, now: float | None = None, **_: Any) -> str | None:
    """Start the run of `schedule`'s slot at `now` (Beat's send time; the worker's clock otherwise), with
    the workflow and inputs stored for it."""
    from automation.timetables.services import fire_stored

    at = float(now) if isinstance(now, int | float) else time.time()
    return fire_stored(str(schedule), float(period), at)
