"""Guarded remediation on the real database and a real worker, at the engine's default level
(`supervised`: every remediation waits for an approval): the approval, the run it starts, its
verification by the alert's own resolution; and approvals taken at once by threads and the worker
together, which start no more runs than the rate limit allows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import close_thread_clients, unique, wait_for
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("engine", "worker")


@pytest.fixture
def policy_of(engine: Any) -> Iterator[Any]:
    """Applies one policy for alerts named `name`, whose workflow posts to a peer; puts the document
    back after. Yields (apply(name, **guards) -> workflow, peer)."""
    from automation import ActionDefinition, WorkflowDefinition
    from automation.incidents.services.remediation_config import (
        apply_remediation,
        as_json,
        current_remediation,
    )

    saved = as_json(current_remediation())
    peer = HttpPeer()

    def apply(name: str, **extra: Any) -> str:
        workflow = unique("fix")
        engine.register_workflow(
            WorkflowDefinition(
                name=workflow,
                actions=[
                    ActionDefinition(
                        name="act",
                        action_type="http.request",
                        parameters={"url": f"{peer.url}/fix/${{service}}", "method": "POST"},
                    )
                ],
            )
        )
        policy = {
            "name": unique("policy"),
            "match": {"alertname": name},
            "workflow": workflow,
            "inputs": {"service": "${alert.labels.service}"},
            "verify": {"within": 60},
            **extra,
        }
        apply_remediation({"policies": [policy]})
        return workflow

    yield apply, peer
    apply_remediation(saved)
    peer.close()


def receive(name: str, service: str, *, firing: bool = True) -> str:
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert
    from automation.alerting.services.intake import receive as take

    now = time.time()
    labels = {"alertname": name, "service": service, "severity": "medium"}
    fingerprint = digest("remediation-test", labels)
    take(
        ReceivedAlert(
            fingerprint=fingerprint,
            origin="event",
            labels=labels,
            annotations={},
            firing=firing,
            starts_at=datetime.fromtimestamp(now, tz=UTC),
        ),
        now,
    )
    return fingerprint


def rows(fingerprints: list[str]) -> list[Any]:
    from automation.models import Remediation

    return list(Remediation.objects.filter(fingerprint__in=fingerprints).order_by("pk"))


def test_supervised_waits_for_an_approval_then_runs_and_verifies(policy_of: Any) -> None:
    from automation.errors import StateError
    from automation.incidents.services.remediations import approve
    from automation.incidents.services.verification import follow
    from automation.models import AlertLog, IncidentEvent, WorkflowRun

    apply, peer = policy_of
    name = unique("down")
    apply(name)
    fingerprint = receive(name, "api")
    wait_for(lambda: [r.status for r in rows([fingerprint])] == ["awaiting_approval"], timeout=60)
    (row,) = rows([fingerprint])
    assert row.detail == "level supervised, severity medium: waiting for an approval"
    assert peer.received == []
    approve(row.pk, by="ann", now=time.time())
    with pytest.raises(StateError):
        approve(row.pk, by="ann", now=time.time())
    wait_for(lambda: rows([fingerprint])[0].status == "running", timeout=60)
    row = rows([fingerprint])[0]
    assert row.approved_by == "ann" and row.detail.endswith("(level supervised, approved by ann)")
    wait_for(lambda: WorkflowRun.objects.get(pk=row.run_id).status == "succeeded", timeout=60)
    assert [r.path for r in peer.received] == ["/fix/api"]

    follow(time.time())
    assert rows([fingerprint])[0].status == "verifying"  # the alert still fires
    receive(name, "api", firing=False)
    follow(time.time())
    row = rows([fingerprint])[0]
    assert (row.status, row.detail) == ("succeeded", "verified: the alert resolved")
    logged = list(AlertLog.objects.filter(alert__fingerprint=fingerprint).values_list("decision", flat=True))
    assert [d for d in logged if d in ("approval_required", "workflow_started", "remediation_verified")] == [
        "approval_required",
        "workflow_started",
        "remediation_verified",
    ]
    kinds = list(
        IncidentEvent.objects.filter(incident_id=row.incident_id, alert_fingerprint=fingerprint)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )
    assert [k for k in kinds if k.startswith(("remediation", "verified"))] == [
        "remediation_held",
        "remediation_started",
        "verified",
    ]


def test_concurrent_decisions_start_no_more_runs_than_the_rate_limit(policy_of: Any) -> None:
    """Six alerts of one workflow, approved at once: the worker and four threads decide them together;
    two runs start (the limit), four are refused naming the rate limit."""
    from automation.incidents.services.remediations import approve, start
    from automation.incidents.services.verification import follow

    apply, _ = policy_of
    name = unique("down")
    apply(name, rate_limit={"per_service": None, "per_workflow": {"runs": 2, "window": 600}})
    fingerprints = [receive(name, f"svc-{i}") for i in range(6)]
    wait_for(lambda: all(r.status == "awaiting_approval" for r in rows(fingerprints)), timeout=60)
    assert len(rows(fingerprints)) == 6
    for row in rows(fingerprints):
        approve(row.pk, by="ann", now=time.time())  # each also sends its start to the worker

    def decide(pk: int) -> None:
        try:
            start(pk, time.time())
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(decide, [r.pk for r in rows(fingerprints)]))
    wait_for(lambda: all(r.status != "requested" for r in rows(fingerprints)), timeout=60)
    found = rows(fingerprints)
    assert sorted(r.status for r in found) == ["refused"] * 4 + ["running"] * 2, [r.detail for r in found]
    refused = [r for r in found if r.status == "refused"]
    assert {r.guard for r in refused} == {"rate_limit_workflow"}
    assert all("2 run(s) started in the last 600 s, at most 2" in r.detail for r in refused)

    # the two runs end, their alerts resolve: verified, they no longer count as touching their services
    for i in range(6):
        receive(name, f"svc-{i}", firing=False)

    def settled() -> bool:
        follow(time.time())
        return all(r.status in ("refused", "succeeded") for r in rows(fingerprints))

    wait_for(settled, timeout=60)
