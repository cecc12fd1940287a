"""The run and step transitions (and an incident join run again), as cases that run on any store:
tests/test_transitions.py runs each on PostgreSQL in-process and all of them on the embedded SQLite store
in a subprocess (`python -m tests.transition_cases`, with DATABASE_URL pointing at a SQLite file)."""

from __future__ import annotations

import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any

Case = Callable[[], None]
CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


def wait(name: str) -> Any:
    from automation import ActionDefinition

    return ActionDefinition(name=name, action_type="control.wait", parameters={"seconds": 0})


def register(*actions: Any) -> Any:
    from automation import WorkflowDefinition
    from automation.definitions.registry import register_definition

    name = f"transitions-{uuid.uuid4().hex[:8]}"
    return register_definition(WorkflowDefinition(name=name, actions=list(actions)))


def new_run(version: Any, *, key: str | None = None, inputs: dict[str, Any] | None = None) -> Any:
    from automation.runs import services

    run, _ = services.create_run(
        workflow_id=version.workflow_id,
        version_id=version.id,
        version_number=version.version,
        actions=version.definition["actions"],
        inputs=inputs or {},
        idempotency_key=key,
        queue="default",
    )
    return run


def me(pid: int = 1, *, previous: str = "", generation: int = 0) -> Any:
    """A claim by executor `pid` of a made-up node, with a token of its own."""
    from automation.fleet.identity import Claimant
    from automation.runs.claims import Claim

    return Claim(
        claimant=Claimant(node="transition-tests", pid=pid),
        token=uuid.uuid4().hex,
        previous=previous,
        generation=generation,
    )


def statuses(run: Any) -> dict[str, str]:
    from automation.models import StepRun

    return dict(StepRun.objects.filter(run_id=run.id).values_list("name", "status"))


def run_status(run: Any) -> str:
    from automation.models import WorkflowRun

    return str(WorkflowRun.objects.get(id=run.id).status)


@case
def create_stores_the_run_and_its_steps_once_per_key() -> None:
    from automation.models import StepRun, WorkflowRun
    from automation.runs import services

    version = register(wait("a"), wait("b"))
    run = new_run(version, key="k-1")
    assert run_status(run) == "pending"
    assert statuses(run) == {"a": "pending", "b": "pending"}
    again, created = services.create_run(
        workflow_id=version.workflow_id, version_id=version.id, version_number=version.version,
        actions=version.definition["actions"], inputs={}, idempotency_key="k-1", queue="default",
    )
    assert not created and again.id == run.id
    assert WorkflowRun.objects.filter(workflow_id=version.workflow_id).count() == 1
    assert StepRun.objects.filter(run__workflow_id=version.workflow_id).count() == 2


@case
def create_with_a_stale_version_stores_nothing() -> None:
    from automation.models import WorkflowRun
    from automation.runs import services

    first = register(wait("a"))
    from automation import WorkflowDefinition
    from automation.definitions.registry import register_definition

    register_definition(WorkflowDefinition(name=first.workflow.name, actions=[wait("a"), wait("b")]))
    try:
        new_run(first)
    except services.StaleVersion:
        pass
    else:
        raise AssertionError("a run of a version that is no longer the latest was stored")
    assert not WorkflowRun.objects.filter(workflow_id=first.workflow_id).exists()


@case
def claim_starts_the_run_and_counts_an_attempt() -> None:
    from automation.runs import services

    run = new_run(register(wait("a"), wait("b")))
    claimed = services.claim_step(run.id, "a", claim=me())
    assert claimed is not None and claimed.attempt == 1 and claimed.inputs == {}
    assert run_status(run) == "running"
    assert statuses(run)["a"] == "running"


@case
def a_step_claimed_moments_ago_is_not_claimed_again_by_another() -> None:
    from automation.runs import services

    run = new_run(register(wait("a")))
    assert services.claim_step(run.id, "a", claim=me(1)) is not None
    assert services.claim_step(run.id, "a", claim=me(2)) is None
    again = services.claim_step(run.id, "a", claim=me(1))
    assert again is not None and again.attempt == 2, "its own claim, found again, is a new attempt"


@case
def a_claim_released_by_a_retry_is_taken_by_anyone() -> None:
    from automation.runs import services

    run = new_run(register(wait("a")))
    first = services.claim_step(run.id, "a", claim=me(1))
    assert first is not None
    services.record_retry(first.id, error="boom", countdown=2)
    second = services.claim_step(run.id, "a", claim=me(2))
    assert second is not None and second.attempt == 2


@case
def a_previous_executions_claim_is_taken_back() -> None:
    from automation.runs import services

    run = new_run(register(wait("a")))
    first = me(1)
    assert services.claim_step(run.id, "a", claim=first) is not None
    assert services.claim_step(run.id, "a", claim=me(2, previous="someone-else")) is None
    taken = services.claim_step(run.id, "a", claim=me(2, previous=first.token))
    assert taken is not None and taken.attempt == 1, "the previous execution's attempt continues"


@case
def a_parked_step_resumes_without_counting_an_attempt() -> None:
    from automation.models import StepRun
    from automation.runs import services

    run = new_run(register(wait("a")))
    first = services.claim_step(run.id, "a", claim=me(1))
    assert first is not None
    services.defer_step(first.id, countdown=5, state={"until": 1.0}, note="waiting")
    parked = StepRun.objects.get(id=first.id)
    assert parked.deferred and parked.due_at is not None and parked.state == {"until": 1.0}
    resumed = services.claim_step(run.id, "a", claim=me(2))
    assert resumed is not None and resumed.attempt == 1 and resumed.state == {"until": 1.0}
    services.defer_step(first.id, countdown=5, state={"more": True})
    assert StepRun.objects.get(id=first.id).state == {"until": 1.0, "more": True}, "state is merged"


@case
def a_message_of_an_older_generation_claims_nothing() -> None:
    from automation.models import WorkflowRun
    from automation.runs import services

    run = new_run(register(wait("a")))
    services.advance_generation(run.id, sent=2)
    assert WorkflowRun.objects.get(id=run.id).generation == 2
    assert services.claim_step(run.id, "a", claim=me(generation=1)) is None
    assert services.claim_step(run.id, "a", claim=me(generation=2)) is not None


@case
def the_last_sink_completes_the_run_once() -> None:
    from automation import ActionDefinition
    from automation.models import WorkflowRun
    from automation.runs import services

    version = register(
        wait("a"),
        ActionDefinition(name="b", action_type="control.wait", parameters={"seconds": 0}, depends_on=["a"]),
        ActionDefinition(name="c", action_type="control.wait", parameters={"seconds": 0}, depends_on=["a"]),
    )
    run = new_run(version)
    assert WorkflowRun.objects.get(id=run.id).remaining_sinks == 2
    a = services.claim_step(run.id, "a", claim=me())
    assert a is not None
    services.complete_step(a.id, run_id=run.id, output={"x": 1}, sink=False)
    b = services.claim_step(run.id, "b", claim=me(2))
    c = services.claim_step(run.id, "c", claim=me(3))
    assert b is not None and c is not None
    services.complete_step(b.id, run_id=run.id, output={}, sink=True)
    services.complete_step(b.id, run_id=run.id, output={}, sink=True)  # a duplicate completion
    assert run_status(run) == "running", "a duplicate completion counted twice"
    services.complete_step(c.id, run_id=run.id, output={}, sink=True)
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.status == "succeeded" and stored.remaining_sinks == 0 and stored.finished_at is not None


@case
def a_run_of_sinks_only_succeeds_with_its_last_count_off() -> None:
    from automation import ActionDefinition
    from automation.models import WorkflowRun
    from automation.runs import services

    alone = ActionDefinition(name="b", action_type="control.wait", parameters={"seconds": 0}, depends_on=[])
    run = new_run(register(wait("a"), alone))
    a = services.claim_step(run.id, "a", claim=me())
    b = services.claim_step(run.id, "b", claim=me(2))
    assert a is not None and b is not None
    services.complete_step(a.id, run_id=run.id, output={}, sink=True, sinks_only=True)
    services.complete_step(a.id, run_id=run.id, output={}, sink=True, sinks_only=True)  # a duplicate
    assert run_status(run) == "running", "a duplicate completion counted twice"
    services.complete_step(b.id, run_id=run.id, output={}, sink=True, sinks_only=True)
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.status == "succeeded" and stored.remaining_sinks == 0 and stored.finished_at is not None


@case
def a_run_succeeds_with_the_completion_that_leaves_no_step_running() -> None:
    from automation.models import WorkflowRun
    from automation.runs import services

    # A worker records a step's completion after sending its successors: the sink can finish first.
    run = new_run(register(wait("a"), wait("b"), wait("c")))
    a = services.claim_step(run.id, "a", claim=me())
    assert a is not None
    services.complete_step(a.id, run_id=run.id, output={}, sink=False)
    b = services.claim_step(run.id, "b", claim=me(2))
    c = services.claim_step(run.id, "c", claim=me(3))
    assert b is not None and c is not None
    services.complete_step(c.id, run_id=run.id, output={}, sink=True)
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.status == "running" and stored.remaining_sinks == 0, "succeeded with step b running"
    services.complete_step(b.id, run_id=run.id, output={"late": True}, sink=False)
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.status == "succeeded" and stored.finished_at is not None
    assert statuses(run) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}


@case
def a_failure_fails_the_run_and_skips_what_did_not_start() -> None:
    from automation.runs import services

    run = new_run(register(wait("a"), wait("b")))
    a = services.claim_step(run.id, "a", claim=me())
    assert a is not None
    assert services.fail_step(a.id, run_id=run.id, error="boom") is True
    assert services.fail_step(a.id, run_id=run.id, error="again") is False
    assert run_status(run) == "failed"
    assert statuses(run) == {"a": "failed", "b": "skipped"}


@case
def cancel_ends_the_run_and_a_late_completion_still_records_its_effect() -> None:
    from automation.errors import InputError, StateError
    from automation.runs import services

    run = new_run(register(wait("a"), wait("b")))
    a = services.claim_step(run.id, "a", claim=me())
    assert a is not None
    try:
        services.cancel_run(run.id, reason="nul\x00here")
    except InputError as exc:
        assert exc.errors[0][0] == "reason"
    else:
        raise AssertionError("a NUL reason was stored")
    services.cancel_run(run.id, reason="change freeze")
    assert run_status(run) == "cancelled" and statuses(run) == {"a": "cancelled", "b": "cancelled"}
    services.complete_step(a.id, run_id=run.id, output={"done": True}, sink=False)
    assert statuses(run)["a"] == "succeeded" and run_status(run) == "cancelled"
    assert services.claim_step(run.id, "b", claim=me()) is None
    try:
        services.cancel_run(run.id)
    except StateError:
        pass
    else:
        raise AssertionError("a finished run was cancelled again")


@case
def approvals_are_decided_once_by_an_approver_when_asked() -> None:
    from automation import ActionDefinition
    from automation.errors import ForbiddenError, StateError
    from automation.runs import services

    gate = ActionDefinition(name="gate", action_type="control.approval", parameters={"approvers": ["alice"]})
    run = new_run(register(gate))
    claimed = services.claim_step(run.id, "gate", claim=me())
    assert claimed is not None
    try:
        services.decide_approval(run.id, "gate", approved=True, by="alice")
    except StateError:
        pass
    else:
        raise AssertionError("decided before it was asked")
    services.defer_step(claimed.id, countdown=2, state={"requested_at": 1.0, "approvers": ["alice"]})
    try:
        services.decide_approval(run.id, "gate", approved=True, by="mallory")
    except ForbiddenError:
        pass
    else:
        raise AssertionError("a non-approver decided")
    decided = services.decide_approval(run.id, "gate", approved=True, by="alice", comment="go")
    assert decided.state["decision"] == "approved" and decided.state["decided_by"] == "alice"
    try:
        services.decide_approval(run.id, "gate", approved=False, by="alice")
    except StateError:
        pass
    else:
        raise AssertionError("decided twice")


@case
def a_step_of_a_finished_run_is_closed_not_run() -> None:
    from automation.runs import services

    run = new_run(register(wait("a"), wait("b")))
    a = services.claim_step(run.id, "a", claim=me())
    assert a is not None
    services.fail_step(a.id, run_id=run.id, error="boom")
    b = services.step_outcome(run.id, "b")
    assert b is not None
    services.close_step_of_finished_run(b.id, run_status="failed")
    assert statuses(run)["b"] == "skipped"


@case
def a_run_marked_for_recovery_is_unmarked_by_its_next_generation() -> None:
    from automation.models import WorkflowRun
    from automation.runs import services

    run = new_run(register(wait("a")))
    assert services.request_redispatch(run.id) is True
    assert services.request_redispatch(run.id) is False, "already marked"
    services.advance_generation(run.id, sent=1)
    stored = WorkflowRun.objects.get(id=run.id)
    assert stored.redispatch_requested_at is None and stored.generation == 1
    services.advance_generation(run.id, sent=1)
    assert WorkflowRun.objects.get(id=run.id).generation == 1


@case
def a_firing_joins_its_incident_once_when_its_pipeline_runs_again() -> None:
    """`repair` runs an alert's pipeline again: the firing is found joined (compared as the store keeps
    its start), never inserted a second time."""
    import time
    from datetime import UTC, datetime

    from automation.incidents.services.alerts import alert_fired
    from automation.models import Alert, IncidentAlert

    fired = datetime.fromtimestamp(time.time() - 3, UTC)
    alert = Alert.objects.create(
        fingerprint=uuid.uuid4().hex,
        name="TransitionCase",
        labels={"alertname": "TransitionCase", "service": f"case-{uuid.uuid4().hex[:8]}"},
        state="firing",
        severity="high",
        fired_at=fired,
        active_since=fired,
    )
    first = alert_fired(alert, time.time(), group_keys=[f"case:{alert.fingerprint}"])
    again = alert_fired(Alert.objects.get(pk=alert.pk), time.time(), group_keys=[f"case:{alert.fingerprint}"])
    assert first is not None and again == first, (first, again)
    assert IncidentAlert.objects.filter(fingerprint=alert.fingerprint).count() == 1


def main() -> int:
    """Run every case on the store the environment names; print one line per case."""
    from automation.bootstrap import setup

    setup()
    from django.db import connection

    failed = 0
    for name, function in CASES.items():
        try:
            function()
        except Exception:  # noqa: BLE001 - reported per case
            failed += 1
            print(f"FAIL {name} on {connection.vendor}\n{traceback.format_exc()}")
        else:
            print(f"ok   {name} on {connection.vendor}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
