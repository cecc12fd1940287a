"""The registry of action types, filled by the `@action` decorator; it refuses duplicates."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from automation.actions.context import ActionContext

ActionFunction = Callable[[ActionContext, Any], dict[str, Any] | None]

#: Modules of the `tasks` package that declare the built-in action types.
BUILTIN_ACTION_MODULES = (
    "tasks.infrastructure",
    "tasks.notification",
    "tasks.http",
    "tasks.control",
)


@dataclass(frozen=True)
class ActionSpec:
    action_type: str
    task_name: str
    params: type[BaseModel]
    function: ActionFunction
    description: str = ""
    #: Acts on the outside world: takes a step lease and a slot of `max_concurrent_actions`. Engine-internal
    #: actions (waits, approvals) do neither; running one twice at once has no effect outside the engine.
    external: bool = True


_ACTIONS: dict[str, ActionSpec] = {}


def task_name_for(action_type: str) -> str:
    return f"automation.action.{action_type}"


def action(
    action_type: str, *, params: type[BaseModel], external: bool = True
) -> Callable[[ActionFunction], ActionFunction]:
    """Declare `action_type` (e.g. "notification.webhook") as a Celery task running the decorated function."""
    from automation.actions.task import register_action_task

    if action_type.count(".") != 1 or not all(action_type.split(".")):
        raise ValueError(f"action type '{action_type}' must be FAMILY.OPERATION")

    def decorate(function: ActionFunction) -> ActionFunction:
        if action_type in _ACTIONS:
            raise ValueError(f"An action named '{action_type}' is already registered")
        spec = ActionSpec(
            action_type=action_type,
            task_name=task_name_for(action_type),
            params=params,
            function=function,
            description=(function.__doc__ or "").strip().split("\n")[0],
            external=external,
        )
        _ACTIONS[action_type] = spec
        register_action_task(spec)
        return function

    return decorate


def load_builtin_actions() -> None:
    for module in BUILTIN_ACTION_MODULES:
        importlib.import_module(module)


def get_action(action_type: str) -> ActionSpec | None:
    if action_type not in _ACTIONS:
        load_builtin_actions()
    return _ACTIONS.get(action_type)


def known_action_types() -> list[str]:
    load_builtin_actions()
    return sorted(_ACTIONS)
