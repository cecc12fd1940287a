"""What an action's function receives besides its parameters, and how it asks to be resumed later."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Defer(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by an action to be executed again after `countdown` seconds, without counting an attempt.

    `state` is kept on the step and handed back as `ctx.state` on the next execution.
    """

    def __init__(self, countdown: float, *, state: dict[str, Any] | None = None, reason: str = "") -> None:
        super().__init__(reason or f"deferred for {countdown:.1f}s")
        self.countdown = countdown
        self.state = state
        self.reason = reason


@dataclass
class ActionContext:
    run_id: str
    step: str
    action_type: str
    attempt: int
    #: Stable per run and step: send it as the `Idempotency-Key` header of any outside call.
    idempotency_key: str
    state: dict[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
