"""A whole tick in the foreground (`automation rules evaluate --once`, the engine's `evaluate_alerts`):
every enabled rule at one time, then the due notifications."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

from automation.alerting.services.evaluation import evaluate_rule, rule_source
from automation.alerting.services.groups import flush_all, record_delivery_results
from automation.alerting.services.pipeline import repair
from automation.errors import SourceError
from automation.models import AlertRule

logger = logging.getLogger("automation.alerting")


def evaluate_all(now: float | None = None, *, flush: bool = True) -> list[dict[str, Any]]:
    at = time.time() if now is None else now
    reports: list[dict[str, Any]] = []
    for rule in AlertRule.objects.filter(enabled=True).order_by("name"):
        try:
            source = rule_source(rule)
            try:
                reports.append(asdict(evaluate_rule(rule, at, source)))
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        except SourceError as exc:
            reports.append({"rule": rule.name, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the tick
            logger.exception("alerting: evaluating rule %s failed", rule.name)
            reports.append({"rule": rule.name, "error": f"{type(exc).__name__}: {exc}"})
    if flush:
        flush_tick(at)
    return reports


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
