"""SIGKILL the worker's whole process group mid-workflow: a new worker finishes the run, each effect once."""

from __future__ import annotations

import time
from typing import Any

from automation import ActionDefinition, Priority, WorkflowDefinition
from tests.conftest import Worker, unique
from tests.peers import Answer, HttpPeer

STEPS = 10
#: The dedicated workers give back a dead worker's messages quickly (production keeps the defaults).
FAST_RECOVERY = {
    "AUTOMATION_VISIBILITY_TIMEOUT": "8",
    "AUTOMATION_RESTORE_INTERVAL": "1",
    "AUTOMATION_RESTORE_THROTTLE": "1",
}


def test_sigkill_mid_workflow_completes_with_each_effect_once(engine: Any) -> None:
    peer = HttpPeer(lambda request: Answer(delay=0.7))
    first = Worker(queues="low", name="doomed", env=FAST_RECOVERY)
    second = None
    try:
        name = unique("reliable")
        engine.register_workflow(
            WorkflowDefinition(
                name=name,
                priority=Priority.LOW,
                actions=[
                    ActionDefinition(
                        name=f"step{i}",
                        action_type="http.request",
                        timeout_seconds=5,
                        retry_attempts=2,
                        parameters={"url": f"{peer.url}/effect/{i}", "method": "POST"},
                    )
                    for i in range(STEPS)
                ],
            )
        )
        run = engine.run_workflow(name)
        # Kill while step 3's call is in flight: its request has arrived, its answer has not.
        deadline = time.monotonic() + 60
        while "/effect/3" not in peer.paths():
            assert time.monotonic() < deadline, first.log()[-3000:]
            time.sleep(0.02)
        first.kill_group()
        killed_at = run.step("step3")
        assert killed_at.status == "running"

        second = Worker(queues="low", name="rescuer", env=FAST_RECOVERY)
        assert run.wait(120).status == "succeeded", [(s.name, s.status, s.error) for s in run.steps]

        keys = [f"{run.id}:step{i}" for i in range(STEPS)]
        assert sorted(peer.effects) == sorted(keys), "every step's effect applied"
        assert all(peer.effects[k] == 1 for k in keys)
        # Steps that finished before or after the kill were delivered exactly once; only the step
        # killed mid-call was sent again, with the same key, so the receiver deduplicated it.
        for i in range(STEPS):
            expected = 2 if i == 3 else 1
            assert peer.deliveries[keys[i]] <= expected, (i, peer.deliveries)
        assert peer.deliveries[keys[3]] >= 1
        steps = {s.name: s for s in run.steps}
        assert steps["step3"].attempts == 2
        assert all(steps[f"step{i}"].attempts == 1 for i in range(STEPS) if i != 3)
        assert all(s.status == "succeeded" for s in steps.values())
    finally:
        peer.close()
        for worker in (first, second):
            if worker is not None:
                worker.stop()
