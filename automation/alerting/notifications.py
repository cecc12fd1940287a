"""Receivers as delivery workflows: each receiver of the alerting document is a one-step workflow
`receiver.<name>` whose step is the receiver kind's notification action, its settings fixed, the message
taken from the run's `notification` input (built here from a group's alerts). A delivery is thus an engine
step: retried, once per run and step, with an Idempotency-Key (or Message-ID) of its own.

`log` (definitions.LOG_RECEIVER) is the built-in receiver that only writes the notification log.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from automation.alerting.choices import AlertState
from automation.alerting.definitions import ReceiverDefinition
from automation.alerting.receivers.alertmanager import NOT_ENDED, common, rfc3339
from automation.alerting.receivers.pagerduty import PAGERDUTY_SEVERITY
from automation.choices import AlertSeverity
from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition

#: Receiver kind -> (action type, parameters taken from the notification input).
_DELIVERY: dict[str, tuple[str, dict[str, Any]]] = {
    "slack": ("notification.webhook", {"text": "${notification.text}"}),
    "webhook": (
        "notification.alertmanager_webhook",
        {
            "receiver": "${notification.payload.receiver}",
            "status": "${notification.payload.status}",
            "alerts": "${notification.payload.alerts}",
            "groupLabels": "${notification.payload.groupLabels}",
            "groupKey": "${notification.payload.groupKey}",
            "commonLabels": "${notification.payload.commonLabels}",
            "commonAnnotations": "${notification.payload.commonAnnotations}",
        },
    ),
    "pagerduty": (
        "notification.pagerduty",
        {
            "event_action": "${notification.pagerduty_action}",
            "dedup_key": "${notification.group_key}",
            "payload": {
                "summary": "${notification.summary}",
                "severity": "${notification.pagerduty_severity}",
                "source": "${notification.source}",
                "custom_details": "${notification.details}",
            },
        },
    ),
    "email": ("notification.email", {"subject": "${notification.summary}", "text": "${notification.text}"}),
}


def receiver_workflow_name(receiver: str) -> str:
    return f"receiver.{receiver}"


def receiver_workflow(receiver: ReceiverDefinition) -> WorkflowDefinition:
    action_type, message = _DELIVERY[receiver.kind]
    return WorkflowDefinition(
        name=receiver_workflow_name(receiver.name),
        description=f"deliver a notification to receiver {receiver.name} ({receiver.kind})",
        actions=[
            ActionDefinition(
                name="deliver", action_type=action_type, parameters={**receiver.settings, **message}
            )
        ],
        inputs={"notification": InputDefinition(type="object", description="built by the alerting pipeline")},
    )


def _iso(value: datetime | None) -> str:
    return rfc3339(value) if value else rfc3339(NOT_ENDED)


#: Bytes of alert content one notification carries at most (a delivery run's inputs are bounded at 64 KiB;
#: the payload and the text both list the alerts). The rest is counted in `truncatedAlerts`, as
#: Alertmanager's `max_alerts` does.
ALERT_BUDGET = 24_000


def _within_budget(alerts: list[Any]) -> list[Any]:
    carried: list[Any] = []
    used = 0
    for alert in alerts:
        size = len(json.dumps([alert.labels, alert.annotations], default=str)) + 160
        if carried and used + size > ALERT_BUDGET:
            break
        carried.append(alert)
        used += size
    return carried


def notification_content(group: Any, alerts: list[Any], sequence: int) -> dict[str, Any]:
    """The `notification` input of a delivery run: the Alertmanager webhook payload of the group, and the
    text, summary and PagerDuty fields derived from it."""
    firing = [a for a in alerts if a.state == AlertState.FIRING]
    status = "firing" if firing else "resolved"
    labels = [dict(a.labels) for a in alerts]
    carried = _within_budget(firing + [a for a in alerts if a.state != AlertState.FIRING])
    payload = {
        "version": "4",
        "groupKey": group.key,
        "truncatedAlerts": len(alerts) - len(carried),
        "status": status,
        "receiver": group.receiver,
        "groupLabels": dict(group.group_labels),
        "commonLabels": common(labels),
        "commonAnnotations": common([dict(a.annotations) for a in alerts]),
        "externalURL": "",
        "alerts": [
            {
                "status": "firing" if a.state == AlertState.FIRING else "resolved",
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": _iso(a.fired_at),
                "endsAt": _iso(a.resolved_at if a.state != AlertState.FIRING else None),
                "generatorURL": "",
                "fingerprint": a.fingerprint,
            }
            for a in carried
        ],
    }
    names = sorted({a.name for a in alerts})
    group_text = ", ".join(f"{k}={v}" for k, v in sorted(group.group_labels.items()) if v)
    summary = f"[{status.upper()}:{len(firing)}] {', '.join(names)[:600]}" + (
        f" ({group_text})" if group_text else ""
    )
    lines = [summary]
    for a in carried:
        value = "" if a.value is None else f" value={a.value:g}"
        text_labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        lines.append(f"- {a.state} {a.name}{value} {{{text_labels}}}")
    if len(carried) < len(alerts):
        lines.append(f"... and {len(alerts) - len(carried)} more (truncated)")
    worst = min((a.severity for a in alerts), key=_rank, default=AlertSeverity.MEDIUM.value)
    return {
        "payload": payload,
        "text": "\n".join(lines),
        "summary": summary[:1024],
        "status": status,
        "group_key": group.key,
        "sequence": sequence,
        "source": "automation",
        "pagerduty_action": "trigger" if firing else "resolve",
        "pagerduty_severity": PAGERDUTY_SEVERITY.get(worst, "warning"),
        "details": {"alerts": len(alerts), "firing": len(firing), "group": dict(group.group_labels)},
    }


def _rank(severity: str) -> int:
    order = [s.value for s in AlertSeverity]
    return order.index(severity) if severity in order else len(order)
