"""Typed errors of the automation engine; each carries the field or position at fault."""

from __future__ import annotations


class AutomationError(Exception):
    """Base of every error this package raises on purpose."""


def _split_pair(text: str) -> tuple[str, str]:
    path, _, reason = text.partition(": ")
    return path, reason


class InvalidFieldsError(AutomationError):
    """Input was refused; `errors` lists (field path, reason) pairs."""

    def __init__(self, errors: list[tuple[str, str]] | str) -> None:
        if isinstance(errors, str):  # rebuilt from its message (Celery's JSON result backend does that)
            errors = [_split_pair(part) for part in errors.split("; ")]
        self.errors = [(str(path), str(reason)) for path, reason in errors]
        # The message is the only argument: a client reading a task's outcome without this package
        # installed gets an exception of the same name with this message.
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


class IdempotencyConflict(StateError):
    """An idempotency key already names a run of this workflow with other inputs; `run_id` is that run."""

    _PREFIX = "idempotency key '"
    _MIDDLE = "' was already used with other inputs by run "

    def __init__(self, run_id: str, idempotency_key: str | None = None) -> None:
        if idempotency_key is None and run_id.startswith(self._PREFIX):  # rebuilt from its message
            idempotency_key, _, run_id = run_id.removeprefix(self._PREFIX).rpartition(self._MIDDLE)
        self.run_id = str(run_id)
        self.idempotency_key = str(idempotency_key)
        super().__init__(f"{self._PREFIX}{self.idempotency_key}{self._MIDDLE}{self.run_id}")


class ConfigurationError(InvalidFieldsError):
    """Engine or broker configuration is invalid (e.g. a countdown beyond the visibility timeout)."""


class SourceError(AutomationError):
    """A metric source could not answer (unreachable, refused, bad answer); the message names the source's
    host and the query, never its credentials. `retryable` says whether asking again may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
