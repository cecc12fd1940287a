"""Alert rules: validated (the condition parsed), their remediation workflows registered, then stored."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.alerting.definitions import RuleDefinition
from automation.alerting.remediation import remediation_workflows
from automation.config import current_config
from automation.definitions.registry import register_definition
from automation.errors import NotFoundError
from automation.models import AlertRule


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
        for workflow in remediation_workflows(definition):
            register_definition(workflow, current_config())
        rule, _ = AlertRule.objects.update_or_create(
            name=definition.name,
            defaults={
                "source": definition.source,
                "severity": definition.severity.value,
                "document": definition.as_document(),
                "enabled": True,
            },
        )
    return rule


def save_rules(raws: list[Any]) -> list[AlertRule]:
    """Store several rules atomically: one bad rule stores none (its error names `rules[i]...`)."""
    definitions = [RuleDefinition.parse(raw, where=f"rules[{i}]") for i, raw in enumerate(raws)]
    for i, definition in enumerate(definitions):
        _check_condition(definition, f"rules[{i}].condition")
    with transaction.atomic():
        return [save_rule(d) for d in definitions]


def delete_rule(name: str) -> None:
    deleted, _ = AlertRule.objects.filter(name=name).delete()
    if not deleted:
        raise NotFoundError(f"alert rule '{name}' does not exist")


def rule_definition(rule: AlertRule) -> RuleDefinition:
    return RuleDefinition.model_validate(rule.document)
