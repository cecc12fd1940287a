"""Action types: each is one Celery task, declared with `@action`, run through the step executor."""

from automation.actions.context import ActionContext, Defer
from automation.actions.registry import ActionSpec, get_action, known_action_types
from automation.actions.task import action

__all__ = ["ActionContext", "ActionSpec", "Defer", "action", "get_action", "known_action_types"]
