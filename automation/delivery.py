"""What every layer agrees on about messages: task names, queues, time limits under the visibility timeout.

A leaf module: it imports nothing of this project, so the compiler, the executor, the settings and the
monitoring jobs can all depend on it without cycles.
"""

from __future__ import annotations

import uuid

#: Priority queues a workflow's steps run on, most urgent first.
PRIORITY_QUEUE_NAMES: tuple[str, ...] = ("critical", "high", "default", "low")
#: Where a plain `Celery(broker=URL).send_task(...)` from another service lands.
INTAKE_QUEUE = "celery"
#: The queue Beat sends the engine's own monitoring jobs to.
MONITORING_QUEUE = "critical"

#: Seconds kept between an action's hard time limit and the broker's visibility timeout.
VISIBILITY_MARGIN = 30
#: Seconds between the soft time limit (the action is told to stop) and the hard one (it is killed).
SOFT_LIMIT_LEAD = 15

#: The entry point other services call by name.
RUN_WORKFLOW_TASK = "automation.run_workflow"
ACTION_TASK_PREFIX = "automation.action."

_TASK_ID_NAMESPACE = uuid.UUID("6f1c3f0e-2a4b-4a53-9a57-7d0f2b1e6c11")


def action_task_name(action_type: str) -> str:
    """The Celery task name of an action type ("http.request" -> "automation.action.http.request")."""
    return f"{ACTION_TASK_PREFIX}{action_type}"


def step_task_id(run_id: str, step: str) -> str:
    """Stable Celery task id of a step: revoking, tracing and deduplication all key on it."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, f"{run_id}:{step}"))


def soft_time_limit(timeout: float) -> float:
    """`timeout_seconds` is the hard limit; the action is told to stop a little earlier."""
    return timeout - min(SOFT_LIMIT_LEAD, timeout / 5)


def longest_time_limit(visibility_timeout: float) -> float:
    """The longest hard time limit an action may have under this visibility timeout."""
    return visibility_timeout - VISIBILITY_MARGIN
