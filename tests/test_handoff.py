"""A chord branch's report to its join: waited for while the Redis result backend is down, then the run is
marked to be sent again (Celery would lose the report, and the join would never run)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from celery.backends.redis import RedisBackend

from automation import ActionDefinition

WAIT = ActionDefinition(name="a", action_type="control.wait", parameters={"seconds": 0})


def _task(backend: Any, *, chord: Any) -> Any:
    return SimpleNamespace(backend=backend, request=SimpleNamespace(chord=chord))


def test_a_branch_whose_join_cannot_be_reached_marks_its_run(engine: Any, monkeypatch: Any) -> None:
    from django.conf import settings

    from automation.celery import app
    from automation.models import WorkflowRun
    from automation.runs.handoff import await_join_report
    from tests.conftest import stored_run

    policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.05, "interval_max": 0.05}
    monkeypatch.setattr(settings, "CELERY_TASK_PUBLISH_RETRY_POLICY", policy)
    run = stored_run(engine, "join-unreachable", WAIT)
    down = RedisBackend(app=app, url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    await_join_report(_task(down, chord=None), str(run.id))
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None, "not a chord branch"
    await_join_report(_task(down, chord={"task": "join"}), str(run.id))
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None


def test_a_branch_whose_join_is_reachable_leaves_its_run_alone(engine: Any) -> None:
    from automation.celery import app
    from automation.models import WorkflowRun
    from automation.runs.handoff import await_join_report
    from tests.conftest import REDIS_URL, stored_run

    run = stored_run(engine, "join-reachable", WAIT)
    await_join_report(_task(RedisBackend(app=app, url=REDIS_URL), chord={"task": "join"}), str(run.id))
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is None


class _OutOfTime(RedisBackend):
    """A backend reached while the step's soft time limit strikes."""

    @property
    def client(self) -> Any:
        from celery.exceptions import SoftTimeLimitExceeded

        raise SoftTimeLimitExceeded()


def test_a_branch_whose_time_runs_out_waiting_marks_its_run(engine: Any) -> None:
    from automation.celery import app
    from automation.models import WorkflowRun
    from automation.runs.handoff import await_join_report
    from tests.conftest import REDIS_URL, stored_run

    run = stored_run(engine, "join-out-of-time", WAIT)
    await_join_report(_task(_OutOfTime(app=app, url=REDIS_URL), chord={"task": "join"}), str(run.id))
    assert WorkflowRun.objects.get(id=run.id).redispatch_requested_at is not None


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
