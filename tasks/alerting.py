"""Alerting jobs driven by Beat: the evaluation tick (one task per rule, spread over workers), the
notification-group flush, and the retention of pushed samples."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from automation.celery import app
from automation.delivery import MONITORING_QUEUE


@app.task(name="automation.alerting.evaluate", acks_late=True)
def evaluate() -> int:
    """Send one `evaluate_rule` per enabled rule, all at the same evaluation time; returns how many."""
    from automation.models import AlertRule

    now = time.time()
    names = list(AlertRule.objects.filter(enabled=True).values_list("name", flat=True))
    for name in names:
        evaluate_rule.apply_async((name, now), queue=MONITORING_QUEUE)
    return len(names)


@app.task(name="automation.alerting.evaluate_rule", acks_late=True)
def evaluate_rule(name: str, now: float | None = None) -> dict[str, Any]:
    """Evaluate one rule at `now` (a redelivered message evaluates the same time: same transitions)."""
    from automation.alerting.services.evaluation import evaluate_rule as run
    from automation.alerting.services.evaluation import rule_source
    from automation.models import AlertRule

    rule = AlertRule.objects.filter(name=str(name), enabled=True).first()
    if rule is None:
        return {"rule": name, "skipped": "no such enabled rule"}
    at = float(now) if isinstance(now, int | float) else time.time()
    return asdict(run(rule, at, rule_source(rule)))


@app.task(name="automation.alerting.flush_groups", acks_late=True)
def flush_groups() -> int:
    """Send the notifications that are due (group_wait, group_interval, repeat_interval)."""
    from automation.alerting.services.ticks import flush_tick

    return flush_tick(time.time())


@app.task(name="automation.alerting.purge_samples")
def purge_samples() -> dict[str, int]:
    """Drop pushed samples older than the retention (48 h unless the alerting document says otherwise),
    and the notification log, settled alerts and expired silences older than 30 days."""
    from automation.alerting.services.config import current_document
    from automation.alerting.services.retention import purge_history
    from automation.alerting.services.samples import purge

    now = time.time()
    return {"samples": purge(now - current_document().retention), **asdict(purge_history(now))}
