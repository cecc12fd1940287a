"""Compensation: the derived workflow `<name>.compensation` that undoes a run's steps (no I/O).

A step may declare `compensate:` (an action and its parameters). The engine registers, beside the
workflow, one whose steps are those compensations in the reverse of the workflow's dependency order,
each after the previous. A run of it is started (once per run undone: idempotency key
`compensate:RUN`) when a step fails for good, or when a caller asks (a remediation whose verification
failed); its input `compensation` says which run, why, which steps succeeded and their outputs, and
each step acts only when the step it undoes succeeded (`should_act`). Its steps are ordinary steps of
an ordinary run: claimed once per (run, step), so a redelivered message never undoes twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from automation.definitions.schema import ActionDefinition, InputDefinition, WorkflowDefinition

#: The input of a compensation run that describes the run being undone.
COMPENSATION_INPUT = "compensation"
SUFFIX = ".compensation"
_PREFIX = "undo_"


def compensation_name(workflow: str) -> str:
    return f"{workflow}{SUFFIX}"


def compensation_definition(document: Mapping[str, Any]) -> WorkflowDefinition | None:
    """The compensation workflow of a normalized (stored) document; None when no step declares one."""
    name = document.get("compensation")
    if not name:
        return None
    actions = list(document["actions"])
    order = _reverse_order(actions)
    steps: list[ActionDefinition] = []
    for step in order:
        block = next(a for a in actions if a["name"] == step).get("compensate")
        if block is None:
            continue
        steps.append(
            ActionDefinition(
                name=f"{_PREFIX}{step}"[:100],
                action_type=block["action_type"],
                parameters=block["parameters"],
                timeout_seconds=block["timeout_seconds"],
                retry_attempts=block["retry_attempts"],
                depends_on=[steps[-1].name] if steps else [],
                description=block.get("description") or f"undo {step}",
                compensates=step,
            )
        )
    inputs: dict[str, InputDefinition] | None = None
    if document.get("inputs_declared"):
        inputs = {key: InputDefinition(**spec) for key, spec in document["inputs"].items()}
        inputs[COMPENSATION_INPUT] = InputDefinition(type="object", description="the run being undone")
    return WorkflowDefinition(
        name=str(name),
        description=f"undo the steps of {document['name']}",
        actions=steps,
        priority=document["priority"],
        inputs=inputs,
    )


def _reverse_order(actions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The steps, dependents before what they depend on (later definition positions first among peers)."""
    deps = {a["name"]: list(a["depends_on"]) for a in actions}
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for dep in deps[node]:
            visit(dep)
        done.append(node)

    for action in actions:
        visit(action["name"])
    return done[::-1]


def compensation_input(
    *, run_id: str, workflow: str, reason: str, succeeded: Mapping[str, Any]
) -> dict[str, Any]:
    """The `compensation` input of the run that undoes `run_id`: the steps that succeeded and outputs."""
    return {
        "run": run_id,
        "workflow": workflow,
        "reason": reason[:2000],
        "succeeded": sorted(succeeded),
        "outputs": dict(succeeded),
    }


def should_act(step: Mapping[str, Any], succeeded: Collection[str]) -> str | None:
    """None when this step of a compensation run acts; else why it does nothing (the step it undoes did
    not succeed in the run being undone). `succeeded`: that run's succeeded steps, as its own step
    records say (never the run's input, which a caller could have written)."""
    undone = step.get("compensates")
    if not undone:
        return None
    if undone in succeeded:
        return None
    return f"step {undone} did not succeed in the run undone: nothing to undo"


def undone_run(inputs: Mapping[str, Any]) -> str | None:
    """The id of the run a compensation run undoes, from its `compensation` input (None: not given)."""
    record = inputs.get(COMPENSATION_INPUT)
    run = record.get("run") if isinstance(record, Mapping) else None
    return run if isinstance(run, str) and run else None


def reserved_fields(definition: WorkflowDefinition) -> list[tuple[str, str]]:
    """What a user definition may not set, being the engine's own: a name ending `.compensation` and a
    step's `compensates` (both mark the derived workflow, whose runs undo another run)."""
    errors: list[tuple[str, str]] = []
    if definition.name.endswith(SUFFIX):
        errors.append(
            (
                "name",
                f"must not end with '{SUFFIX}': the engine names the compensation workflows it derives so",
            )
        )
    for index, action in enumerate(definition.actions):
        if action.compensates:
            errors.append(
                (
                    f"actions[{index}].compensates",
                    "is set by the engine only, on the compensation workflows it derives; declare "
                    "`compensate:` on the step to undo instead",
                )
            )
    return errors


def is_compensation(workflow: str) -> bool:
    """Whether `workflow` names a derived compensation workflow (started by the engine only)."""
    return workflow.endswith(SUFFIX)
