"""The Celery task class every action type runs as; the step executor does its bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Task

from automation.actions.registry import ActionSpec
from automation.celery import app
from automation.errors import ConfigurationError, StepFailed


def check_countdown(countdown: float | None) -> None:
    """Redis redelivers a delayed message still unacknowledged after the visibility timeout: refuse those."""
    from django.conf import settings

    if countdown is not None and countdown >= settings.VISIBILITY_TIMEOUT:
        raise ConfigurationError([(
            "countdown",
            f"{countdown:.0f} s is not below the broker visibility timeout ({settings.VISIBILITY_TIMEOUT} s)",
        )])


class GuardedTask(Task):
    """Refuses a countdown or ETA beyond the broker visibility timeout (Redis would deliver it twice).

    Retries are unlimited at this level: the step executor counts attempts itself, and deferrals
    (waits, approvals, a full semaphore) are retries that are not attempts.
    """

    max_retries = None

    def apply_async(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, task_id: Any = None, **options: Any
    ) -> Any:
        countdown = options.get("countdown")
        eta = options.get("eta")
        if eta is not None:
            countdown = (eta - datetime.now(eta.tzinfo or UTC)).total_seconds()
        check_countdown(countdown)
        return super().apply_async(args, kwargs, task_id, **options)


class ActionTask(GuardedTask):
    """Base of action tasks: at-least-once delivery, outcomes recorded by the step executor."""

    acks_late = True
    reject_on_worker_lost = True
    typing = False
    spec: ActionSpec
    # An expected outcome, already recorded on the step: logged without a traceback.
    throws = (StepFailed,)

    def run(self, upstream: Any = None, *, run_id: str, step: str, **_: Any) -> dict[str, Any]:
        from automation.runs.executor import execute_step

        return execute_step(self, self.spec, upstream, run_id, step)


def register_action_task(spec: ActionSpec) -> ActionTask:
    task_class = type(
        f"{spec.action_type.replace('.', '_')}_task",
        (ActionTask,),
        {"name": spec.task_name, "spec": spec, "__doc__": spec.description, "__module__": __name__},
    )
    task: ActionTask = app.register_task(task_class())
    return task
