"""Incident jobs driven by Beat: auto-resolve, for the open incidents whose alerts all resolved and stayed
resolved for `AutomationConfig.incident_resolve_hold`; and the escalation tick, which pages the levels of
escalation policies as they fall due (also nudged for one escalation when its incident opens)."""

from __future__ import annotations

import time
from typing import Any

from automation.celery import app
from automation.incidents.escalation import ESCALATE_TASK


@app.task(name="automation.incidents.auto_resolve", acks_late=True)
def auto_resolve(now: float | None = None) -> list[int]:
    """Resolve the incidents quiet for the hold time at `now` (default the current time); their ids. A
    redelivered message finds them resolved and does nothing."""
    from automation.config import current_config
    from automation.incidents.services.transitions import auto_resolve as run

    at = float(now) if isinstance(now, int | float) else time.time()
    return run(at, current_config().incident_resolve_hold)


@app.task(name=ESCALATE_TASK, acks_late=True)
def escalate(now: float | None = None, ids: list[int] | None = None) -> dict[str, Any]:
    """Page the escalation levels due at `now` (default the current time) and stop the escalations of
    incidents someone took; only escalations `ids` when given. A second tick, or this message delivered
    again, finds those pages stored and sends none of them again. Returns the steps taken."""
    from automation.incidents.services.escalations import tick

    at = float(now) if isinstance(now, int | float) else time.time()
    chosen = [int(i) for i in ids if isinstance(i, int)] if isinstance(ids, list) else None
    steps = tick(at, chosen)
    return {"escalations": len(steps), "steps": steps}
