"""Alert rules: validated (the condition parsed), their remediation workflows registered, then stored."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.alerting.choices import AlertOrigin, AlertState
from automation.alerting.definitions import RuleDefinition
from automation.alerting.remediation import remediation_workflows
from automation.alerting.services.alerts import expire
from automation.alerting.services.pipeline import on_resolved
from automation.config import current_config
from automation.definitions.registry import register_definition
from automation.errors import DefinitionError, NotFoundError
from automation.models import Alert, AlertRule


def _check_condition(definition: RuleDefinition, field: str) -> None:
    if definition.condition is not None:
        from automation.alerting.rules import parse_rule

        parse_rule(definition.condition, field=field)


def save_rule(raw: RuleDefinition | dict[str, Any], *, where: str = "") -> AlertRule:
    """Store a rule (a new one, or a new definition of the same name). DefinitionError naming the field
    (the condition's column) when anything is wrong: then nothing is stored, workflows included."""
    definition = raw if isinstance(raw, RuleDefinition) else RuleDefinition.parse(raw, where=where)
    _check_condition(definition, f"{where}.condition" if where else "condition")
    with transaction.atomic():
        try:
            for workflow in remediation_workflows(definition):
                register_definition(workflow, current_config())
        except DefinitionError as exc:
            raise DefinitionError(_rule_errors(exc, definition, where)) from None
        before = AlertRule.objects.filter(name=definition.name).values_list("document", flat=True).first()
        rule, _ = AlertRule.objects.update_or_create(
            name=definition.name,
            defaults={
                "source": definition.source,
                "severity": definition.severity.value,
                "document": definition.as_document(),
                "enabled": True,
            },
        )
        audit.record("rule.saved", "alert_rule", rule.name, before=before, after=rule.document)
    return rule


def _rule_errors(exc: DefinitionError, definition: RuleDefinition, where: str) -> list[tuple[str, str]]:
    """A remediation workflow's errors named as the rule's fields. The direct workflow (registered first)
    has the rule's actions in their order, so `actions[1].parameters.url` is the rule's own path; its
    `action_type` is the rule's `type`. A workflow-calling rule's errors are its `workflow`'s."""
    prefix = f"{where}." if where else ""
    found = []
    for path, reason in exc.errors:
        if definition.workflow is not None or not path.startswith("actions["):
            path = "workflow" if definition.workflow is not None else "actions"
        elif path.endswith(".action_type"):
            path = path.removesuffix(".action_type") + ".type"
        found.append((prefix + path, reason))
    return found


def save_rules(raws: list[Any]) -> list[AlertRule]:
    """Store several rules atomically: one bad rule stores none. The errors of every rule are reported
    together, each naming `rules[i]...`; a name given twice is refused."""
    errors: list[tuple[str, str]] = []
    definitions: list[RuleDefinition] = []
    for i, raw in enumerate(raws):
        try:
            definition = RuleDefinition.parse(raw, where=f"rules[{i}]")
            _check_condition(definition, f"rules[{i}].condition")
        except DefinitionError as exc:
            errors.extend(exc.errors)
            continue
        if any(d.name == definition.name for d in definitions):
            errors.append((f"rules[{i}].name", f"a second rule named '{definition.name}'"))
        definitions.append(definition)
    if errors:
        raise DefinitionError(errors)
    with transaction.atomic():
        return [save_rule(d, where=f"rules[{i}]") for i, d in enumerate(definitions)]


def delete_rule(name: str, *, now: float | None = None) -> None:
    """Delete a rule; its firing alerts resolve first (notified as resolved), so none is left firing
    with no evaluator to end it."""
    rule = AlertRule.objects.filter(name=name).first()
    if rule is None:
        raise NotFoundError(f"alert rule '{name}' does not exist")
    at = time.time() if now is None else now
    active = Alert.objects.filter(rule=rule, origin=AlertOrigin.RULE, state__in=AlertState.ACTIVE)
    for fingerprint in active.values_list("fingerprint", flat=True):
        transition = expire(fingerprint, at)
        if transition is not None and transition.after == AlertState.RESOLVED:
            on_resolved(transition.alert, at)
    with transaction.atomic():
        audit.record("rule.deleted", "alert_rule", name, before=rule.document)
        rule.delete()


def rule_definition(rule: AlertRule) -> RuleDefinition:
    return RuleDefinition.model_validate(rule.document)
