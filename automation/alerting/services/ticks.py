"""A whole tick: every enabled rule at one time, in batches of rules that read the same metrics (the Beat
task sends one message per batch; `automation rules evaluate --once` and the engine's `evaluate_alerts`
run them in the foreground), then the due notifications."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from automation.alerting.choices import SourceKind
from automation.alerting.services.evaluation import collector_paused, compile_rule, evaluate_rules, load_rules
from automation.alerting.services.groups import flush_all, record_delivery_results
from automation.alerting.services.pipeline import repair
from automation.models import AlertRule

logger = logging.getLogger("automation.alerting")

#: Rules per batch: a batch is one message of the tick, evaluated by one worker process.
RULES_PER_BATCH = 1000


def enabled_rules(skipped: list[dict[str, str]] | None = None) -> list[AlertRule]:
    """The enabled rules by name (read whole only when not compiled yet in this process); those stored
    rules that no longer compile are left out, and reported in `skipped` (see `stored_rules`)."""
    return load_rules(skipped, enabled=True)


def _reads(rule: AlertRule) -> tuple[str, ...]:
    condition = compile_rule(rule).condition
    return tuple(sorted({s.metric for s in condition.selectors})) if condition is not None else ()


def tick_batches(rules: Sequence[AlertRule], size: int = RULES_PER_BATCH) -> list[list[AlertRule]]:
    """The rules cut into batches of at most `size`, ordered by source and the metrics they read (then by
    name), so that a batch loads few metrics and a metric is loaded by few batches."""
    ordered = sorted(rules, key=lambda r: (r.source == SourceKind.PROMETHEUS, _reads(r), r.name))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def evaluate_all(now: float | None = None, *, flush: bool = True) -> list[dict[str, Any]]:
    """Every enabled rule at `now` (default: the current time) in this process, as one batch (one load of
    each metric, one read of the active alerts); the reports in rule-name order, a stored rule that no
    longer compiles as `{"rule", "error"}`. With `flush`, the due notifications are sent afterwards."""
    at = time.time() if now is None else now
    skipped: list[dict[str, Any]] = []
    with collector_paused():
        reports = evaluate_rules(enabled_rules(skipped), at)
    if flush:
        flush_tick(at)
    return sorted([*reports, *skipped], key=lambda report: str(report["rule"])) if skipped else reports


def flush_tick(now: float) -> int:
    """What the flush job does every few seconds: take up the transitions whose pipeline never finished,
    record finished deliveries, then send the notifications that are due. Each part runs even if
    another failed."""
    for step in (repair, record_delivery_results):
        try:
            step(now)
        except Exception:  # noqa: BLE001 - one failing part must not stop the flush
            logger.exception("alerting: %s failed", step.__name__)
    return flush_all(now)
