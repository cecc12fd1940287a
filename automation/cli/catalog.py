"""The catalogue of built-in action types, rendered from the action registry (the README's actions table)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import AwareDatetime, BaseModel, HttpUrl, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from automation.discovery import task_modules

_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    HttpUrl: "URL",
    SecretStr: "secret string",
    AwareDatetime: "date-time with zone",
    typing.Any: "any",
}


def type_name(annotation: Any) -> str:
    """A parameter's type in the words of a YAML or JSON author: `number or null`, `list of string`."""
    if annotation in _NAMES:
        return _NAMES[annotation]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = (field.alias or name for name, field in annotation.model_fields.items())
        return f"object ({', '.join(fields)})"
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
    return f"`{json.dumps(to_jsonable_python(value))}`"


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


def outputs(declared: tuple[str, ...]) -> str:
    if not declared:
        return "(not documented)"
    shown = []
    for entry in declared:
        name, _, note = entry.partition(" ")
        shown.append(f"`{name}` {note}".rstrip())
    return ", ".join(shown)


def builtin_actions() -> list[Any]:
    """The registry's built-in action specs (those declared in `tasks/`), sorted by type."""
    from automation.actions.registry import all_actions

    return [spec for spec in all_actions() if spec.function.__module__ in task_modules()]


def actions_markdown() -> str:
    """The README's actions table: type, parameters (type, default), output."""
    lines = ["| type | parameters | output |", "|---|---|---|"]
    for spec in builtin_actions():
        cell = "<br>".join(parameters(spec.params))
        described = (
            f"`{spec.action_type}`<br>{spec.description}" if spec.description else f"`{spec.action_type}`"
        )
        lines.append(f"| {described} | {cell} | {outputs(spec.outputs)} |")
    return "\n".join(lines) + "\n"
