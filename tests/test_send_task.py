"""Another service enqueues by task name from an interpreter that does not import this project."""

from __future__ import annotations

import subprocess
import sys
import time
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
    app.send_task("automation.run_workflow", kwargs=kwargs)
assert not any(name.startswith(("automation", "tasks")) for name in sys.modules), "imported our code"
"""


def test_send_task_by_name_from_a_separate_interpreter(engine: Any, peer: HttpPeer, tmp_path: Any) -> None:
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
    subprocess.run(
        [sys.executable, "-I", "-c", CLIENT, REDIS_URL, name, key], cwd=tmp_path, check=True, timeout=60
    )
    deadline = time.monotonic() + 60
    while not WorkflowRun.objects.filter(idempotency_key=key, status="succeeded").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    assert WorkflowRun.objects.filter(idempotency_key=key).count() == 1
    assert [r.body for r in peer.received] == [{"who": "other-service"}]
