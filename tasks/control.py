"""Control actions: `control.wait` and `control.approval`, both pausing without holding a worker."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from automation.actions import ActionContext, Defer, action
from automation.errors import ActionError

#: Longest single pause; a longer wait is made of several (each below the broker visibility timeout).
MAX_PAUSE = 60.0


class WaitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=7 * 24 * 3600)


@action("control.wait", params=WaitParams, external=False, outputs=("waited_seconds",))
def wait(ctx: ActionContext, params: WaitParams) -> dict[str, Any]:
    """Pause the run for `seconds`."""
    now = time.time()
    until = ctx.state.get("until") or now + params.seconds
    remaining = until - now
    if remaining <= 0:
        return {"waited_seconds": params.seconds}
    if remaining <= 1.0 and "until" not in ctx.state:
        time.sleep(remaining)
        return {"waited_seconds": params.seconds}
    raise Defer(min(remaining, MAX_PAUSE), state={"until": until}, reason=f"waiting until {until:.0f}")


class ApprovalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = ""
    approvers: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=3600, gt=0, le=30 * 24 * 3600)
    poll_seconds: float = Field(default=2.0, ge=0.1, le=MAX_PAUSE)


@action(
    "control.approval",
    params=ApprovalParams,
    external=False,
    outputs=("decision", "decided_by", "comment"),
)
def approval(ctx: ActionContext, params: ApprovalParams) -> dict[str, Any]:
    """Pause the run until a person approves or rejects it (API or CLI), or the timeout passes."""
    state = dict(ctx.state)
    decision = state.get("decision")
    if decision == "approved":
        return {
            "decision": "approved",
            "decided_by": state.get("decided_by", ""),
            "comment": state.get("comment", ""),
        }
    if decision == "rejected":
        raise ActionError(
            f"rejected by {state.get('decided_by') or 'an approver'}: {state.get('comment', '')}",
            retryable=False,
        )
    requested = state.get("requested_at")
    if requested is None:
        first = {"requested_at": time.time(), "message": params.message, "approvers": params.approvers}
        raise Defer(params.poll_seconds, state=first, reason="awaiting approval")
    if time.time() - requested >= params.timeout_seconds:
        raise ActionError(f"no decision within {params.timeout_seconds:.0f} s", retryable=False)
    raise Defer(params.poll_seconds, reason="awaiting approval")
