"""What goes wrong in production, on real workers: killed tasks, duplicate canvases, races, odd outputs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

import tests.slow_actions  # noqa: F401 - registers the testing.* actions in this process too
from automation import ActionDefinition, WorkflowDefinition
from tests.conftest import Worker, close_thread_clients, unique, wait_for
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")


def fan_out(peer: HttpPeer, width: int = 6) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=unique("fan"),
        actions=[
            ActionDefinition(name="start", action_type="control.wait", parameters={"seconds": 0}),
            *[
                ActionDefinition(
                    name=f"b{i}",
                    action_type="http.request",
                    depends_on=["start"],
                    parameters={"url": f"{peer.url}/b/{i}", "method": "POST"},
                )
                for i in range(width)
            ],
            ActionDefinition(
                name="join",
                action_type="http.request",
                depends_on=[f"b{i}" for i in range(width)],
                parameters={"url": f"{peer.url}/join", "method": "POST"},
            ),
        ],
    )


def test_a_hard_time_limit_kill_is_settled_by_the_recovery_job(engine: Any) -> None:
    from django.utils import timezone

    from automation.celery import app
    from automation.models import StepRun
    from automation.runs.recovery import settle_lost_steps

    name = unique("stubborn")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="stuck",
                    action_type="testing.stubborn",
                    parameters={"seconds": 30},
                    timeout_seconds=2,
                    retry_attempts=0,
                ),
                ActionDefinition(name="after", action_type="control.wait", parameters={"seconds": 0}),
            ],
        )
    )
    run = engine.run_workflow(name)
    wait_for(lambda: run.step("stuck").status == "running")
    # The pool kills the child at 2 s and records TimeLimitExceeded in the result backend.
    recorded = app.AsyncResult(StepRun.objects.get(run_id=run.id, name="stuck").task_id)
    wait_for(lambda: recorded.state == "FAILURE", timeout=30)
    assert type(recorded.result).__name__ == "TimeLimitExceeded", recorded.result
    assert run.status == "running", "the step's own bookkeeping never ran"
    assert settle_lost_steps(timezone.now() + timedelta(minutes=2)) >= 1
    assert run.status == "failed"
    assert "TimeLimitExceeded" in run.step("stuck").error
    assert run.step("after").status == "skipped"


def test_a_step_output_is_stored_once_in_postgresql_not_in_the_result_backend(engine: Any) -> None:
    from automation.celery import app
    from automation.models import StepRun

    name = unique("stored-once")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="first", action_type="control.wait", parameters={"seconds": 0}),
                ActionDefinition(
                    name="second", action_type="control.wait", parameters={"seconds": 0}, depends_on=["first"]
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    assert run.wait(60).status == "succeeded"
    for step in StepRun.objects.filter(run_id=run.id):
        assert step.output == {"waited_seconds": 0}, (step.name, step.output)
        assert app.backend.get_task_meta(step.task_id)["status"] == "PENDING", f"{step.name}: a copy in Redis"


def test_a_canvas_sent_twice_still_joins_and_acts_once(engine: Any, peer: HttpPeer) -> None:
    from automation.models import WorkflowRun
    from automation.runs.dispatch import dispatch

    definition = fan_out(peer)
    engine.register_workflow(definition)
    for _ in range(3):
        run = engine.run_workflow(definition.name)
        dispatch(WorkflowRun.objects.get(id=run.id))  # as the recovery job might, while the first copy runs
        assert run.wait(60).status == "succeeded", [(s.name, s.status) for s in run.steps]
    keys = [r.headers["Idempotency-Key"] for r in peer.received]
    assert len(keys) == len(set(keys)) == 3 * 7, "every branch and join acted exactly once per run"


def test_concurrent_enqueues_with_one_key_make_one_run(engine: Any, peer: HttpPeer) -> None:
    definition = fan_out(peer, width=4)
    engine.register_workflow(definition)
    barrier = threading.Barrier(4)
    ids: list[str] = []

    def enqueue() -> None:
        barrier.wait()
        try:
            ids.append(engine.run_workflow(definition.name, idempotency_key="storm-1").id)
        finally:
            close_thread_clients()

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert engine.get_run(ids[0]).wait(60).status == "succeeded"
    assert sorted(peer.paths()) == sorted(["/join"] + [f"/b/{i}" for i in range(4)])


def test_cancel_during_a_running_action_records_its_effect(engine: Any, worker: Worker) -> None:
    from automation.models import StepRun

    name = unique("cancel-mid")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="slow", action_type="testing.echo", parameters={"value": 1, "seconds": 2}
                ),
                ActionDefinition(name="next", action_type="testing.echo", parameters={"value": 2}),
            ],
        )
    )
    run = engine.run_workflow(name)
    wait_for(lambda: run.step("slow").status == "running")
    engine.cancel_run(run.id)
    assert run.status == "cancelled"
    wait_for(lambda: run.step("slow").status == "succeeded", timeout=15)
    assert run.step("slow").output == {"value": 1}, "the effect happened: it is recorded"
    # The chain still sends the next step's message: it is dropped (revoked, or refused by the engine).
    next_task = StepRun.objects.get(run_id=run.id, name="next").task_id
    wait_for(lambda: worker.outcome(next_task) is not None)
    assert worker.outcome(next_task) in ("revoked", "ignored"), worker.log()[-3000:]
    assert run.step("next").status == "cancelled"
    assert run.status == "cancelled"


def test_outputs_postgresql_cannot_store_are_cleaned(engine: Any) -> None:
    name = unique("nul")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="odd",
                    action_type="testing.echo",
                    parameters={"value": "ab", "append_nul": True},
                    retry_attempts=3,
                ),
            ],
        )
    )
    run = engine.run_workflow(name).wait(30)
    assert run.status == "succeeded"
    assert run.step("odd").output == {"value": "ab"}
    assert run.step("odd").attempts == 1


def test_nul_characters_in_definitions_and_inputs_are_refused(engine: Any) -> None:
    from automation import DefinitionError
    from automation.errors import InputError

    with pytest.raises(DefinitionError, match="NUL"):
        engine.register_workflow(
            WorkflowDefinition(
                name=unique("nul-def"),
                actions=[
                    ActionDefinition(
                        name="odd", action_type="testing.echo", parameters={"value": "a\u0000b"}
                    ),
                ],
            )
        )
    name = unique("nul-input")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="odd", action_type="testing.echo", parameters={"value": "${v}"}),
            ],
        )
    )
    with pytest.raises(InputError, match="inputs.v"):
        engine.run_workflow(name, {"v": "a\u0000b"})


def test_approvals_are_decided_only_when_asked_and_by_approvers(engine: Any) -> None:
    from automation.errors import ForbiddenError, StateError

    name = unique("approvers")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                ActionDefinition(
                    name="gate",
                    action_type="control.approval",
                    parameters={"approvers": ["alice"], "poll_seconds": 0.3},
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    with pytest.raises(StateError, match="not asked for approval yet"):
        engine.approve(run.id, "gate", by="alice")
    wait_for(lambda: "requested_at" in run.step("gate").state)
    with pytest.raises(ForbiddenError):
        engine.approve(run.id, "gate", by="mallory")
    engine.approve(run.id, "gate", by="alice")
    assert run.wait(30).status == "succeeded"


def test_an_engine_without_config_changes_nothing(engine: Any) -> None:
    from automation import AutomationEngine
    from automation.config import current_config

    before = current_config()
    assert AutomationEngine().config == before
    assert current_config() == before
