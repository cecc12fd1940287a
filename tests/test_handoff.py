"""A step whose successors, or whose report to its join, may not have gone out: its completion is recorded
and its run marked to be sent again (Celery would lose the report, and the join would never run)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from automation import ActionDefinition

WAIT = ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})


# Celery records the task's internal error in the result backend with redis-py's deprecated SETEX.
@pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")
def test_a_branch_whose_report_to_its_join_fails_is_recorded_and_its_run_marked(
    engine: Any, monkeypatch: Any
) -> None:
    """Celery's tracer runs a fan-out branch whose report to its join cannot reach the Redis result
    backend (it raises, as `on_chord_part_return` does with Redis down): the branch's completion is still
    recorded and its run marked, so the recovery job sends the join; a branch whose report goes through
    marks nothing."""
    from celery.app.trace import trace_task
    from redis.exceptions import ConnectionError as RedisConnectionError

    from automation.celery import app
    from automation.delivery import step_task_id
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services
    from tests.conftest import stored_run

    reports: list[str] = []

    def report(request: Any, state: str, result: Any, **_: Any) -> None:
        reports.append(request.id)
        if down:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    join = {"task": "automation.action.control.wait", "options": {}, "kwargs": {}, "args": []}
    branches = [
        ActionDefinition(name=name, action_type="control.wait", parameters={"seconds": 0}, depends_on=[])
        for name in ("a", "b")
    ]
    joined = ActionDefinition(
        name="j", action_type="control.wait", parameters={"seconds": 0}, depends_on=["a", "b"]
    )
    runs = {down: stored_run(engine, f"join-report-{down}", *branches, joined) for down in (False, True)}
    task = app.tasks["automation.action.control.wait"]  # loaded by the registrations
    monkeypatch.setattr(task.backend, "on_chord_part_return", report)
    for down, run in runs.items():
        task_id = step_task_id(str(run.id), "a")
        request = {"id": task_id, "chord": join, "group": f"g-{run.id}", "delivery_info": {}}
        # Celery reports the failure as an internal error of the task (a warning, and the worker's log);
        # its attempt to record the task as failed reports to the join again, which fails again.
        with pytest.warns(RuntimeWarning) if down else nullcontext():
            trace_task(task, task_id, (), {}, request, app=app)
        assert reports[-1] == task_id, "the tracer reported the branch to its join"
        assert StepRun.objects.get(run_id=run.id, name="a").status == "succeeded"
        marked = WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
        assert marked is down
        services.cancel_run(run.id)


def _pending_completion(engine: Any, name: str) -> tuple[Any, Any, Any]:
    """A run of two steps whose first acted and left its completion pending, as a worker's thread does."""
    from automation.celery import app
    from automation.fleet.identity import Claimant
    from automation.runs import executor, services
    from automation.runs.claims import Claim
    from tests.conftest import stored_run

    then = ActionDefinition(name="b", action_type="control.wait", parameters={"seconds": 0})
    run = stored_run(engine, name, WAIT, then)
    acted = Claim(claimant=Claimant("here", 1), token="t-" + name)
    claimed = services.claim_step(run.id, "a", claim=acted)
    assert claimed is not None
    task = app.tasks["automation.action.control.wait"]
    pending = executor.PendingCompletion.of(task, acted.token)
    pending.step_id, pending.run_id, pending.output = claimed.id, run.id, {"waited": 0}
    executor._pending.completion = pending
    return run, claimed, task


def test_a_step_whose_successors_may_not_have_gone_is_recorded_and_its_run_marked(engine: Any) -> None:
    """`after_return` with another outcome than success (sending the successors failed)."""
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services

    run, claimed, task = _pending_completion(engine, "unsent")
    task.after_return("FAILURE", None, "x", (), {}, None)
    assert StepRun.objects.get(id=claimed.id).status == "succeeded"
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    services.cancel_run(run.id)


def test_a_completion_the_tracer_left_pending_is_recorded_after_the_task(engine: Any) -> None:
    """Celery failed between sending the successors and `after_return`: the task_postrun receiver records
    the completion and marks the run; a completion recorded normally marks nothing."""
    from celery.signals import task_postrun

    from automation.models import StepRun, WorkflowRun
    from automation.runs import services

    run, claimed, task = _pending_completion(engine, "left")
    task.after_return("SUCCESS", None, "x", (), {}, None)
    task_postrun.send(sender=task, task_id="x", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert StepRun.objects.get(id=claimed.id).status == "succeeded"
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None, "recorded as usual"
    services.cancel_run(run.id)

    run, claimed, task = _pending_completion(engine, "left-behind")
    task_postrun.send(sender=task, task_id="x", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert StepRun.objects.get(id=claimed.id).status == "succeeded"
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None
    services.cancel_run(run.id)
