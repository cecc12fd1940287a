"""Typed errors of the automation engine; each carries the field or position at fault."""

from __future__ import annotations


class AutomationError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidFieldsError(AutomationError):
    """Input was refused; `errors` lists (field path, reason) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in self.errors))

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"field": path, "reason": reason} for path, reason in self.errors]


class DefinitionError(InvalidFieldsError):
    """A workflow definition is invalid."""


class InputError(InvalidFieldsError):
    """Run inputs do not satisfy the workflow (missing or unknown input)."""


class ActionError(AutomationError):
    """An action failed; `retryable` says whether a retry may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class StepFailed(ActionError):
    """Raised to Celery once a step has failed for good (recorded on the step), so the canvas stops."""


class NotFoundError(AutomationError):
    """A workflow or run that does not exist was asked for."""


class ForbiddenError(AutomationError):
    """The caller may not do this (e.g. decide an approval it is not an approver of)."""


class StateError(AutomationError):
    """The requested transition is not allowed from the current state (e.g. approving a finished step)."""


class ConfigurationError(InvalidFieldsError):
    """Engine or broker configuration is invalid (e.g. a countdown beyond the visibility timeout)."""
