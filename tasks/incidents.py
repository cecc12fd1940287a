"""Incident jobs driven by Beat: auto-resolve, for the open incidents whose alerts all resolved and stayed
resolved for `AutomationConfig.incident_resolve_hold`; and the escalation tick, which pages the levels of
escalation policies as they fall due (also nudged for one escalation when its incident opens); and guarded
remediation: the decision of one remediation (sent when its alert fires), and the follow job that judges
runs, verifies fixes and rolls back those that did not work."""

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


@app.task(name="automation.incidents.remediate", acks_late=True)
def remediate(pk: int) -> dict[str, Any]:
    """Decide remediation `pk` now: refused by a guard, notify only, waiting for an approval, or its run
    started. A redelivered message finds it decided and does nothing."""
    from automation.incidents.services.remediations import start

    decided = start(int(pk), time.time())
    if decided is None:
        return {"remediation": pk, "decided": False}
    return {"remediation": pk, "status": decided.status, "guard": decided.guard, "run_id": decided.run_id}


@app.task(name="automation.incidents.follow_remediations", acks_late=True)
def follow_remediations(now: float | None = None) -> dict[str, int]:
    """Judge the remediations' runs, verify their fixes, roll back and escalate those that did not work,
    and send again the starts whose message was lost. Each transition is guarded by the row's status."""
    from automation.incidents.services.verification import follow

    at = float(now) if isinstance(now, int | float) else time.time()
    return follow(at)
