"""Cancellation and approvals on real workers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from automation import ActionDefinition, WorkflowDefinition
from automation.errors import StateError
from tests.conftest import unique, wait_for
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")


def test_cancel_stops_the_run_before_later_steps(engine: Any, peer: HttpPeer) -> None:
    name = unique("cancel")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 20}),
                ActionDefinition(
                    name="act", action_type="http.request", parameters={"url": f"{peer.url}/never"}
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    wait_for(lambda: run.step("pause").status == "running")
    engine.cancel_run(run.id)
    assert run.status == "cancelled"
    assert [s.status for s in run.steps] == ["cancelled", "cancelled"]
    time.sleep(3)
    assert peer.paths() == []
    with pytest.raises(StateError):
        engine.cancel_run(run.id)


@pytest.mark.parametrize("approved", [True, False])
def test_approval_pauses_until_decided(engine: Any, peer: HttpPeer, approved: bool) -> None:
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
    time.sleep(1)
    assert run.status == "running"
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
