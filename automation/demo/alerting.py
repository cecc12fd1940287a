"""The demo's second part: pushed latency crosses a rule, the alert fires, is grouped with another one in
a single chat message, and starts the restart workflow, once; then the notification log says why."""

from __future__ import annotations

import time
from typing import Any

import click

LATENCY_RULE = "demo_high_latency"
ERRORS_RULE = "demo_error_ratio"


def alerting_document(chat_url: str) -> dict[str, Any]:
    return {
        "route": {"receiver": "chat", "group_by": ["service"], "group_wait": "0s", "group_interval": "1m"},
        "receivers": [{"name": "chat", "slack": {"url": chat_url}}],
    }


def rules() -> list[dict[str, Any]]:
    return [
        {
            "name": LATENCY_RULE,
            "condition": 'request_latency_seconds{service="spotify-api"} > 0.5 AND duration > 2m',
            "severity": "medium",
            "annotations": {"summary": "spotify-api answers slowly"},
            "cooldown_period": "10m",
            "workflow": {"name": "demo_restart", "inputs": {"service": "${alert.labels.service}"}},
        },
        {
            "name": ERRORS_RULE,
            "condition": 'http_error_ratio{service="spotify-api"} > 0.05',
            "severity": "low",
        },
    ]


def run_alerting_demo(engine: Any, wait_for_run: Any) -> int:
    """Push three minutes of samples, evaluate once, follow the run the alert started; 0 when all went as
    described."""
    from automation.models import Alert

    now = time.time()
    click.echo("\nalerting: the latency of spotify-api stays above 0.5 s for three minutes")
    engine.push_samples(
        "request_latency_seconds", {"service": "spotify-api"}, [(now - s, 0.9) for s in range(180, -1, -15)]
    )
    engine.push_samples(
        "http_error_ratio", {"service": "spotify-api"}, [(now - s, 0.08) for s in range(60, -1, -15)]
    )
    report = engine.evaluate_alerts(now)
    latency, errors = report[LATENCY_RULE], report[ERRORS_RULE]
    click.echo(
        f"evaluated: {LATENCY_RULE} fired {len(latency['fired'])} "
        f"(started run {', '.join(latency['runs'])}), {ERRORS_RULE} fired {len(errors['fired'])}; "
        "both in one group (service=spotify-api)"
    )
    again = engine.evaluate_alerts(now + 15)
    click.echo(
        f"evaluated again: fired {len(again[LATENCY_RULE]['fired'])}, no second run (one run per firing)"
    )
    if len(latency["runs"]) != 1 or again[LATENCY_RULE]["runs"]:
        return 1
    if wait_for_run(latency["runs"][0]) != "succeeded":
        return 1
    alert = Alert.objects.get(fingerprint=latency["fired"][0])
    click.echo(f"automation alerts why {alert.fingerprint}:")
    for entry in alert.log.all():
        extra = f" run {entry.run_id}" if entry.run_id else ""
        click.echo(f"  {entry.decision:<17} {entry.receiver or '-':<5}{extra} {entry.detail}".rstrip())
    return 0


def apply_demo_rules(chat_url: str) -> None:
    from automation.alerting.services.config import apply_document
    from automation.alerting.services.groups import forget
    from automation.alerting.services.rules import save_rules

    apply_document(alerting_document(chat_url))
    save_rules(rules())
    forget([LATENCY_RULE, ERRORS_RULE])  # a demo run before this one left its alerts firing
