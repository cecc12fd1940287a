"""Tokens and the audit log from the CLI (real processes) and over the API; approvals decided by the
authenticated principal; `automation serve` beyond loopback with a stored token only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_server import ApiServer
from tests.conftest import ROOT, answers_ok, free_port, gated_workflow, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automation.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def revoke_afterwards(engine: Any) -> Iterator[list[str]]:
    """Names of tokens a test made: revoked at its end, so the session's other API tests stay open."""
    from automation.access.services.tokens import revoke_token
    from automation.errors import StateError

    names: list[str] = []
    yield names
    for name in names:
        try:
            revoke_token(name)
        except StateError:
            pass


def test_tokens_are_created_once_listed_without_secrets_and_revoked_from_the_cli(
    server: ApiServer, revoke_afterwards: list[str], engine: Any
) -> None:
    from automation.models import ApiToken

    name = unique("ci-bot")
    revoke_afterwards.append(name)
    made = cli(
        "tokens",
        "create",
        "--name",
        name,
        "--role",
        "service",
        "--expires",
        "90d",
        AUTOMATION_ACTOR="ops-amy",
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("atk_") and "\n" not in secret and "shown only now" in made.stderr
    stored = ApiToken.objects.get(name=name)
    assert secret not in stored.digest and stored.roles == ["service"] and stored.user is None
    assert 89 <= (stored.expires_at - stored.created_at).days <= 90

    listed = cli("tokens", "list", "--json")
    assert listed.returncode == 0 and secret not in listed.stdout and stored.digest not in listed.stdout
    (row,) = [row for row in json.loads(listed.stdout) if row["name"] == name]
    assert row["roles"] == ["service"] and row["active"] is True

    # The service role starts runs and reads the runs it started, and nothing else.
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{server.url}/api/v1/workflows", headers=headers).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/runs/{'0' * 32}", headers=headers).status_code == 404
    workflow = gated_workflow(engine, "service-starts")
    started = httpx.post(f"{server.url}/api/v1/workflows/{workflow}/runs", json={}, headers=headers)
    assert started.status_code == 202, started.text
    mine = started.json()["run_id"]
    assert httpx.get(f"{server.url}/api/v1/runs/{mine}", headers=headers).status_code == 200
    other = engine.run_workflow(workflow).id
    assert httpx.get(f"{server.url}/api/v1/runs/{other}", headers=headers).status_code == 404
    assert httpx.post(f"{server.url}/api/v1/runs/{mine}/cancel", json={}, headers=headers).status_code == 403
    engine.cancel_run(mine)
    engine.cancel_run(other)

    assert cli("tokens", "create", "--name", name, "--role", "service").returncode == 1  # taken
    bad = cli("tokens", "create", "--name", "x y", "--role", "root", "--expires", "soon")
    assert bad.returncode == 2 and all(field in bad.stderr for field in ("name", "roles", "expires"))

    revoked = cli("tokens", "revoke", name, AUTOMATION_ACTOR="ops-amy")
    assert revoked.returncode == 0, revoked.stderr
    assert httpx.get(f"{server.url}/api/v1/runs/{'0' * 32}", headers=headers).status_code == 401
    assert cli("tokens", "revoke", name).returncode == 1
    assert cli("tokens", "revoke", unique("nobody")).returncode == 2

    audit = cli("audit", "list", "--since", "1h", "--actor", "ops-amy", "--json")
    assert audit.returncode == 0, audit.stderr
    mine = [(e["action"], e["source"]) for e in json.loads(audit.stdout) if e["object_id"] == name]
    assert mine == [("token.revoked", "cli"), ("token.created", "cli")]
    assert secret not in audit.stdout
    assert cli("audit", "list", "--since", "yesterday").returncode == 2


def test_tokens_and_the_audit_log_over_the_api(
    server: ApiServer, role_tokens: dict[str, str], revoke_afterwards: list[str]
) -> None:
    admin = {"Authorization": f"Bearer {role_tokens['automation_admin']}"}
    name = unique("api-made")
    revoke_afterwards.append(name)
    body = {"name": name, "roles": ["viewer"], "expires": "2h"}
    created = httpx.post(f"{server.url}/api/v1/tokens", json=body, headers=admin)
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    listed = httpx.get(f"{server.url}/api/v1/tokens", headers=admin)
    assert secret not in listed.text and name in listed.text
    viewer = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{server.url}/api/v1/workflows", headers=viewer).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/tokens", headers=viewer).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/audit", headers=viewer).status_code == 403
    refused = httpx.post(f"{server.url}/api/v1/tokens", json={**body, "roles": ["root"]}, headers=admin)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "roles"
    assert httpx.post(f"{server.url}/api/v1/tokens", json=body, headers=admin).status_code == 409

    page = httpx.get(
        f"{server.url}/api/v1/audit", params={"object_type": "token", "object_id": name}, headers=admin
    ).json()
    (entry,) = page["entries"]
    assert (
        entry["action"] == "token.created" and entry["source"] == "api" and len(entry["after_digest"]) == 64
    )
    first = httpx.get(f"{server.url}/api/v1/audit", params={"limit": 1}, headers=admin).json()
    assert len(first["entries"]) == 1 and first["next_before"] == first["entries"][0]["id"]
    older = httpx.get(
        f"{server.url}/api/v1/audit", params={"limit": 1, "before": first["next_before"]}, headers=admin
    ).json()
    assert older["entries"][0]["id"] < first["entries"][0]["id"]
    bad = httpx.get(f"{server.url}/api/v1/audit", params={"since": "soon", "colour": "red"}, headers=admin)
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"since", "colour"}


def test_an_approval_is_decided_by_the_tokens_principal_within_its_approvers(
    server: ApiServer, role_tokens: dict[str, str], revoke_afterwards: list[str]
) -> None:
    from django.contrib.auth.models import Group, User

    from automation.access.services.tokens import create_token

    alice = User.objects.create_user(unique("alice"))
    alice.groups.add(Group.objects.get_or_create(name="sre")[0])
    bob = User.objects.create_user(unique("bob"))
    alice_token = create_token(
        unique("alice-laptop"), roles=["responder"], expires_in="1h", user=alice.username
    )
    bob_token = create_token(unique("bob-laptop"), roles=["responder"], expires_in="1h", user=bob.username)
    revoke_afterwards.extend([alice_token.token.name, bob_token.token.name])

    admin = {"Authorization": f"Bearer {role_tokens['automation_admin']}"}
    name = unique("approved-by")
    gate = {
        "name": "gate",
        "action_type": "control.approval",
        "parameters": {"approvers": ["group:sre"], "poll_seconds": 0.2},
    }
    assert (
        httpx.post(
            f"{server.url}/api/v1/workflows", json={"name": name, "actions": [gate]}, headers=admin
        ).status_code
        == 201
    )
    run_id = httpx.post(f"{server.url}/api/v1/workflows/{name}/runs", json={}, headers=admin).json()["run_id"]
    run_url = f"{server.url}/api/v1/runs/{run_id}"
    wait_for(lambda: "awaiting" in httpx.get(run_url, headers=admin).text, timeout=60)

    decide = f"{run_url}/steps/gate/approve"
    viewer = {"Authorization": f"Bearer {role_tokens['viewer']}"}
    assert httpx.post(decide, json={}, headers=viewer).status_code == 403  # no runs:approve
    # bob may approve runs, but is not among this step's approvers, whatever name he types.
    as_bob = httpx.post(
        decide, json={"by": alice.username}, headers={"Authorization": f"Bearer {bob_token.secret}"}
    )
    assert as_bob.status_code == 403 and "not an approver" in as_bob.text
    as_alice = httpx.post(
        decide, json={"comment": "ok"}, headers={"Authorization": f"Bearer {alice_token.secret}"}
    )
    assert as_alice.status_code == 200, as_alice.text
    (step,) = as_alice.json()["steps"]
    wait_for(lambda: httpx.get(run_url, headers=admin).json()["status"] == "succeeded", timeout=60)
    from automation.models import AuditEntry, StepRun

    assert StepRun.objects.get(run_id=run_id, name="gate").state["decided_by"] == alice.username
    entry = AuditEntry.objects.get(object_type="step", object_id=f"{run_id}/gate")
    assert (entry.actor, entry.via, entry.action) == (alice.username, alice_token.token.name, "run.approved")


def test_serve_beyond_loopback_with_a_stored_token_never_falls_back_to_open(
    revoke_afterwards: list[str],
) -> None:
    from automation.access.services.tokens import create_token, revoke_token

    made = create_token(unique("edge"), roles=["viewer"], expires_in="1h")
    revoke_afterwards.append(made.token.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AUTOMATION_API_TOKENS", "AUTOMATION_API_REQUIRE_AUTH")
    }
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "automation.cli.main", "serve", "--bind", f"0.0.0.0:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert answers_ok(f"http://127.0.0.1:{port}/healthz", server), "serve did not start"
        url = f"http://127.0.0.1:{port}/api/v1/workflows"
        assert httpx.get(url, headers={"Authorization": f"Bearer {made.secret}"}).status_code == 200
        assert httpx.get(url).status_code == 401
        revoke_token(made.token.name)
        # No live token is left, but this server listens beyond loopback: still closed.
        assert httpx.get(url).status_code == 401
    finally:
        server.terminate()
        server.wait(20)


def test_a_view_no_route_declares_needs_system_admin(role_tokens: dict[str, str]) -> None:
    from django.http import HttpRequest, JsonResponse
    from django.test import RequestFactory

    from automation.api.views import api_view

    @api_view
    def forgotten(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"reached": True})

    def call(secret: str | None) -> int:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
        return forgotten(RequestFactory().get("/forgotten", **headers)).status_code

    assert call(None) == 401
    assert call(role_tokens["operator"]) == 403
    assert call(role_tokens["automation_admin"]) == 200


def test_cli_changes_are_recorded_as_the_cli_user(engine: Any, tmp_path: Any) -> None:
    from automation.models import AuditEntry

    name = unique("cli-audit")
    definition = tmp_path / "wf.yaml"
    definition.write_text(
        f"name: {name}\nactions:\n  - name: gate\n    action_type: control.approval\n"
        "    parameters: {timeout_seconds: 30}\n"
    )
    actor = unique("ops")
    assert cli("workflow", "apply", "-f", str(definition), AUTOMATION_ACTOR=actor).returncode == 0
    started = cli("run", name, AUTOMATION_ACTOR=actor)
    assert started.returncode == 0, started.stderr
    run_id = next(word for word in started.stdout.split() if len(word) == 36)
    assert cli("runs", "cancel", run_id, AUTOMATION_ACTOR=actor).returncode == 0
    entries = AuditEntry.objects.filter(actor=actor).order_by("id")
    assert [(e.action, e.object_id, e.source) for e in entries] == [
        ("definition.registered", name, "cli"),
        ("run.started", run_id, "cli"),
        ("run.cancelled", run_id, "cli"),
    ]
    listed = cli("audit", "list", "--actor", actor, "--object", f"run:{run_id}")
    assert listed.returncode == 0 and listed.stdout.count("\n") == 2 and "run.cancelled" in listed.stdout

