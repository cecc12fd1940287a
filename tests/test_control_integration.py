"""Cancellation and approvals on real workers."""

from __future__ import annotations

from typing import Any

import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.errors import StateError
from tests.conftest import Worker, unique, wait_for
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")


def _parked_run(engine: Any, peer: HttpPeer, prefix: str) -> Any:
    """A run whose first step waits 2 s (parked with its `until`, no worker held), then calls `peer`."""
    name = unique(prefix)
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 2}),
                ActionDefinition(
                    name="act", action_type="http.request", parameters={"url": f"{peer.url}/never"}
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    # The engine has taken the pause's first message: the step is parked until `until`, its message due then.
    wait_for(lambda: "until" in run.step("pause").state)
    return run


def test_cancel_stops_the_run_before_later_steps(engine: Any, peer: HttpPeer, worker: Worker) -> None:
    from automation.models import StepRun

    run = _parked_run(engine, peer, "cancel")
    engine.cancel_run(run.id)
    assert run.status == "cancelled"
    assert [s.status for s in run.steps] == ["cancelled", "cancelled"]
    # The pause's message comes due after `until`: the worker drops it (revoked, or refused by the engine
    # if the revoke was missed); a broken cancel would let it succeed and send `act` on.
    task_id = StepRun.objects.get(run_id=run.id, name="pause").task_id
    wait_for(lambda: worker.outcome(task_id) is not None)
    assert worker.outcome(task_id) in ("revoked", "ignored"), worker.log()[-3000:]
    assert [(s.status, s.output) for s in run.steps] == [("cancelled", None), ("cancelled", None)]
    assert peer.paths() == []
    with pytest.raises(StateError):
        engine.cancel_run(run.id)


def test_message_that_escapes_revocation_finds_its_run_cancelled(
    engine: Any, peer: HttpPeer, worker: Worker
) -> None:
    from automation.models import StepRun
    from automation.runs import services

    run = _parked_run(engine, peer, "cancel-unrevoked")
    services.cancel_run(run.id)  # the run is cancelled but, unlike engine.cancel_run, nothing is revoked
    task_id = StepRun.objects.get(run_id=run.id, name="pause").task_id
    wait_for(lambda: worker.outcome(task_id) is not None)
    assert worker.outcome(task_id) == "ignored", worker.log()[-3000:]
    assert [(s.status, s.output) for s in run.steps] == [("cancelled", None), ("cancelled", None)]
    assert peer.paths() == []


@pytest.mark.parametrize("approved", [True, False])
def test_approval_pauses_until_decided(engine: Any, peer: HttpPeer, approved: bool) -> None:
    from automation.models import StepRun

    name = unique("approval")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="gate",
                    action_type="control.approval",
                    parameters={"message": "restart prod?", "poll_seconds": 0.3},
                ),
                ActionDefinition(
                    name="act", action_type="http.request", parameters={"url": f"{peer.url}/go"}
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    wait_for(lambda: run.step("gate").state.get("requested_at") is not None)
    gate = StepRun.objects.filter(run_id=run.id, name="gate")
    asked = gate.get().touched_at
    # polled again after asking (touched on every poll), and still undecided: held, the next step not sent
    wait_for(lambda: gate.get().touched_at > asked)
    assert (run.status, run.step("gate").status) == ("running", "running")
    assert peer.paths() == []
    if approved:
        engine.approve(run.id, "gate", by="alice", comment="go")
        assert run.wait(30).status == "succeeded"
        assert run.step("gate").output["decided_by"] == "alice"
        assert peer.paths() == ["/go"]
    else:
        engine.reject(run.id, "gate", by="bob", comment="not now")
        assert run.wait(30).status == "failed"
        assert "rejected by bob" in run.step("gate").error
        assert run.step("act").status == "skipped"
        assert peer.paths() == []
    with pytest.raises(StateError):
        engine.approve(run.id, "gate", by="carol")


def test_approval_times_out(engine: Any) -> None:
    name = unique("approval-timeout")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="gate",
                    action_type="control.approval",
                    parameters={"timeout_seconds": 1, "poll_seconds": 0.3},
                ),
            ],
        )
    )
    run = engine.run_workflow(name).wait(30)
    assert run.status == "failed"
    assert "no decision within" in run.step("gate").error
