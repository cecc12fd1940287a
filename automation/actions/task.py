"""The Celery task classes of the engine, and `@action`, which declares an action type as one task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Task, states
from celery.signals import task_postrun
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import BaseModel
from redis.exceptions import RedisError

from automation.actions.registry import ActionFunction, ActionSpec, register
from automation.celery import app
from automation.delivery import TASK_TIME_LIMIT, action_task_name, parse_step_task_id
from automation.delivery import soft_time_limit as soft_limit_of
from automation.errors import ConfigurationError, StepFailed

#: What a publish raises when the broker is unreachable (kombu wraps most, not all, of Redis's errors).
BROKER_ERRORS = (KombuOperationalError, RedisError, ConnectionError, TimeoutError)


def check_countdown(countdown: float | None) -> None:
    """Redis redelivers a delayed message still unacknowledged after the visibility timeout: refuse those."""
    from django.conf import settings

    if countdown is not None and countdown >= settings.VISIBILITY_TIMEOUT:
        raise ConfigurationError([(
            "countdown",
            f"{countdown:.0f} s is not below the broker visibility timeout ({settings.VISIBILITY_TIMEOUT} s)",
        )])


class GuardedTask(Task[Any, Any]):
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
    # A step's message names its limits only when they differ from these (the compiler leaves them out).
    time_limit = TASK_TIME_LIMIT
    soft_time_limit = int(soft_limit_of(TASK_TIME_LIMIT))
    # A step's output is stored once, in PostgreSQL, by its completion: no copy in the result backend (a
    # GET, a SETEX and a PUBLISH per step that nothing reads). Failures (the pool's kill at a hard time
    # limit among them: the recovery job settles such a step from that record) and retries are still
    # recorded there, and the compiler keeps the results of a chord header Celery joins from the backend.
    ignore_result = True
    store_errors_even_if_ignored = True
    spec: ActionSpec
    # An expected outcome, already recorded on the step: logged without a traceback.
    throws = (StepFailed,)

    def run(
        self,
        upstream: Any = None,
        *,
        run_id: str = "",
        step: str = "",
        gen: int = 0,
        prev: str = "",
        done: Any = None,
        **_: Any,
    ) -> dict[str, Any]:
        """Run the step its task id names ("<run id>:<step>"); explicit `run_id` and `step` win."""
        # Imported here, not at the top: the executor reaches the models, which exist only once Django is
        # set up, and Celery imports task modules before that.
        from automation.runs.executor import execute_step, record_pending_completion

        record_pending_completion()  # one a previous task of this thread left (none unless it broke off)
        if not (run_id and step):
            named = parse_step_task_id(str(self.request.id or ""))
            if named is None:
                raise StepFailed(f"task id {self.request.id!r} names no run and step", retryable=False)
            run_id, step = named
        return execute_step(self, self.spec, upstream, run_id, step, generation=gen, previous=prev, done=done)

    def after_return(self, status: str, *args: Any, **kwargs: Any) -> None:
        """Celery sent this step's successors (or failed to): its completion is recorded now, before its
        message is acknowledged (see automation/runs/executor.py)."""
        from automation.runs.executor import record_pending_completion

        recorded = record_pending_completion()
        if recorded is not None and status != states.SUCCESS and recorded.run_id is not None:
            # Its successors may not have gone out (a refused publish marked the run already).
            from automation.runs.handoff import note_unsent

            note_unsent(recorded.run_id)

    def apply_async(  # type: ignore[override]
        self, args: Any = None, kwargs: Any = None, task_id: Any = None, **options: Any
    ) -> Any:
        """Every message of a step goes through here: a run's first canvas, a finished step's successors
        (sent by the worker that ran it), a chord's join (sent by its last branch). When the broker
        refuses the message, the run is marked for the recovery job to send again on its next pass."""
        try:
            return super().apply_async(args, kwargs, task_id, **options)
        except BROKER_ERRORS:
            from automation.runs.executor import record_pending_completion

            # The step whose successor this is completes first: the recovery job then sends what follows it.
            record_pending_completion()
            named = parse_step_task_id(str(task_id or ""))
            run_id = (kwargs or {}).get("run_id") or (named[0] if named else None)
            if run_id:
                from automation.runs.handoff import note_unsent

                note_unsent(run_id)
            raise


def _completion_left_pending(sender: Any = None, **_: Any) -> None:
    """After every task (the tracer sends this in a `finally`): a completion still pending means Celery
    failed between sending the step's successors and `after_return` (a chord's report to its join, say).
    It is recorded before the message is acknowledged, and the run marked: what follows may not have
    gone out."""
    if not isinstance(sender, ActionTask):
        return
    from automation.runs.executor import record_pending_completion

    recorded = record_pending_completion()
    if recorded is not None and recorded.run_id is not None:
        from automation.runs.handoff import note_unsent

        note_unsent(recorded.run_id)


task_postrun.connect(_completion_left_pending, weak=False)


def action(
    action_type: str,
    *,
    params: type[BaseModel],
    external: bool = True,
    outputs: tuple[str, ...] = (),
    changes: str = "",
) -> Callable[[ActionFunction], ActionFunction]:
    """Declare `action_type` (e.g. "notification.webhook") as a Celery task running the decorated function.
    `changes`: a change kind recorded on the `service_name` parameter's service by each step of it."""
    if action_type.count(".") != 1 or not all(action_type.split(".")):
        raise ValueError(f"action type '{action_type}' must be FAMILY.OPERATION")
    if changes and "service_name" not in params.model_fields:
        raise ValueError(f"action type '{action_type}' records changes but has no `service_name` parameter")

    def decorate(function: ActionFunction) -> ActionFunction:
        spec = ActionSpec(
            action_type=action_type,
            task_name=action_task_name(action_type),
            params=params,
            function=function,
            description=(function.__doc__ or "").strip().split("\n")[0],
            external=external,
            outputs=outputs,
            changes=changes,
        )
        register(spec)
        task_class = type(
            f"{action_type.replace('.', '_')}_task",
            (ActionTask,),
            {"name": spec.task_name, "spec": spec, "__doc__": spec.description, "__module__": __name__},
        )
        app.register_task(task_class())
        return function

    return decorate
