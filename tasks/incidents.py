"""Incident jobs driven by Beat: auto-resolve, for the open incidents whose alerts all resolved and stayed
resolved for `AutomationConfig.incident_resolve_hold`."""

from __future__ import annotations

import time

from automation.celery import app


@app.task(name="automation.incidents.auto_resolve", acks_late=True)
def auto_resolve(now: float | None = None) -> list[int]:
    """Resolve the incidents quiet for the hold time at `now` (default the current time); their ids. A
    redelivered message finds them resolved and does nothing."""
    from automation.config import current_config
    from automation.incidents.services.transitions import auto_resolve as run

    at = float(now) if isinstance(now, int | float) else time.time()
    return run(at, current_config().incident_resolve_hold)
