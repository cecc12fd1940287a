"""Alerting jobs driven by Beat: the evaluation tick (one task per batch of rules that read the same
metrics, spread over workers), the notification-group flush, and the retention of pushed samples."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

from automation.celery import app
from automation.delivery import MONITORING_QUEUE

logger = logging.getLogger("automation.alerting")


@app.task(name="automation.alerting.evaluate", acks_late=True)
def evaluate(now: float | None = None) -> int:
    """Send one `evaluate_rules` per batch of enabled rules (services/ticks.py `tick_batches`), all at the
    same evaluation time (`now`, default the current time); returns how many rules."""
    from automation.alerting.services.ticks import enabled_rules, tick_batches
    from automation.config import current_config

    at = float(now) if isinstance(now, int | float) else time.time()
    skipped: list[dict[str, str]] = []
    rules = enabled_rules(skipped)
    if skipped:  # every tick: an operator must fix or delete them (the reason is logged once per version)
        names = ", ".join(report["rule"] for report in skipped)
        logger.warning("alerting: %d stored rule(s) no longer valid, not evaluated: %s", len(skipped), names)
    # A batch not taken within one interval is dropped: the next tick evaluates later data anyway.
    expires = float(current_config().monitoring_interval)
    for batch in tick_batches(rules):
        evaluate_rules.apply_async(
            ([rule.name for rule in batch], at), queue=MONITORING_QUEUE, expires=expires
        )
    return len(rules)


@app.task(name="automation.alerting.evaluate_rules", acks_late=True)
def evaluate_rules(names: list[str], now: float | None = None) -> dict[str, Any]:
    """Evaluate a batch of rules at `now` (a redelivered message evaluates the same time: same
    transitions); the rules' push reads share one load. Returns counts, the transitions and the errors."""
    from automation.alerting.services.evaluation import evaluate_rules as run
    from automation.alerting.services.evaluation import load_rules

    at = float(now) if isinstance(now, int | float) else time.time()
    skipped: list[dict[str, str]] = []
    rules = load_rules(skipped, name__in=[str(name) for name in names], enabled=True)
    reports = [*run(rules, at), *skipped]
    summary: dict[str, Any] = {"rules": len(reports), "series": 0, "fired": [], "resolved": [], "pending": []}
    errors: dict[str, str] = {}
    for report in reports:
        if "error" in report:
            errors[report["rule"]] = report["error"]
            continue
        summary["series"] += report["series"]
        for kind in ("fired", "resolved", "pending"):
            summary[kind] += report[kind]
    return {**summary, "errors": errors}


@app.task(name="automation.alerting.evaluate_rule", acks_late=True)
def evaluate_rule(name: str, now: float | None = None) -> dict[str, Any]:
    """Evaluate one rule at `now` (a redelivered message evaluates the same time: same transitions)."""
    from automation.alerting.services.evaluation import compile_error, rule_source
    from automation.alerting.services.evaluation import evaluate_rule as run
    from automation.models import AlertRule

    rule = AlertRule.objects.filter(name=str(name), enabled=True).first()
    if rule is None:
        return {"rule": name, "skipped": "no such enabled rule"}
    error = compile_error(rule)
    if error is not None:
        return {"rule": name, "error": f"stored rule invalid, not evaluated: {error}"}
    at = float(now) if isinstance(now, int | float) else time.time()
    source = rule_source(rule)
    try:
        return asdict(run(rule, at, source))
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


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
