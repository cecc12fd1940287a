"""What every layer agrees on about messages: task names, queues, time limits under the visibility timeout.

A leaf module: it imports nothing of this project, so the compiler, the executor, the settings and the
monitoring jobs can all depend on it without cycles.
"""

from __future__ import annotations

#: Priority queues a workflow's steps run on, most urgent first.
PRIORITY_QUEUE_NAMES: tuple[str, ...] = ("critical", "high", "default", "low")
#: Celery's default queue (task_default_queue): a message sent without a queue goes there.
DEFAULT_QUEUE = "default"
#: Where a plain `Celery(broker=URL).send_task(...)` from another service lands.
INTAKE_QUEUE = "celery"
#: The queue Beat sends the engine's own monitoring jobs to.
MONITORING_QUEUE = "critical"

#: Seconds kept between an action's hard time limit and the broker's visibility timeout.
VISIBILITY_MARGIN = 30
#: Seconds between the soft time limit (the action is told to stop) and the hard one (it is killed).
SOFT_LIMIT_LEAD = 15
#: The hard time limit of an action task whose message names none: the default `timeout_seconds`, so a
#: step with that limit sends none (every hop of a chain re-sends the rest of it).
TASK_TIME_LIMIT = 300

#: The entry point other services call by name.
RUN_WORKFLOW_TASK = "automation.run_workflow"
ACTION_TASK_PREFIX = "automation.action."

def action_task_name(action_type: str) -> str:
    """The Celery task name of an action type ("http.request" -> "automation.action.http.request")."""
    return f"{ACTION_TASK_PREFIX}{action_type}"


def step_task_id(run_id: str, step: str) -> str:
    """Stable Celery task id of a step, "<run id>:<step name>": revoking, tracing and deduplication all
    key on it, and a step's message needs no other arguments (every hop of a chain re-sends the rest)."""
    return f"{run_id}:{step}"


def parse_step_task_id(task_id: str) -> tuple[str, str] | None:
    """(run id, step name) of a step's task id, or None for any other id. Step names hold no colon."""
    run_id, colon, step = task_id.partition(":")
    return (run_id, step) if colon and run_id and step else None


def soft_time_limit(timeout: float) -> float:
    """`timeout_seconds` is the hard limit; the action is told to stop a little earlier."""
    return timeout - min(SOFT_LIMIT_LEAD, timeout / 5)


def longest_time_limit(visibility_timeout: float) -> float:
    """The longest hard time limit an action may have under this visibility timeout."""
    return visibility_timeout - VISIBILITY_MARGIN
