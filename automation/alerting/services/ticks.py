"""A whole tick in the foreground (`automation rules evaluate --once`, the engine's `evaluate_alerts`):
every enabled rule at one time, then the due notifications."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from automation.alerting.services.evaluation import evaluate_rule, rule_source
from automation.alerting.services.groups import flush_all
from automation.errors import SourceError
from automation.models import AlertRule


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
    if flush:
        flush_all(at)
    return reports
