"""Scaling targets: validated, their scale workflow registered, then stored (all or none).

A `celery` target's scale workflow runs on the `critical` queue (never the queue it scales, which the
definition refuses to be `critical`: a flooded queue must not delay its own scale-up), with a step
timeout that outlasts the departing workers' warm shutdown (`ScalingTargetDefinition.scale_timeout`)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.choices import Priority
from automation.config import current_config
from automation.definitions.registry import register_definition
from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition
from automation.errors import DefinitionError, NotFoundError
from automation.models import ScalingState, ScalingTarget
from automation.scaling.choices import TargetKind
from automation.scaling.definitions import MAX_TARGETS, ScalingTargetDefinition, workflow_name
from automation.scaling.worker_services import SCALE_RUN_MARGIN, declared_grace_period


def scale_workflow(definition: ScalingTargetDefinition) -> WorkflowDefinition:
    """The one-step workflow each scale decision starts with its `replicas`."""
    workers = definition.kind == TargetKind.CELERY
    return WorkflowDefinition(
        name=workflow_name(definition.name),
        description=f"scale {definition.service} for scaling target {definition.name}",
        inputs={"replicas": InputDefinition(type="integer", description="replicas to run")},
        # A worker pool's scale run goes to `critical`, ahead of the steps on the queue it scales.
        priority=Priority.CRITICAL if workers else Priority.NORMAL,
        actions=[
            ActionDefinition(
                name="scale",
                action_type="infrastructure.scale_service",
                parameters={
                    "service_name": definition.service,
                    "provider": definition.provider,
                    "replicas": "${replicas}",
                },
                timeout_seconds=definition.scale_timeout,
            )
        ],
    )


def declared_service_problems(definition: ScalingTargetDefinition) -> list[tuple[str, str]]:
    """A celery target on the `local` provider against its service as the services file on this host
    declares it: a grace period longer than the scale run waits for would have the run time out while a
    departing worker finishes its step. Nothing to say when the file is not readable here."""
    if definition.kind != TargetKind.CELERY or definition.provider != "local":
        return []
    declared = declared_grace_period(definition.service)
    allowed = (definition.scale_timeout or 0) - SCALE_RUN_MARGIN
    if declared is None or declared <= allowed:
        return []
    field = "pool.grace_period" if definition.worker_pool.grace_period is not None else "service"
    return [
        (
            field,
            f"the services file gives '{definition.service}' a grace period of {declared:g} s; the scale "
            f"run waits at most {allowed:g} s for departing workers: declare the service with "
            f"grace_period at most {allowed:g} (worker_services(..., grace_period=...))"
            + (" or raise pool.grace_period" if field == "pool.grace_period" else ""),
        )
    ]


def save_target(raw: ScalingTargetDefinition | dict[str, Any], *, where: str = "") -> ScalingTarget:
    """Store a target (new, or a new definition of the same name) and register its scale workflow.
    DefinitionError naming the field when anything is wrong: then nothing is stored."""
    definition = (
        raw if isinstance(raw, ScalingTargetDefinition) else ScalingTargetDefinition.parse(raw, where=where)
    )
    prefix = f"{where}." if where else ""
    declared = declared_service_problems(definition)
    if declared:
        raise DefinitionError([(prefix + path, reason) for path, reason in declared])
    with transaction.atomic():
        try:
            register_definition(scale_workflow(definition), current_config())
        except DefinitionError as exc:
            raise DefinitionError([(f"{prefix}service", reason) for _, reason in exc.errors]) from None
        before = ScalingTarget.objects.filter(name=definition.name).values_list("document", flat=True).first()
        target, _ = ScalingTarget.objects.update_or_create(
            name=definition.name,
            defaults={
                "kind": definition.kind,
                "service": definition.service,
                "provider": definition.provider,
                "policy": definition.policy,
                "document": definition.as_document(),
                "enabled": definition.enabled,
            },
        )
        ScalingState.objects.get_or_create(target=target)
        audit.record(
            "scaling_target.saved", "scaling_target", target.name, before=before, after=target.document
        )
    return target


def save_targets(raws: list[Any]) -> list[ScalingTarget]:
    """Store several targets atomically: one bad target stores none. Every target's errors are reported
    together, each naming `targets[i]...`; a name given twice is refused."""
    if len(raws) > MAX_TARGETS:
        raise DefinitionError([("targets", f"{len(raws)} targets; at most {MAX_TARGETS} in one document")])
    errors: list[tuple[str, str]] = []
    definitions: list[ScalingTargetDefinition] = []
    for i, raw in enumerate(raws):
        try:
            definition = ScalingTargetDefinition.parse(raw, where=f"targets[{i}]")
        except DefinitionError as exc:
            errors.extend(exc.errors)
            continue
        if any(d.name == definition.name for d in definitions):
            errors.append((f"targets[{i}].name", f"a second target named '{definition.name}'"))
        errors.extend(
            (f"targets[{i}].{path}", reason) for path, reason in declared_service_problems(definition)
        )
        definitions.append(definition)
    if errors:
        raise DefinitionError(errors)
    with transaction.atomic():
        return [save_target(d, where=f"targets[{i}]") for i, d in enumerate(definitions)]


def delete_target(name: str) -> None:
    """Delete a target, its state and its decision log (its scale workflow and runs stay)."""
    with transaction.atomic():
        before = ScalingTarget.objects.filter(name=name).values_list("document", flat=True).first()
        deleted, _ = ScalingTarget.objects.filter(name=name).delete()
        if not deleted:
            raise NotFoundError(f"scaling target '{name[:200]}' does not exist")
        audit.record("scaling_target.deleted", "scaling_target", name, before=before)


def target_definition(target: ScalingTarget) -> ScalingTargetDefinition:
    return ScalingTargetDefinition.model_validate(target.document)


def get_target(name: str) -> ScalingTarget:
    target = ScalingTarget.objects.filter(name=name).first()
    if target is None:
        raise NotFoundError(f"scaling target '{name[:200]}' does not exist")
    return target
