"""The workflows an alert rule starts, built from its definition (no I/O).

A rule with `actions` gets two workflows: `alert.<name>` runs the actions; `alert.<name>.gated` runs them
behind a `control.approval` step (the automation level decides which one a firing starts). A rule naming
an existing `workflow` starts it directly, or through `alert.<name>.gated`: an approval, then
`workflow.start`. Every one takes the input `alert` ({name, fingerprint, labels, annotations, value,
severity, starts_at}), so parameters may say `${alert.labels.service}` or `${alert.value}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from automation.alerting.definitions import RuleDefinition
from automation.alerting.matchers import matches_all
from automation.choices import AlertSeverity, AutomationLevel
from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition

APPROVAL_STEP = "approve"
_STEP_CHARS = re.compile(r"[^A-Za-z0-9_\-]")
#: Severities whose runs wait for an approval at level `semi_autonomous`.
GATED_SEVERITIES = (AlertSeverity.HIGH.value, AlertSeverity.CRITICAL.value)


def outside_remediate_when(rule: RuleDefinition, labels: Mapping[str, str]) -> str | None:
    """Why an alert with these labels may not start the rule's remediation (its `remediate_when`), or None."""
    if not rule.remediate_when or matches_all(rule.remediate_when, labels):
        return None
    shown = ", ".join(str(m) for m in rule.remediate_when)
    return f"labels outside the rule's remediate_when ({shown}): notify only"


def in_cooldown(last_run_at: float | None, now: float, cooldown: float) -> bool:
    """Whether a run for this alert started less than `cooldown` seconds ago (then no new run starts)."""
    return bool(cooldown) and last_run_at is not None and now - last_run_at < cooldown


def is_gated(level: AutomationLevel, severity: str) -> bool:
    """Whether a firing's run waits for an approval: always at `supervised`, for high and critical alerts
    at `semi_autonomous`, never at `autonomous` (at `manual` no run starts at all)."""
    return level == AutomationLevel.SUPERVISED or (
        level == AutomationLevel.SEMI_AUTONOMOUS and severity in GATED_SEVERITIES
    )


def run_workflow_name(rule: RuleDefinition, *, gated: bool) -> str:
    """The workflow a firing of `rule` starts: the gated one, the rule's own `workflow`, or its actions."""
    if gated:
        return gated_name(rule.name)
    return rule.workflow.name if rule.workflow is not None else direct_name(rule.name)


def direct_name(rule: str) -> str:
    return f"alert.{rule}"


def gated_name(rule: str) -> str:
    return f"alert.{rule}.gated"


def _inputs(extra: dict[str, InputDefinition] | None = None) -> dict[str, InputDefinition]:
    return {"alert": InputDefinition(type="object", description="the alert that fired"), **(extra or {})}


def _approval(rule: RuleDefinition) -> ActionDefinition:
    return ActionDefinition(
        name=APPROVAL_STEP,
        action_type="control.approval",
        depends_on=[],
        parameters={"message": f"alert {rule.name} (${{alert.fingerprint}}) fired: approve the remediation"},
    )


def _steps(rule: RuleDefinition, *, after: str | None) -> list[ActionDefinition]:
    steps: list[ActionDefinition] = []
    used: set[str] = {APPROVAL_STEP}
    for i, act in enumerate(rule.actions):
        # A step name from the type: `notification.webhook` -> `webhook` (anything a step name cannot
        # hold becomes `_`, so a bad type is reported as a bad type, not as a bad step name).
        name = act.name or _STEP_CHARS.sub("_", act.type.split(".")[-1])[:90] or "action"
        if not name[0].isalpha() and name[0] != "_":
            name = f"_{name}"[:90]
        if name in used:
            name = f"{name}_{i + 1}"
        used.add(name)
        depends_on: list[str] | None = None
        if i == 0:
            depends_on = [after] if after else []
        steps.append(
            ActionDefinition(
                name=name,
                action_type=act.action_type,
                parameters=act.parameters,
                timeout_seconds=act.timeout_seconds,
                retry_attempts=act.retry_attempts,
                depends_on=depends_on,
            )
        )
    return steps


def remediation_workflows(rule: RuleDefinition) -> list[WorkflowDefinition]:
    description = f"remediation of alert rule {rule.name}"
    if rule.actions:
        return [
            WorkflowDefinition(
                name=direct_name(rule.name),
                description=description,
                actions=_steps(rule, after=None),
                inputs=_inputs(),
            ),
            WorkflowDefinition(
                name=gated_name(rule.name),
                description=f"{description}, behind an approval",
                actions=[_approval(rule), *_steps(rule, after=APPROVAL_STEP)],
                inputs=_inputs(),
            ),
        ]
    if rule.workflow is not None:
        start = ActionDefinition(
            name="start",
            action_type="workflow.start",
            depends_on=[APPROVAL_STEP],
            parameters={"workflow": rule.workflow.name, "inputs": "${call_inputs}"},
        )
        return [
            WorkflowDefinition(
                name=gated_name(rule.name),
                description=f"start {rule.workflow.name} once approved ({description})",
                actions=[_approval(rule), start],
                inputs=_inputs({"call_inputs": InputDefinition(type="object")}),
            )
        ]
    return []


def alert_context(alert: Any) -> dict[str, Any]:
    """The `alert` input of a remediation run, from a stored Alert."""
    return {
        "name": alert.name,
        "fingerprint": alert.fingerprint,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "value": alert.value,
        "severity": alert.severity,
        "starts_at": alert.fired_at.isoformat() if alert.fired_at else None,
    }
