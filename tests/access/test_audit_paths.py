"""Every mutating route (POST, PUT, DELETE, from the URL configuration) leaves an audit entry with the
token's principal as actor: each is called for real, successfully, through a real `automation serve`.
The telemetry intakes (metrics, events, Alertmanager's webhook) are data, not changes: they are the only
routes left out, and they are listed here by name."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from automation.access.choices import Role
from tests.api_server import ApiServer
from tests.conftest import unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("worker")]

#: Incoming data, not changes to the engine: samples, events, alerts, and the deploys and config changes
#: other tools report (a Change row keeps its own actor and source).
INTAKE = {
    ("POST", "/api/v1/metrics"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/alerts/alertmanager"),
    ("POST", "/api/v1/changes"),
}
#: The session's (tests/conftest.py): the API servers the tests start sign and check links with it.
ACK_SECRET = os.environ["AUTOMATION_ACK_SECRET"]


class Walk:
    """The calls, in an order where each finds what it needs (created before changed, changed before
    deleted); each returns the (object type, object id) its audit entry must name."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tag = uuid.uuid4().hex[:8]
        self.workflow = f"audit-wf-{self.tag}"
        self.steps: dict[tuple[str, str], Callable[[], tuple[str, str]]] = {}

    def ok(self, answer: httpx.Response) -> Any:
        assert answer.status_code < 300, f"{answer.request.method} {answer.request.url}: {answer.text}"
        return answer.json() if answer.content else None


def _services(client: httpx.Client, *names: str) -> dict[str, Any]:
    before = client.get("/api/v1/services").json()
    mine = [{"name": n, "depends_on": [], "owners": [], "description": ""} for n in names]
    return {"services": [*before["services"], *mine]}


def _fire(client: httpx.Client, service: str) -> int:
    labels = {"alertname": f"{service}_down", "service": service, "severity": "high"}
    assert client.post("/api/v1/events", json={"labels": labels, "status": "firing"}).status_code == 202
    (incident,) = client.get("/api/v1/incidents", params={"service": service}).json()["incidents"]
    return int(incident["id"])


def _target(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "service": f"{name}-svc",
        "provider": "stub",
        "load": {
            "metric": f"{name}_rps".replace("-", "_"),
            "matchers": {"service": "web"},
            "step": 60,
            "history": "3h",
        },
        "capacity_per_replica": 100,
        "min_replicas": 1,
        "max_replicas": 5,
        "policy": "reactive",
    }


def test_every_mutating_route_leaves_an_audit_entry(
    server: ApiServer, role_tokens: dict[str, str], engine: Any
) -> None:
    from automation.access.routes import api_routes
    from automation.access.services.tokens import authenticate
    from automation.incidents.ack_links import sign
    from automation.models import AuditEntry

    secret = role_tokens[Role.ADMIN]
    principal = authenticate(secret)
    assert principal is not None
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    walk = Walk(client)
    tag, wf = walk.tag, walk.workflow
    gated = {
        "name": wf,
        "actions": [
            {"name": "gate", "action_type": "control.approval", "parameters": {"poll_seconds": 0.2}},
        ],
    }
    state: dict[str, Any] = {}

    def register() -> tuple[str, str]:
        walk.ok(client.post("/api/v1/workflows", json=gated))
        return "workflow", wf

    def start() -> tuple[str, str]:
        state["run"] = walk.ok(client.post(f"/api/v1/workflows/{wf}/runs", json={}))["run_id"]
        state["other"] = walk.ok(client.post(f"/api/v1/workflows/{wf}/runs", json={}))["run_id"]
        return "run", state["run"]

    def decide() -> tuple[str, str]:
        run = state["run"]
        wait_for(lambda: "awaiting" in str(client.get(f"/api/v1/runs/{run}").json()), timeout=60)
        walk.ok(client.post(f"/api/v1/runs/{run}/steps/gate/approve", json={}))
        return "step", f"{run}/gate"

    def cancel() -> tuple[str, str]:
        walk.ok(client.post(f"/api/v1/runs/{state['other']}/cancel", json={}))
        return "run", state["other"]

    rule = f"audit-rule-{tag}"
    handler = [{"name": "log", "type": "http.request", "parameters": {"url": "http://127.0.0.1:9/x"}}]

    def save_rule() -> tuple[str, str]:
        walk.ok(
            client.post("/api/v1/alert-rules", json={"name": rule, "severity": "low", "actions": handler})
        )
        return "alert_rule", rule

    def delete_rule() -> tuple[str, str]:
        walk.ok(client.delete(f"/api/v1/alert-rules/{rule}"))
        return "alert_rule", rule

    def silence() -> tuple[str, str]:
        body = {
            "matchers": [f'service="{tag}"'],
            "ends_at": time.time() + 600,
            "created_by": "x",
            "comment": "y",
        }
        state["silence"] = walk.ok(client.post("/api/v1/silences", json=body))["id"]
        return "silence", state["silence"]

    def expire() -> tuple[str, str]:
        walk.ok(client.delete(f"/api/v1/silences/{state['silence']}"))
        return "silence", state["silence"]

    def alerting() -> tuple[str, str]:
        walk.ok(client.put("/api/v1/alerting", json=client.get("/api/v1/alerting").json()))
        return "alerting_document", "alerting"

    target = f"audit-target-{tag}"

    def post_target() -> tuple[str, str]:
        walk.ok(client.post("/api/v1/scaling/targets", json=_target(target)))
        return "scaling_target", target

    def put_target() -> tuple[str, str]:
        walk.ok(client.put(f"/api/v1/scaling/targets/{target}", json={**_target(target), "max_replicas": 6}))
        return "scaling_target", target

    def delete_target() -> tuple[str, str]:
        walk.ok(client.delete(f"/api/v1/scaling/targets/{target}"))
        return "scaling_target", target

    linked, stepped = f"audit-a-{tag}", f"audit-b-{tag}"

    def services() -> tuple[str, str]:
        walk.ok(client.put("/api/v1/services", json=_services(client, linked, stepped)))
        state["linked"], state["stepped"] = _fire(client, linked), _fire(client, stepped)
        return "services_document", "services"

    def ack_link() -> tuple[str, str]:
        number = state["linked"]
        token = sign(number, "alice", expires=int(time.time()) + 600, secret=ACK_SECRET)
        answer = httpx.post(f"{server.url}/api/v1/incidents/{number}/ack", data={"token": token})
        walk.ok(answer)
        return "incident", str(number)

    def incident_step(step: str) -> Callable[[], tuple[str, str]]:
        def take() -> tuple[str, str]:
            taken = walk.ok(client.post(f"/api/v1/incidents/{state['stepped']}/{step}", json={"by": "bob"}))
            if step == "acknowledge":  # who acted is the token's principal, not the `by` typed
                assert taken["acknowledged_by"] == principal.name, taken
            return "incident", str(state["stepped"])

        return take

    def escalation() -> tuple[str, str]:
        walk.ok(client.put("/api/v1/escalation", json=client.get("/api/v1/escalation").json()))
        return "escalation_document", "escalation"

    schedule = f"audit-schedule-{tag}"

    def post_schedule() -> tuple[str, str]:
        body = {"name": schedule, "workflow": wf, "every": "1h", "enabled": False}
        walk.ok(client.post("/api/v1/schedules", json=body))
        return "schedule", schedule

    def put_schedule() -> tuple[str, str]:
        body = {"name": schedule, "workflow": wf, "every": "2h", "enabled": False}
        walk.ok(client.put(f"/api/v1/schedules/{schedule}", json=body))
        return "schedule", schedule

    def delete_schedule() -> tuple[str, str]:
        walk.ok(client.delete(f"/api/v1/schedules/{schedule}"))
        return "schedule", schedule

    token = f"audit-token-{tag}"

    def create_token() -> tuple[str, str]:
        walk.ok(client.post("/api/v1/tokens", json={"name": token, "roles": ["viewer"], "expires": "1h"}))
        return "token", token

    def revoke_token() -> tuple[str, str]:
        walk.ok(client.delete(f"/api/v1/tokens/{token}"))
        return "token", token

    def remediation_document() -> tuple[str, str]:
        walk.ok(client.put("/api/v1/remediation", json=walk.ok(client.get("/api/v1/remediation"))))
        return "remediation_document", "remediation"

    def approve_remediation() -> tuple[str, str]:
        from django.utils import timezone

        from automation.incidents.choices import RemediationStatus
        from automation.models import Remediation

        waiting = Remediation.objects.create(
            policy=f"audit-policy-{tag}",
            workflow=wf,
            fingerprint=tag,
            fired_at=timezone.now(),
            requested_at=timezone.now(),
            status=RemediationStatus.AWAITING_APPROVAL,
        )
        walk.ok(client.post(f"/api/v1/remediations/{waiting.pk}/approve", json={}))
        return "remediation", str(waiting.pk)

    walked = [
        (("POST", "/api/v1/workflows"), register),
        (("POST", "/api/v1/workflows/{name}/runs"), start),
        (("POST", "/api/v1/runs/{run_id}/steps/{step}/{decision}"), decide),
        (("POST", "/api/v1/runs/{run_id}/cancel"), cancel),
        (("POST", "/api/v1/alert-rules"), save_rule),
        (("DELETE", "/api/v1/alert-rules/{name}"), delete_rule),
        (("POST", "/api/v1/silences"), silence),
        (("DELETE", "/api/v1/silences/{silence_id}"), expire),
        (("PUT", "/api/v1/alerting"), alerting),
        (("POST", "/api/v1/scaling/targets"), post_target),
        (("PUT", "/api/v1/scaling/targets/{name}"), put_target),
        (("DELETE", "/api/v1/scaling/targets/{name}"), delete_target),
        (("PUT", "/api/v1/services"), services),
        (("POST", "/api/v1/incidents/{incident_id}/ack"), ack_link),
        (("POST", "/api/v1/incidents/{incident_id}/acknowledge"), incident_step("acknowledge")),
        (("POST", "/api/v1/incidents/{incident_id}/mitigate"), incident_step("mitigate")),
        (("POST", "/api/v1/incidents/{incident_id}/resolve"), incident_step("resolve")),
        (("PUT", "/api/v1/escalation"), escalation),
        (("PUT", "/api/v1/remediation"), remediation_document),
        (("POST", "/api/v1/remediations/{remediation_id}/approve"), approve_remediation),
        (("POST", "/api/v1/schedules"), post_schedule),
        (("PUT", "/api/v1/schedules/{name}"), put_schedule),
        (("DELETE", "/api/v1/schedules/{name}"), delete_schedule),
        (("POST", "/api/v1/tokens"), create_token),
        (("DELETE", "/api/v1/tokens/{name}"), revoke_token),
    ]
    mutating = {
        (method, route.path)
        for route in api_routes()
        for method in (
            route.methods if not route.public else {"POST": ""} if route.path.endswith("/ack") else {}
        )
        if method in ("POST", "PUT", "PATCH", "DELETE")
    }
    assert mutating - INTAKE == {key for key, _ in walked}, "a mutating route has no audit case here"

    missing = []
    for (method, path), call in walked:
        newest = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
        object_type, object_id = call()
        found = AuditEntry.objects.filter(id__gt=newest, object_type=object_type, object_id=object_id)
        entry = found.order_by("id").first()
        if entry is None:
            missing.append(f"{method} {path}: no audit entry for {object_type} {object_id}")
            continue
        expected_actor = "alice" if path.endswith("/ack") else principal.name
        if (entry.actor, entry.source) != (expected_actor, "api") or not entry.at:
            missing.append(f"{method} {path}: {entry.actor} from {entry.source}")
        if method in ("POST", "PUT") and not entry.after_digest:
            missing.append(f"{method} {path}: no after digest")
    client.close()
    assert not missing, "\n".join(missing)


def test_the_audit_log_cannot_be_changed(engine: Any) -> None:
    from django.db import DatabaseError, transaction

    from automation.access.services.audit import record
    from automation.models import AuditEntry

    entry = record("test.appended", "test", unique("x"), after={"a": 1})
    for change in (
        lambda: AuditEntry.objects.filter(id=entry.id).update(actor="mallory"),
        lambda: AuditEntry.objects.filter(id=entry.id).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert AuditEntry.objects.get(id=entry.id).actor == entry.actor


def test_the_python_api_records_as_python_and_engine_runs_only_when_asked(engine: Any) -> None:
    from automation import ActionDefinition, WorkflowDefinition
    from automation.models import AuditEntry

    name = unique("py-audit")
    gate = ActionDefinition(name="gate", action_type="control.approval", parameters={"timeout_seconds": 30})
    engine.register_workflow(WorkflowDefinition(name=name, actions=[gate]))
    run = engine.run_workflow(name)
    engine.cancel_run(run.id)
    entries = AuditEntry.objects.filter(object_id__in=[name, run.id]).order_by("id")
    assert [(e.action, e.source) for e in entries] == [
        ("definition.registered", "python"),
        ("run.started", "python"),
        ("run.cancelled", "python"),
    ]
    # A run the engine starts by itself (here: a bare service call, as Beat's jobs make) is its
    # domain's to log, not the audit log's.
    from automation.runs.dispatch import enqueue_run

    own, _ = enqueue_run(name, {})
    assert not AuditEntry.objects.filter(object_id=str(own.id), action="run.started").exists()
    engine.cancel_run(own.id)


def test_a_run_start_is_audited_once_in_the_runs_own_transaction(engine: Any) -> None:
    """The `run.started` entry is written in the batch that stores the run: the same key again (the run
    already exists) adds none, a key reused with other inputs (409) adds none, and it carries the run's
    id and digest like any entry."""
    from automation import ActionDefinition, WorkflowDefinition
    from automation.access.digests import state_digest
    from automation.errors import IdempotencyConflict
    from automation.models import AuditEntry

    name = unique("audit-once")
    gate = ActionDefinition(name="gate", action_type="control.approval", parameters={"timeout_seconds": 30})
    engine.register_workflow(
        WorkflowDefinition(name=name, actions=[gate], inputs={"who": {"type": "string", "default": "x"}})
    )
    key = unique("key")
    first = engine.run_workflow(name, {"who": "a"}, idempotency_key=key)
    again = engine.run_workflow(name, {"who": "a"}, idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict):
        engine.run_workflow(name, {"who": "b"}, idempotency_key=key)
    started = AuditEntry.objects.filter(object_type="run", action="run.started", object_id=str(first.id))
    entries = list(started)
    assert len(entries) == 1
    expected = {"workflow": name, "version": 1, "inputs": {"who": "a"}, "status": "pending"}
    assert entries[0].after_digest == state_digest(expected)
    assert entries[0].summary == {"created": True, "workflow": name}
    engine.cancel_run(first.id)
