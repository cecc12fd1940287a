"""The ml domain's errors: a model or dataset that cannot be used, naming the parameter at fault."""

from __future__ import annotations

from automation.errors import ActionError


class ModelError(ActionError):
    """A model file or dataset cannot be used (missing, a format whose loading runs code, a column
    absent). Not retried unless `retryable`; `field` names the parameter."""

    def __init__(self, message: str, *, field: str | None = None, retryable: bool = False) -> None:
        super().__init__(f"{field}: {message}" if field else message, retryable=retryable)
        self.field = field


class BelowThreshold(ModelError):
    """The model scores below its acceptance threshold: the step fails, not retried, nothing deploys."""
