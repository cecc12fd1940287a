"""SIGKILL the worker's whole process group mid-workflow, with the default settings (the broker would
give the dead worker's message back only after its visibility timeout): Beat's recovery job notices the
dead worker and another one finishes the run within a minute, each effect once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from automation import ActionDefinition, Priority, WorkflowDefinition
from tests.conftest import ROOT, STATE_DIR, Worker, unique
from tests.peers import Answer, HttpPeer

STEPS = 10


@pytest.mark.usefixtures("worker")  # it consumes `critical`, where Beat sends the recovery job
def test_sigkill_mid_workflow_completes_with_each_effect_once(engine: Any) -> None:
    peer = HttpPeer(lambda request: Answer(delay=0.7))
    first = Worker(queues="low", name="doomed")
    second = None
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "beat", "-l", "INFO",
         "-s", str(STATE_DIR / "reliability-beat.db")],
        cwd=ROOT, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
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
        killed = time.monotonic()
        killed_at = run.step("step3")
        assert killed_at.status == "running"

        second = Worker(queues="low", name="rescuer")
        while peer.deliveries.get(f"{run.id}:step3", 0) < 2:
            assert time.monotonic() - killed < 60, "the killed step was not resumed within 60 s"
            time.sleep(0.1)
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
        beat.terminate()
        beat.wait(20)
        peer.close()
        for worker in (first, second):
            if worker is not None:
                worker.stop()
