"""The follow job and the guard decisions on the real database: a row that raises, a health check URL
httpx refuses, a rollback that cannot start and a verification whose time is up never stop the pass for
the other remediations; a failed run's rollback waits for its running steps; the provider is asked
outside the guard lock; a half-open breaker lets one trial run."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("engine")


def verifying(url: str | None, *, until: float, run_id: Any = None) -> Any:
    from automation.models import Remediation

    verify: dict[str, Any] = {"within": 60}
    if url is not None:
        verify["http"] = {"url": url, "status": 200, "timeout": 1}
    plan = {"name": unique("policy"), "match": {"alertname": "down"}, "workflow": "w", "verify": verify}
    now = datetime.now(tz=UTC)
    return Remediation.objects.create(
        policy=plan["name"],
        workflow="w",
        fingerprint=unique("fp")[:40],
        fired_at=now,
        status="verifying",
        plan=plan,
        requested_at=now,
        started_at=now,
        verify_until=datetime.fromtimestamp(until, tz=UTC),
        run_id=run_id,
    )


def test_a_url_httpx_refuses_is_not_healthy_and_holds_up_no_other_row() -> None:
    from automation.incidents.services.verification import follow

    now = time.time()
    broken = verifying("http://[::1/x", until=now + 50)
    too_long = verifying(f"http://{'a' * 64}.example/health", until=now + 51)
    fine = verifying(None, until=now + 52)  # no alert: the alert resolved
    follow(now)
    broken.refresh_from_db(), too_long.refresh_from_db(), fine.refresh_from_db()
    assert (broken.status, too_long.status) == ("verifying", "verifying")
    assert (fine.status, fine.detail) == ("succeeded", "verified: the alert resolved")
    # once its time is up it times out, without being looked at again
    follow(now + 60)
    broken.refresh_from_db(), too_long.refresh_from_db()
    assert (broken.status, too_long.status) == ("unverified", "unverified")
    assert broken.detail.startswith("verification failed: health check GET http://[::1/x did not answer 200")


def test_a_rollback_that_cannot_start_still_ends_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from automation.errors import InputError
    from automation.incidents.services import verification

    def refuse(run_id: Any, *, reason: str) -> None:
        raise InputError("compensation: inputs do not match")

    monkeypatch.setattr(verification, "compensate", refuse)
    now = time.time()
    row = verifying(None, until=now - 1, run_id=uuid.uuid4())  # its time is up: not looked at again
    other = verifying(None, until=now + 50)
    assert verification.follow(now)["unverified"] >= 1
    row.refresh_from_db(), other.refresh_from_db()
    assert row.status == "unverified" and row.finished_at is not None
    assert row.detail == (
        "verification failed: the alert did not resolve within 60 s; "
        "rollback could not start: compensation: inputs do not match"
    )
    assert other.status == "succeeded"


def test_one_row_raising_holds_up_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    from automation.incidents.services import verification

    now = time.time()
    bad = verifying(None, until=now + 50)
    fine = verifying(None, until=now + 51)
    real = verification._seen_fixed

    def seen(policy: Any, row: Any) -> tuple[bool, str]:
        if row.pk == bad.pk:
            raise RuntimeError("boom")
        return real(policy, row)

    monkeypatch.setattr(verification, "_seen_fixed", seen)
    assert verification.follow(now)["verified"] >= 1
    bad.refresh_from_db(), fine.refresh_from_db()
    assert (bad.status, fine.status) == ("verifying", "succeeded")


def test_a_failed_run_with_a_step_still_running_is_given_up_once_it_settled(engine: Any) -> None:
    """The run failed while a parallel step still runs: the remediation stays running (its rollback
    cannot start yet) and ends failed, rolled back with that step, on the first pass after it settled."""
    from automation import ActionDefinition
    from automation.fleet.identity import Claimant
    from automation.incidents.services.verification import follow
    from automation.models import Remediation, WorkflowRun
    from automation.runs import services
    from automation.runs.claims import Claim
    from tests.conftest import stored_run

    def step(name: str, *, undo: bool) -> ActionDefinition:
        return ActionDefinition(
            name=name,
            action_type="http.request",
            parameters={"url": f"http://127.0.0.1:9/{name}", "method": "POST"},
            depends_on=[],
            compensate={"action_type": "http.request", "parameters": {"url": "http://127.0.0.1:9/u"}}  # type: ignore[arg-type]
            if undo
            else None,
        )

    run = stored_run(
        engine, "branches", step("fast", undo=True), step("slow", undo=True), step("fail", undo=False)
    )
    claim = Claim(claimant=Claimant(node="test-node", pid=1), token="test-token")
    fast = services.claim_step(run.id, "fast", claim=claim)
    slow = services.claim_step(run.id, "slow", claim=claim)
    fail = services.claim_step(run.id, "fail", claim=claim)
    assert fast is not None and slow is not None and fail is not None
    services.complete_step(fast.id, run_id=run.id, output={"status_code": 200}, sink=False)
    assert services.fail_step(fail.id, run_id=run.id, error="boom")
    row = verifying(None, until=time.time() + 60, run_id=run.id)
    Remediation.objects.filter(pk=row.pk).update(status="running")

    follow(time.time())
    row.refresh_from_db()
    assert (row.status, row.compensation_run_id) == ("running", None)
    services.complete_step(slow.id, run_id=run.id, output={"status_code": 200}, sink=True)
    follow(time.time())
    row.refresh_from_db()
    assert row.status == "failed" and row.compensation_run_id is not None
    undo = WorkflowRun.objects.get(pk=row.compensation_run_id)
    assert undo.inputs["compensation"]["succeeded"] == ["fast", "slow"]


def test_the_provider_is_asked_for_replicas_before_the_guard_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking the provider is network I/O: never while holding the fleet-wide guard lock (nor in any
    transaction)."""
    from django.db import connection

    from automation.incidents.services import remediations
    from automation.models import Alert, Remediation

    asked: list[bool] = []

    def replicas(provider: str, service: str) -> int | None:
        asked.append(connection.in_atomic_block)
        return 4

    monkeypatch.setattr(remediations, "_replicas", replicas)
    now = datetime.now(tz=UTC)
    plan = {
        "name": unique("policy"),
        "match": {"alertname": "down"},
        "workflow": "w",
        "blast_radius": {"max_replica_percent": 50, "replicas_touched": 1},
    }
    service = unique("svc")
    alert = Alert.objects.create(
        fingerprint=unique("fp")[:40],
        name="down",
        origin="event",
        labels={"alertname": "down", "service": service},
        state="firing",
        fired_at=now,
    )
    row = Remediation.objects.create(
        policy=plan["name"],
        workflow="w",
        alert=alert,
        fingerprint=alert.fingerprint,
        fired_at=now,
        service=service,
        status="requested",
        plan=plan,
        requested_at=now,
    )
    decided = remediations.start(row.pk, time.time())
    assert decided is not None  # whatever it decided, the guards were judged with the replicas
    assert asked == [False]


def test_a_half_open_breaker_starts_one_trial_while_it_runs() -> None:
    """The policy's last remediation failed longer ago than `reset_after`: half-open. One of its
    remediations is running (the trial): the next is refused by the breaker, counted from the rows."""
    from automation.incidents.services.remediations import start
    from automation.models import Alert, Remediation

    now = datetime.now(tz=UTC)
    long_ago = datetime.fromtimestamp(time.time() - 120, tz=UTC)
    plan = {
        "name": unique("policy"),
        "match": {"alertname": "down"},
        "workflow": "w",
        "circuit_breaker": {"failures": 1, "reset_after": 60},
    }
    service = unique("svc")

    def remediation(status: str, **fields: Any) -> Any:
        return Remediation.objects.create(
            policy=plan["name"],
            workflow="w",
            fingerprint=unique("fp")[:40],
            fired_at=now,
            service=service,
            status=status,
            plan=plan,
            requested_at=long_ago,
            **fields,
        )

    remediation("failed", started_at=long_ago, finished_at=long_ago)
    remediation("running", started_at=now)  # the trial
    alert = Alert.objects.create(
        fingerprint=unique("fp")[:40],
        name="down",
        origin="event",
        labels={"alertname": "down", "service": service},
        state="firing",
        fired_at=now,
    )
    second = remediation("requested", alert=alert)
    Remediation.objects.filter(pk=second.pk).update(fingerprint=alert.fingerprint)
    decided = start(second.pk, time.time())
    assert decided is not None and (decided.status, decided.guard) == ("refused", "circuit_breaker")
    assert "half-open: one trial is running" in decided.detail
