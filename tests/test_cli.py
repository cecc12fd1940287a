"""The `automation` CLI as a user runs it: real processes, real worker, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, unique
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("worker")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automation.cli.main", *args],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_apply_run_wait_and_show(engine: Any, peer: HttpPeer, tmp_path: Path) -> None:
    name = unique("cli")
    definition = tmp_path / "wf.yaml"
    definition.write_text(f"""
name: {name}
actions:
  - name: call
    action_type: http.request
    parameters: {{url: "{peer.url}/cli", method: POST, json: {{n: "${{n}}"}}}}
  - name: pause
    action_type: control.wait
    parameters: {{seconds: 0.2}}
""")
    applied = cli("workflow", "apply", "-f", str(definition))
    assert applied.returncode == 0, applied.stderr
    assert f"{name}: version 1" in applied.stdout
    ran = cli("run", name, "--input", "n=5", "--wait")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert any("call" in line and "succeeded" in line for line in lines)
    assert any(
        "pause" in line and "running" in line or "pause" in line and "succeeded" in line for line in lines
    )
    assert lines[-1].endswith(": succeeded")
    assert peer.received[0].body == {"n": 5}
    run_id = lines[0].split()[1]
    shown = cli("runs", "show", run_id, "--json")
    assert json.loads(shown.stdout)["status"] == "succeeded"


def test_invalid_definition_exits_2_and_stores_nothing(engine: Any, tmp_path: Path) -> None:
    from automation.models import Workflow

    name = unique("cli-bad")
    definition = tmp_path / "bad.json"
    definition.write_text(
        json.dumps(
            {
                "name": name,
                "actions": [
                    {
                        "name": "a",
                        "action_type": "control.wait",
                        "parameters": {"seconds": "${steps.b.output.x}"},
                    },
                ],
            }
        )
    )
    result = cli("workflow", "apply", "-f", str(definition))
    assert result.returncode == 2
    assert "actions[0].parameters.seconds" in result.stderr and "unknown step 'b'" in result.stderr
    assert not Workflow.objects.filter(name=name).exists()


def test_bad_inputs_and_unknown_ids_exit_2(engine: Any) -> None:
    assert cli("run", "no-such-workflow").returncode == 2
    assert cli("run", "x", "--input", "novalue").returncode == 2
    assert cli("runs", "show", "00000000-0000-0000-0000-000000000000").returncode == 2


def test_approve_from_the_cli(engine: Any, tmp_path: Path) -> None:
    from automation import ActionDefinition, WorkflowDefinition

    name = unique("cli-gate")
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            actions=[
                ActionDefinition(
                    name="gate", action_type="control.approval", parameters={"poll_seconds": 0.3}
                ),
            ],
        )
    )
    run = engine.run_workflow(name)
    deadline = time.monotonic() + 30
    while "requested_at" not in run.step("gate").state:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result = cli("runs", "approve", run.id, "gate", "--by", "oncall")
    assert result.returncode == 0, result.stderr
    assert run.wait(30).status == "succeeded"
    assert cli("runs", "approve", run.id, "gate").returncode == 1
