"""Another service enqueues by task name from an interpreter that does not import this project."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from automation import ActionDefinition, WorkflowDefinition
from tests.conftest import REDIS_URL, unique
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")

CLIENT = """
import json, sys
from celery import Celery
assert "automation" not in sys.modules
app = Celery(broker=sys.argv[1])
for _ in range(2):  # sent twice with one key: one run
    kwargs = {"workflow": sys.argv[2], "inputs": {"who": "other-service"}, "idempotency_key": sys.argv[3]}
    print(app.send_task("automation.run_workflow", kwargs=kwargs).id)
assert not any(name.startswith(("automation", "tasks")) for name in sys.modules), "imported our code"
"""


def test_send_task_by_name_from_a_separate_interpreter(engine: Any, peer: HttpPeer, tmp_path: Any) -> None:
    from automation.celery import app
    from automation.models import WorkflowRun

    name = unique("send-task")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="call",
                    action_type="http.request",
                    parameters={"url": f"{peer.url}/from", "method": "POST", "json": {"who": "${who}"}},
                ),
            ],
        )
    )
    key = unique("key")
    # -I: isolated mode, neither the project directory nor PYTHONPATH is on sys.path.
    sent = subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, REDIS_URL, name, key],
        cwd=tmp_path,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    # Both messages handled by the engine: one made the run, the other found it by its key.
    answers = [app.AsyncResult(task_id).get(timeout=60) for task_id in sent.stdout.split()]
    assert len(answers) == 2 and answers[0]["run_id"] == answers[1]["run_id"]
    assert sorted(answer["created"] for answer in answers) == [False, True]
    assert engine.get_run(answers[0]["run_id"]).wait(60).status == "succeeded"
    assert WorkflowRun.objects.filter(idempotency_key=key).count() == 1
    assert [r.body for r in peer.received] == [{"who": "other-service"}]
