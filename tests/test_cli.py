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

from tests.conftest import ROOT, answers_ok, gated_workflow, unique
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


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "show", "banana"),
        ("runs", "cancel", "banana"),
        ("runs", "approve", "banana", "gate"),
        ("runs", "reject", "00000000-0000-0000-0000-000000000000", "gate"),
        ("runs", "cancel", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_unknown_run_ids_are_one_line_and_exit_2(engine: Any, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"Error: run {args[2]} does not exist\n"


def test_a_key_reused_with_other_inputs_is_refused_in_one_line(engine: Any) -> None:
    name = gated_workflow(engine, "cli-list")
    key = unique("key")
    first = cli("run", name, "--input", "who=alice", "--idempotency-key", key)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.split()[1]
    assert cli("run", name, "--input", "who=alice", "--idempotency-key", key).stdout.startswith(
        f"run {run_id} already exists"
    )
    refused = cli("run", name, "--input", "who=bob", "--idempotency-key", key)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("Error: ")
    assert refused.stderr.rstrip().endswith(f"by run {run_id}")
    assert cli("runs", "cancel", run_id).returncode == 0


def test_runs_list_filters_and_formats(engine: Any) -> None:
    name = gated_workflow(engine, "cli-list")
    runs = [engine.run_workflow(name, {"who": who}) for who in ("a", "b", "c")]
    engine.cancel_run(runs[0].id)
    newest_first = [str(r.id) for r in reversed(runs)]

    table = cli("runs", "list", "--workflow", name)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["RUN", "ID", "WORKFLOW", "VERSION", "STATUS", "CREATED", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == newest_first
    assert lines[-1].split()[1:4] == [name, "1", "cancelled"]

    assert cli("runs", "list", "-w", name, "-q", "--limit", "2").stdout.split() == newest_first[:2]
    cancelled = cli("runs", "list", "-w", name, "--status", "cancelled", "--json")
    rows = json.loads(cancelled.stdout)
    assert [row["run_id"] for row in rows] == [str(runs[0].id)]
    assert rows[0]["workflow"] == name and rows[0]["status"] == "cancelled" and "steps" not in rows[0]

    unknown = cli("runs", "list", "--workflow", "no-such-workflow")
    assert unknown.returncode == 2
    assert unknown.stderr == "Error: workflow 'no-such-workflow' is not registered\n"
    assert cli("runs", "list", "--status", "banana").returncode == 2
    for run in runs[1:]:
        engine.cancel_run(run.id)


def test_serve_beyond_loopback_needs_tokens_or_an_explicit_flag(engine: Any) -> None:

    from tests.conftest import free_port

    env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_API_TOKENS"}
    refused = subprocess.run(
        [sys.executable, "-m", "automation.cli.main", "serve", "--bind", f"0.0.0.0:{free_port()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "AUTOMATION_API_TOKENS" in refused.stderr and "--insecure-no-auth" in refused.stderr
    assert refused.stderr.count("\n") == 1

    for extra_env, flags in (({"AUTOMATION_API_TOKENS": "t0ken"}, []), ({}, ["--insecure-no-auth"])):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "automation.cli.main", "serve", "--bind", f"0.0.0.0:{port}", *flags],
            cwd=ROOT,
            env={**env, **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert answers_ok(f"http://127.0.0.1:{port}/healthz", server), "serve did not start"
        finally:
            server.terminate()
            server.wait(20)


def test_loopback_addresses() -> None:
    from automation.api.server import is_loopback

    for bind in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "::1", "127.0.0.2:9", "unix:/tmp/a.sock"):
        assert is_loopback(bind), bind
    for bind in ("0.0.0.0:8000", ":8000", "[::]:8000", "10.0.0.1:80", "api.example.com:80", "0.0.0.0"):
        assert not is_loopback(bind), bind


def test_actions_list_markdown_is_the_registry(engine: Any) -> None:
    result = cli("actions", "list", "--markdown")
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].split("<br>")[0].strip(" `"): line for line in result.stdout.splitlines()[2:]}
    from automation.actions.registry import known_action_types

    assert set(rows) == {t for t in known_action_types() if not t.startswith("testing.")}
    assert "`seconds` (number, required)" in rows["control.wait"]
    assert "`service_name` (string, required)" in rows["infrastructure.restart_service"]
    assert "`graceful` (boolean) = `true`" in rows["infrastructure.restart_service"]
    assert "(not documented)" not in result.stdout
