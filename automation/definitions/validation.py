"""Checks that need the action registry, run at registration; returns the normalized, storable document.

Normalized means: dotted action types, explicit `depends_on`, the engine's default timeout and retries
filled in, and inputs declared (inferred from the references when the author declared none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from automation.actions.registry import get_action, known_action_types
from automation.conditions import ConditionError, parse_condition
from automation.definitions.compensation import COMPENSATION_INPUT, compensation_name
from automation.definitions.schema import ActionDefinition, WorkflowDefinition, field_path
from automation.delivery import longest_time_limit
from automation.errors import DefinitionError, InputError
from automation.templating import TemplateError, has_references, iter_references


@dataclass(frozen=True)
class Defaults:
    timeout_seconds: int = 300
    retry_attempts: int = 3
    visibility_timeout: int = 3600


def _dag_order(names: list[str], deps: Mapping[str, list[str]]) -> list[str] | list[str | None]:
    """Topological order, or [None, *cycle] when there is a cycle."""
    state: dict[str, int] = {}
    order: list[str] = []
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in deps[node]:
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        order.append(node)
        return None

    for name in names:
        if name not in state:
            cycle = visit(name)
            if cycle:
                return [None, *cycle]
    return order


def ancestors_of(deps: Mapping[str, list[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}

    def walk(node: str) -> set[str]:
        if node not in result:
            found: set[str] = set()
            for dep in deps[node]:
                found.add(dep)
                found |= walk(dep)
            result[node] = found
        return result[node]

    for node in deps:
        walk(node)
    return result


def _check_parameters(prefix: str, spec_params: Any, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    templated = {key for key, value in parameters.items() if has_references(value)}
    try:
        spec_params.model_validate(parameters)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # A templated value's type is only known at run time; it is checked again then.
            if loc and loc[0] in templated and err["type"] != "extra_forbidden":
                continue
            errors.append((f"{prefix}.parameters.{field_path(loc)}".rstrip("."), err["msg"]))
        return errors
    return []


def _check_compensation(
    act: ActionDefinition,
    prefix: str,
    declared: Mapping[str, Any] | None,
    defaults: Defaults,
    max_timeout: int,
    errors: list[tuple[str, str]],
) -> dict[str, Any] | None:
    """The normalized `compensate` block of a step (None without one); its faults go to `errors`."""
    block = act.compensate
    if block is None:
        return None
    prefix = f"{prefix}.compensate"
    spec = get_action(block.action_type)
    if spec is None:
        errors.append((f"{prefix}.action_type", f"unknown action type '{block.action_type}'"))
    else:
        errors.extend(_check_parameters(prefix, spec.params, block.parameters))
    try:
        references = list(iter_references(block.parameters))
    except TemplateError as exc:
        errors.append((f"{prefix}.parameters", str(exc)))
        references = []
    for rel, ref in references:
        where = f"{prefix}.parameters{rel}"
        if ref.step is not None:
            errors.append((where, f"use ${{{COMPENSATION_INPUT}.outputs.{ref.step}...}}: a compensation "
                                  "runs apart from the steps it undoes"))
        elif ref.input != COMPENSATION_INPUT and declared is not None and ref.input not in declared:
            errors.append((where, f"unknown input '{ref.input}'"))
    timeout = block.timeout_seconds or defaults.timeout_seconds
    if timeout > max_timeout:
        errors.append((f"{prefix}.timeout_seconds", f"{timeout} s: at most {max_timeout} s"))
    return {
        "action_type": block.action_type,
        "parameters": block.parameters,
        "timeout_seconds": timeout,
        "retry_attempts": defaults.retry_attempts if block.retry_attempts is None else block.retry_attempts,
        "description": block.description,
    }


def nul_paths(value: Any, path: str) -> list[str]:
    """Where `value` holds a NUL character, which PostgreSQL cannot store in text or JSON."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            p for key, item in value.items() for p in nul_paths(key, path) + nul_paths(item, f"{path}.{key}")
        ]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in nul_paths(item, f"{path}[{i}]")]
    return []


def validate_definition(definition: WorkflowDefinition, defaults: Defaults | None = None) -> dict[str, Any]:
    defaults = defaults or Defaults()
    errors: list[tuple[str, str]] = [
        (path.lstrip("."), "contains a NUL character") for path in nul_paths(definition.to_document(), "")
    ]
    if errors:
        raise DefinitionError(errors)
    actions = definition.actions
    names = [a.name for a in actions]
    index_of: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index_of:
            errors.append((f"actions[{i}].name", f"duplicate step name '{name}'"))
        index_of.setdefault(name, i)

    deps: dict[str, list[str]] = {}
    for i, act in enumerate(actions):
        if act.depends_on is None:
            deps[act.name] = [names[i - 1]] if i else []
            continue
        deps[act.name] = []
        for dep in act.depends_on:
            if dep == act.name:
                errors.append((f"actions[{i}].depends_on", f"step '{dep}' cannot depend on itself"))
            elif dep not in index_of:
                errors.append((f"actions[{i}].depends_on", f"unknown step '{dep}'"))
            elif dep not in deps[act.name]:
                deps[act.name].append(dep)
    if errors:
        raise DefinitionError(errors)
    order = _dag_order(names, deps)
    if order and order[0] is None:
        cycle = [str(n) for n in order[1:]]
        raise DefinitionError([(f"actions[{index_of[cycle[0]]}].depends_on", "cycle " + " -> ".join(cycle))])
    upstream = ancestors_of(deps)

    declared = definition.inputs
    referenced_inputs: dict[str, str] = {}
    normalized_actions = []
    max_timeout = int(longest_time_limit(defaults.visibility_timeout))
    for i, act in enumerate(actions):
        prefix = f"actions[{i}]"
        action_type = act.resolved_type
        spec = get_action(action_type)
        if spec is None:
            hint = ", ".join(known_action_types())
            errors.append((f"{prefix}.action_type", f"unknown action type '{action_type}' (known: {hint})"))
        else:
            errors.extend(_check_parameters(prefix, spec.params, act.parameters))
        try:
            references = list(iter_references(act.parameters))
        except TemplateError as exc:
            errors.append((f"{prefix}.parameters", str(exc)))
            references = []
        for rel, ref in references:
            where = f"{prefix}.parameters{rel}"
            if ref.input is not None:
                if declared is not None and ref.input not in declared:
                    errors.append((where, f"unknown input '{ref.input}'"))
                referenced_inputs.setdefault(ref.input, where)
            elif ref.step is not None:
                if ref.step not in index_of:
                    errors.append((where, f"unknown step '{ref.step}'"))
                elif ref.step not in upstream[act.name]:
                    errors.append((where, f"step '{ref.step}' is not upstream of '{act.name}'"))
        timeout = act.timeout_seconds or defaults.timeout_seconds
        if timeout > max_timeout:
            errors.append(
                (
                    f"{prefix}.timeout_seconds",
                    f"{timeout} s leaves no room under the broker visibility timeout "
                    f"({defaults.visibility_timeout} s); at most {max_timeout} s",
                )
            )
        compensate = _check_compensation(act, prefix, declared, defaults, max_timeout, errors)
        normalized_actions.append(
            {
                **({"compensate": compensate} if compensate is not None else {}),
                **({"compensates": act.compensates} if act.compensates else {}),
                "name": act.name,
                "action_type": action_type,
                "parameters": act.parameters,
                "timeout_seconds": timeout,
                "retry_attempts": defaults.retry_attempts
                if act.retry_attempts is None
                else act.retry_attempts,
                "depends_on": deps[act.name],
                "description": act.description,
            }
        )

    condition_inputs: list[str] = []
    for i, text in enumerate(definition.conditions):
        try:
            condition = parse_condition(text)
        except ConditionError as exc:
            errors.append((f"conditions[{i}]", str(exc)))
            continue
        if declared is not None and condition.input_name not in declared:
            errors.append((f"conditions[{i}]", f"unknown input '{condition.input_name}'"))
        condition_inputs.append(condition.input_name)
    if errors:
        raise DefinitionError(errors)

    if declared is not None:
        inputs = {name: spec.model_dump(mode="json") for name, spec in declared.items()}
    else:
        inputs = {
            name: {"type": "any", "required": True, "default": None, "secret": False, "description": ""}
            for name in referenced_inputs
        }
        for name in condition_inputs:
            inputs.setdefault(
                name, {"type": "any", "required": False, "default": None, "secret": False, "description": ""}
            )
    compensated = any("compensate" in a for a in normalized_actions)
    return {
        **({"compensation": compensation_name(definition.name)} if compensated else {}),
        "name": definition.name,
        "description": definition.description,
        "priority": definition.priority.value,
        "conditions": list(definition.conditions),
        "inputs": inputs,
        "inputs_declared": declared is not None,
        "actions": normalized_actions,
    }


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def resolve_inputs(document: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check run inputs against the stored document; return them with defaults applied."""
    given = dict(given or {})
    declared: Mapping[str, Mapping[str, Any]] = document["inputs"]
    errors: list[tuple[str, str]] = []
    resolved: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
            allowed = _TYPES.get(spec["type"])
            wrong_bool = spec["type"] in ("integer", "number") and isinstance(value, bool)
            if allowed and (not isinstance(value, allowed) or wrong_bool):
                errors.append((f"inputs.{name}", f"must be of type {spec['type']}"))
            resolved[name] = value
        elif spec.get("default") is not None:
            resolved[name] = spec["default"]
        elif spec.get("required", True):
            errors.append((f"inputs.{name}", "required input is missing"))
    errors.extend((path, "contains a NUL character") for path in nul_paths(given, "inputs"))
    for name, value in given.items():
        if name not in declared:
            if document.get("inputs_declared"):
                errors.append((f"inputs.{name}", "not an input of this workflow"))
            else:
                resolved[name] = value
    if errors:
        raise InputError(errors)
    return resolved
