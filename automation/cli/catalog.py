"""The catalogue of built-in action types, rendered from the action registry (the README's actions table)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from pydantic import BaseModel, HttpUrl
from pydantic.fields import FieldInfo

from automation.providers.base import RestartResult, ScaleResult

#: What each action's output holds. The registry declares parameters (a pydantic model) but not outputs:
#: the infrastructure ones are the provider's result shapes, the others are written here.
OUTPUTS: dict[str, tuple[str, ...] | type] = {
    "infrastructure.restart_service": RestartResult,
    "infrastructure.scale_service": ScaleResult,
    "notification.webhook": ("status_code", "host", "idempotency_key"),
    "http.request": ("status_code", "headers", "text", "json (when the answer is JSON)"),
    "control.wait": ("waited_seconds",),
    "control.approval": ("decision", "decided_by", "comment"),
}

_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    HttpUrl: "URL",
    typing.Any: "any",
}


def type_name(annotation: Any) -> str:
    """A parameter's type in the words of a YAML or JSON author: `number or null`, `list of string`."""
    if annotation in _NAMES:
        return _NAMES[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "object" if not args or args[1] is typing.Any else f"object of {type_name(args[1])}"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, list) and len(value) > 4:
        return f"`[{json.dumps(value[0])}, …, {json.dumps(value[-1])}]`"
    return f"`{json.dumps(value)}`"


def parameters(params: type[BaseModel]) -> list[str]:
    """`name` (type) = default, one per parameter in declaration order, named as authors write them."""
    described = []
    for name, field in params.model_fields.items():
        kind = type_name(field.annotation)
        shown = f"`{field.alias or name}`"
        described.append(
            f"{shown} ({kind}, required)" if field.is_required() else f"{shown} ({kind}) = {_default(field)}"
        )
    return described


def outputs(action_type: str) -> str:
    declared = OUTPUTS.get(action_type)
    if declared is None:
        return "(not documented)"
    names = [f.name for f in dataclasses.fields(declared)] if isinstance(declared, type) else declared
    shown = []
    for entry in names:
        name, _, note = entry.partition(" ")
        shown.append(f"`{name}` {note}".rstrip())
    return ", ".join(shown)


def builtin_actions() -> list[Any]:
    """The registry's built-in action specs (those declared in `tasks/`), sorted by type."""
    from automation.actions.registry import BUILTIN_ACTION_MODULES, get_action, known_action_types

    specs = [get_action(action_type) for action_type in known_action_types()]
    return [spec for spec in specs if spec is not None and spec.function.__module__ in BUILTIN_ACTION_MODULES]


def actions_markdown() -> str:
    """The README's actions table: type, parameters (type, default), output."""
    lines = ["| type | parameters | output |", "|---|---|---|"]
    for spec in builtin_actions():
        cell = "<br>".join(parameters(spec.params))
        described = (
            f"`{spec.action_type}`<br>{spec.description}" if spec.description else f"`{spec.action_type}`"
        )
        lines.append(f"| {described} | {cell} | {outputs(spec.action_type)} |")
    return "\n".join(lines) + "\n"
