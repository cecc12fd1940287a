"""Running one step: the bookkeeping around every action (guard, fleet slot, attempts, retries, outputs).

A step is guarded by (run, step) in the database, and claiming it records who executes it: a message for
a finished step hands the recorded output on without acting again; a message for a step that a live
worker is executing waits, then does the same; a message of an older generation of its run (the run was
sent again by recovery) retires.

A step with successors to send is recorded complete just after Celery sent them, before its message is
acknowledged (`record_pending_completion`, from the task's `after_return`): the successors do not wait
for that round trip to PostgreSQL. A step without successors (a sink) is recorded before it returns, and
a run succeeds only once none of its steps is running (automation/runs/services.py `complete_step`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from pydantic import ValidationError
from redis.exceptions import RedisError

from automation.actions.context import ActionContext, Defer
from automation.actions.registry import ActionSpec
from automation.choices import RunStatus
from automation.config import current_config
from automation.coordination import get_coordinator
from automation.definitions.compensation import should_act
from automation.definitions.schema import field_path
from automation.delivery import longest_time_limit
from automation.errors import ActionError, StepFailed
from automation.fleet.identity import current_claimant
from automation.incidents.services.changes import record_step_change
from automation.models import WorkflowRun
from automation.runs import services
from automation.runs.claims import Claim
from automation.runs.compensation import compensate, undone_succeeded
from automation.runs.documents import StoredWorkflow, stored_workflow
from automation.runs.services import ClaimedStep
from automation.templating import TemplateError, render

logger = logging.getLogger("automation.executor")


def merge_upstream(upstream: Any, into: dict[str, Any]) -> dict[str, Any]:
    """Outputs travel as {step: output} dicts; a chord hands over a list of them (possibly nested)."""
    if isinstance(upstream, dict):
        into.update(upstream)
    elif isinstance(upstream, list | tuple):
        for item in upstream:
            merge_upstream(item, into)
    return into


def max_countdown() -> float:
    return float(longest_time_limit(settings.VISIBILITY_TIMEOUT))


def retry_countdown(attempt: int) -> float:
    config = current_config()
    ceiling = min(config.retry_backoff_max_seconds, max_countdown())
    delay = min(ceiling, config.retry_backoff_seconds * (2 ** max(attempt - 1, 0)))
    return float(delay * random.uniform(0.5, 1.0))  # "equal jitter": spread retries of a fleet-wide failure


def describe(exc: BaseException) -> str:
    text = str(exc).replace("\x00", "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def storable(output: Any) -> Any:
    """The output as JSON that PostgreSQL stores: unknown types as text, NUL characters removed, and the
    numbers JSON cannot hold (NaN, infinities) as null."""
    return _without_nul(json.loads(json.dumps(output, default=str), parse_constant=lambda _: None))


def _without_nul(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


class _Again(Exception):  # noqa: N818 - control flow inside this module
    """Run this message again after `countdown` seconds (raised once the step's state is recorded)."""

    def __init__(self, countdown: float) -> None:
        super().__init__(countdown)
        self.countdown = countdown


def slot_seconds(task: Task[Any, Any]) -> float:
    """How long a fleet slot may be held: the action's hard time limit, plus a margin."""
    hard = (task.request.timelimit or (None, None))[0] or task.time_limit
    return float(hard) + 5 if hard else max_countdown()


def take_slot(task: Task[Any, Any], run_id: str, step: str) -> str | float:
    """A slot of `max_concurrent_actions` (its token), or the seconds to wait before asking again.

    The limit comes from the stored config, so a broker restart cannot reset it. Waiting for a slot is
    a deferral, not an attempt.
    """
    token = uuid.uuid4().hex
    try:
        taken = get_coordinator().take_slot(
            token, ttl_seconds=slot_seconds(task), limit=current_config().max_concurrent_actions
        )
    except RedisError as exc:
        logger.warning("step %s of run %s: coordination store unavailable (%s), retrying", step, run_id, exc)
        return random.uniform(1.0, 3.0)
    return token if taken else random.uniform(0.2, 1.0)


def give_back_slot(token: str) -> None:
    try:
        get_coordinator().give_back(token)
    except RedisError as exc:  # the slot expires on its own
        logger.warning("could not give back action slot %s: %s", token, exc)


class _CompletionPending(Exception):  # noqa: N818 - control flow inside this module
    """The action acted but its completion could not be recorded: the retry carries the output."""

    def __init__(self, output: Any) -> None:
        super().__init__("completion not recorded")
        self.output = output


def execute_step(
    task: Task[Any, Any],
    spec: ActionSpec,
    upstream: Any,
    run_id: str,
    step: str,
    *,
    generation: int = 0,
    previous: str = "",
    done: Any = None,
) -> dict[str, Any]:
    """Run one step once in effect. The slot is given back before any retry message is sent.

    After a database error the message is retried carrying its claim's token (`previous`): that execution
    is over, so the retry takes the claim back at once and resumes the same attempt; if the action had
    already acted, the retry carries its output too (`done`) and only records it.
    """
    context = merge_upstream(upstream, {})
    token = uuid.uuid4().hex
    slot: str | float | None = None
    retry_kwargs: dict[str, Any] | None = None
    try:
        if done is None and spec.external:
            slot = take_slot(task, run_id, step)
            if isinstance(slot, float):
                raise _Again(slot)
        claim = Claim(claimant=current_claimant(), token=token, previous=previous, generation=generation)
        later = task if sends_successors(task) else None
        return run_claimed_step(spec, uuid.UUID(run_id), step, context, claim, done, complete_later=later)
    except _Again as again:
        countdown = again.countdown
    except (OperationalError, InterfaceError, _CompletionPending) as exc:
        # Not the action's failure (a failover, a restart): this message runs again shortly.
        logger.warning("step %s of run %s: database unavailable (%s), retrying", step, run_id, describe(exc))
        connection.close()
        countdown = random.uniform(1.0, 3.0)
        retry_kwargs = {**(task.request.kwargs or {}), "prev": token}
        if isinstance(exc, _CompletionPending):
            retry_kwargs["done"] = exc.output
    finally:
        if isinstance(slot, str):
            give_back_slot(slot)
    raise task.retry(countdown=countdown, kwargs=retry_kwargs)


def run_claimed_step(
    spec: ActionSpec,
    run_id: uuid.UUID,
    step: str,
    context: dict[str, Any],
    claim: Claim,
    done: Any = None,
    *,
    complete_later: Task[Any, Any] | None = None,
) -> dict[str, Any]:
    """Claim, act, complete. `complete_later`: the task whose successors Celery sends once this returns;
    the completion of a step with successors is then left to `record_pending_completion`."""
    later = PendingCompletion.of(complete_later, claim.token) if complete_later is not None else None
    # An action acting outside must be known to have started before it acts: after a database crash the
    # step is then found running (and settled from Celery's record), never pending and run again blind.
    claimed = services.claim_step(run_id, step, claim=claim, durable=spec.external)
    if claimed is None:
        return settled_step(run_id, step, context, claim.generation)
    stored = stored_workflow(claimed.version_id)
    act = stored.actions[step]
    if done is not None:
        return completed(claimed, run_id, step, done, stored, context, durable=spec.external, later=later)
    idle = (
        should_act(act, undone_succeeded(str(stored.document["name"]), claimed.inputs))
        if act.get("compensates")
        else None
    )
    if idle is not None:  # a compensation step whose step did not succeed: recorded, nothing done
        return completed(
            claimed, run_id, step, {"skipped": idle}, stored, context, durable=spec.external, later=later
        )
    if claimed.attempt > act["retry_attempts"] + 1:
        # Only a step whose process died while executing it gets here (failures are counted below):
        # one that kills its own worker must not be given to worker after worker.
        error = f"its worker died during each of its {claimed.attempt - 1} attempt(s)"
        logger.error("step %s of run %s failed: %s", step, run_id, error)
        if services.fail_step(claimed.id, run_id=run_id, error=error) and "compensation" in stored.document:
            undo_failed_run(run_id)
        raise StepFailed(f"{step}: {error}", retryable=False)
    try:
        try:
            raw = render(act["parameters"], claimed.inputs, context)
            params = spec.params.model_validate(raw)
        except TemplateError as exc:
            raise ActionError(f"parameters: {exc}", retryable=False) from None
        except ValidationError as exc:
            reasons = "; ".join(f"parameters.{field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ActionError(reasons, retryable=False) from None
        ctx = ActionContext(
            run_id=str(run_id),
            step=step,
            action_type=act["action_type"],
            attempt=claimed.attempt,
            idempotency_key=f"{run_id}:{step}",
            state=dict(claimed.state),
            time_limit=float(act["timeout_seconds"]),
        )
        logger.debug("step %s of run %s: attempt %d of %s", step, run_id, claimed.attempt, act["action_type"])
        if spec.changes:
            record_change(spec, params, run_id, step, stored)
        output = storable(spec.function(ctx, params) or {})
    except Defer as deferral:
        countdown = min(deferral.countdown, max_countdown())
        services.defer_step(claimed.id, countdown=countdown, state=deferral.state, note=deferral.reason)
        raise _Again(countdown) from None
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of an action is recorded on its step
        error = describe(exc)
        retryable = not (isinstance(exc, ActionError) and not exc.retryable)
        if retryable and claimed.attempt <= act["retry_attempts"]:
            logger.warning(
                "step %s of run %s failed (attempt %d), retrying: %s", step, run_id, claimed.attempt, error
            )
            countdown = retry_countdown(claimed.attempt)
            services.record_retry(claimed.id, error=error, countdown=countdown)
            raise _Again(countdown) from None
        logger.error("step %s of run %s failed after %d attempt(s): %s", step, run_id, claimed.attempt, error)
        if services.fail_step(claimed.id, run_id=run_id, error=error) and "compensation" in stored.document:
            undo_failed_run(run_id)
        raise StepFailed(f"{step}: {error}", retryable=False) from None
    try:
        return completed(claimed, run_id, step, output, stored, context, durable=spec.external, later=later)
    except (OperationalError, InterfaceError):
        raise _CompletionPending(output) from None


def record_change(
    spec: ActionSpec, params: Any, run_id: uuid.UUID, step: str, stored: StoredWorkflow
) -> None:
    """Record the change this step is about to make (once per run and step, whatever the redeliveries),
    before it acts: a crash after acting cannot lose it. A database error here retries the message, which
    has not acted yet."""
    record_step_change(
        service=str(params.service_name),
        kind=spec.changes,
        action_type=spec.action_type,
        run_id=run_id,
        step=step,
        workflow=str(stored.document.get("name", "")),
        now=time.time(),
    )


def undo_failed_run(run_id: uuid.UUID) -> None:
    """Start the compensation of a run that just failed. A failure here leaves it to the caller that
    follows the run (a remediation's follow job asks again; the key makes it once)."""
    try:
        compensate(run_id, reason="a step failed")
    except Exception:  # noqa: BLE001 - the step's failure is recorded; its undoing is asked again later
        logger.exception("run %s: compensation not started", run_id)


def completed(
    claimed: ClaimedStep,
    run_id: uuid.UUID,
    step: str,
    output: Any,
    stored: StoredWorkflow,
    context: dict[str, Any],
    *,
    durable: bool,
    later: PendingCompletion | None = None,
) -> dict[str, Any]:
    # A step that acted outside waits for the disk: once its message is acknowledged, its completion
    # cannot be lost. An engine-internal one does not: lost in a database crash, the step is run again
    # (it acts on nothing outside), see `settle_lost_steps`.
    if later is not None and step not in stored.sinks:
        later.step_id, later.run_id, later.output, later.durable = claimed.id, run_id, output, durable
        later.undoable = "compensation" in stored.document
        later.finished = timezone.now()  # the step's end, before its successors start
        _pending.completion = later
    else:
        services.complete_step(
            claimed.id,
            run_id=run_id,
            output=output,
            sink=step in stored.sinks,
            durable=durable,
            sinks_only=len(stored.sinks) == len(stored.actions),
        )
        logger.debug("step %s of run %s succeeded", step, run_id)
    if step in stored.referenced_outputs:
        context[step] = output
    return context


# --- completions recorded after the successors are sent --------------------------------------------


@dataclass
class PendingCompletion:
    """A step's success, to record once Celery sent its successors; how to send its message again (`task`
    ran it, with `token` as its claim)."""

    task: Task[Any, Any]
    token: str
    task_id: str
    args: Any
    kwargs: dict[str, Any]
    queue: str | None
    step_id: int = 0
    run_id: uuid.UUID | None = None
    output: Any = None
    durable: bool = True
    #: Its workflow declares a compensation (a run that failed meanwhile is undone once this is recorded).
    undoable: bool = False
    finished: datetime | None = None

    @classmethod
    def of(cls, task: Task[Any, Any], token: str) -> PendingCompletion:
        request = task.request
        return cls(
            task=task,
            token=token,
            task_id=str(request.id),
            args=request.args,
            kwargs=dict(request.kwargs or {}),
            queue=(request.delivery_info or {}).get("routing_key"),
        )


_pending = threading.local()


def sends_successors(task: Task[Any, Any]) -> bool:
    """Whether Celery sends messages for this task once it returns: the rest of its chain, callbacks, or
    its chord's join. Not when run eagerly: the successors would run before this step is recorded."""
    request = task.request
    return not request.is_eager and bool(request.chain or request.callbacks or request.chord)


def record_pending_completion() -> PendingCompletion | None:
    """Record the success this thread's step left pending, if any (returned): after Celery sent its
    successors (the task's `after_return`), or at once when sending them or reaching the chord's join
    fails (before the run is marked for recovery).

    The message is not acknowledged yet: when the write fails (PostgreSQL unavailable), a copy of it is
    sent, without the successors (they were sent), carrying the output and the claim's token; it records
    the completion once the database is back, without acting again (see `execute_step`)."""
    pending: PendingCompletion | None = getattr(_pending, "completion", None)
    if pending is None:
        return None
    _pending.completion = None
    try:
        services.complete_step(
            pending.step_id,
            run_id=pending.run_id,
            output=pending.output,
            sink=False,
            durable=pending.durable,
            finished_at=pending.finished,
        )
    except Exception as exc:  # noqa: BLE001 - a completion left unrecorded would stall its run
        # Unrecorded, the step would stay running, claimed by a live process, until the stall window; a copy
        # records it (or, on a failure that repeats, fails its task, which the recovery job settles).
        if isinstance(exc, OperationalError | InterfaceError):
            connection.close()
        logger.warning(
            "step %s: its completion was not recorded (%s), retrying",
            pending.task_id,
            describe(exc),
        )
        route: dict[str, Any] = {"queue": pending.queue} if pending.queue else {}
        pending.task.apply_async(
            args=pending.args,
            kwargs={**pending.kwargs, "prev": pending.token, "done": pending.output},
            task_id=pending.task_id,
            countdown=random.uniform(1.0, 3.0),
            **route,
        )
        return pending
    if pending.undoable and pending.run_id is not None:
        undo_if_failed(pending.run_id)
    return pending


def undo_if_failed(run_id: uuid.UUID) -> None:
    """A successor may have failed the run before its predecessor's completion was recorded: the run's
    undoing waited for that step (`compensate` waits until no step runs), and starts now."""
    try:
        failed = WorkflowRun.objects.filter(id=run_id, status=RunStatus.FAILED).exists()
    except Exception as exc:  # noqa: BLE001 - the compensation sweep starts it on its next pass
        logger.warning("run %s: not checked for undoing (%s)", run_id, describe(exc))
        return
    if failed:
        undo_failed_run(run_id)


def settled_step(run_id: uuid.UUID, step: str, context: dict[str, Any], generation: int) -> dict[str, Any]:
    """A message whose claim was refused: hand a success on, wait for a live claimant, retire the rest."""
    row = services.step_outcome(run_id, step)
    if row is None:
        logger.warning("no step %s in run %s: message dropped", step, run_id)
        raise Ignore()
    run = row.run
    if run.status in RunStatus.TERMINAL:
        services.close_step_of_finished_run(row.id, run_status=run.status)
        raise Ignore()
    if generation < run.generation:
        logger.info(
            "step %s of run %s: message of generation %d retired (run is at %d)",
            step,
            run_id,
            generation,
            run.generation,
        )
        raise Ignore()
    if row.status == RunStatus.RUNNING and not row.deferred:
        logger.info("step %s of run %s is executing elsewhere: this message waits", step, run_id)
        raise _Again(random.uniform(1.0, 2.0))
    if row.status != RunStatus.SUCCEEDED:
        raise Ignore()
    logger.info("step %s of run %s already succeeded: not acting again", step, run_id)
    if step in stored_workflow(run.version_id).referenced_outputs:
        context[step] = row.output
    return context
