"""Actions that misbehave on purpose, loaded by the test workers (`--include tests.slow_actions`)."""

from __future__ import annotations

import time
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel, ConfigDict

from automation.actions import ActionContext, action


class StubbornParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float


@action("testing.stubborn", params=StubbornParams)
def stubborn(ctx: ActionContext, params: StubbornParams) -> dict[str, Any]:
    """Ignores its soft time limit, so only the hard limit (the pool killing it) stops it."""
    deadline = time.monotonic() + params.seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except SoftTimeLimitExceeded:
            pass
    return {}


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = None
    seconds: float = 0
    append_nul: bool = False


@action("testing.echo", params=EchoParams)
def echo(ctx: ActionContext, params: EchoParams) -> dict[str, Any]:
    """Returns `value` (after `seconds`): outputs that are hard to store, slow steps to cancel."""
    time.sleep(params.seconds)
    return {"value": f"{params.value}\x00" if params.append_nul else params.value}


class CrashParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@action("testing.crash", params=CrashParams)
def crash(ctx: ActionContext, params: CrashParams) -> dict[str, Any]:
    """Kills the process executing it, every time: the step must fail, not go from worker to worker."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
    return {}


class TallyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    seconds: float = 0


@action("testing.tally", params=TallyParams)
def tally(ctx: ActionContext, params: TallyParams) -> dict[str, Any]:
    """Counts each start and each finish of its (run, step) in the broker's Redis under `key`: a step
    killed midway and run again shows two starts, whatever the engine's guard makes of its outcome."""
    import os

    import redis

    client = redis.Redis.from_url(os.environ["AUTOMATION_BROKER_URL"])
    member = f"{ctx.run_id}:{ctx.step}"
    try:
        client.hincrby(f"{params.key}:starts", member, 1)
        time.sleep(params.seconds)
        client.hincrby(f"{params.key}:finishes", member, 1)
    finally:
        client.close()
    return {}
