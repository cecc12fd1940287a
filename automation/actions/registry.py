"""The registry of action types: a plain store keyed by type, refusing duplicates.

`automation.actions.task.action` fills it; the validator, the executor and the docs read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from automation.actions.context import ActionContext
from automation.discovery import import_task_modules

ActionFunction = Callable[[ActionContext, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class ActionSpec:
    action_type: str
    task_name: str
    params: type[BaseModel]
    function: ActionFunction
    description: str = ""
    #: Acts on the outside world: takes a slot of `max_concurrent_actions` and waits for the disk before
    #: it acts. Engine-internal actions (waits, approvals) do neither.
    external: bool = True
    #: The fields of its output, for the docs (`name note`, e.g. "json (when the answer is JSON)").
    outputs: tuple[str, ...] = ()
    #: A change kind (`automation.incidents.choices.ChangeKind`): each step of it is recorded as a change of
    #: the service its `service_name` parameter names, before it acts (root-cause analysis weighs it).
    changes: str = ""


_ACTIONS: dict[str, ActionSpec] = {}


def register(spec: ActionSpec) -> None:
    if spec.action_type in _ACTIONS:
        raise ValueError(f"An action named '{spec.action_type}' is already registered")
    _ACTIONS[spec.action_type] = spec


def get_action(action_type: str) -> ActionSpec | None:
    if action_type not in _ACTIONS:
        _load_task_modules()
    return _ACTIONS.get(action_type)


def known_action_types() -> list[str]:
    _load_task_modules()
    return sorted(_ACTIONS)


def all_actions() -> list[ActionSpec]:
    _load_task_modules()
    return [_ACTIONS[name] for name in sorted(_ACTIONS)]


def _load_task_modules() -> None:
    import_task_modules()
