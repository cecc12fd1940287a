"""Guarded remediation end to end, on real parts: a real local service (the demo's echo service, run by
the `local` provider) probed over HTTP, its health pushed as a metric and judged by a real alert rule;
the incident it opens paged through real receivers (a webhook peer, an SMTP server) by the escalation
tick; the remediation decided on a real worker under its guards, its run restarting the service, its
verification a real health check; the post-incident report read through the CLI. Then the same with a
service a restart does not fix: verification fails, the run's compensation rolls it back, the escalation
is hastened, the circuit breaker opens and the next firing is refused by it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.alerting.test_receivers import Mailbox, smtp_server
from tests.conftest import ECHO_SERVICE, SERVICES_FILE, free_port, unique, wait_for
from tests.incidents.escalation_setup import (
    apply_receivers,
    level,
    mail,
    restore_documents,
    schedule,
    stored_documents,
    webhook,
)
from tests.incidents.test_incidents_api import cli
from tests.incidents.test_incidents_integration import kinds
from tests.peers import HttpPeer

pytestmark = pytest.mark.usefixtures("engine", "worker")


@pytest.fixture(scope="module")
def autonomy(engine: Any) -> Iterator[None]:
    """Level semi_autonomous (a medium alert's remediation runs alone), seen by the worker (its copy of
    the config is cached 5 s); the engine's config is put back after, and waited for the same way (the
    next module's remediations must not run at this level from the worker's stale copy)."""
    from automation import AutomationConfig
    from automation.config.apply import apply_config

    apply_config(AutomationConfig(**{**engine.config.model_dump(), "level": "semi_autonomous"}))
    time.sleep(5.5)
    yield
    apply_config(engine.config)
    time.sleep(5.5)


@dataclass
class Stage:
    tag: str
    service: str
    health_url: str
    metric: str
    rule: Any
    provider: Any
    alice: HttpPeer
    rollback: HttpPeer
    mailbox: Mailbox
    smtp_port: int

    def name(self, role: str) -> str:
        return f"{role}_{self.tag}"


@pytest.fixture
def stage(request: pytest.FixtureRequest, autonomy: None) -> Iterator[Stage]:
    """One service (healthy, or `--unhealthy` when the test asks: indirect parameter) declared in the
    services file and started; a rule on its health; webhook and SMTP peers; the documents put back after."""
    from automation.alerting.services.rules import save_rule
    from automation.incidents.services.remediation_config import (
        apply_remediation,
        as_json,
        current_remediation,
    )
    from automation.providers import get_provider

    unhealthy = getattr(request, "param", "healthy") == "unhealthy"
    saved, saved_fixes = stored_documents(), as_json(current_remediation())
    tag = unique("fix").replace("-", "_")
    service, port = f"svc-{tag.replace('_', '-')}", free_port()
    command = ["{python}", str(ECHO_SERVICE), "--port", "{port}", *(["--unhealthy"] if unhealthy else [])]
    SERVICES_FILE.write_text(
        yaml.safe_dump(
            {
                "services": {
                    service: {
                        "command": command,
                        "port": port,
                        "health_url": "http://127.0.0.1:{port}/health",
                        "grace_period": 1,
                    }
                }
            }
        )
    )
    provider = get_provider("local", services_file=str(SERVICES_FILE))
    provider.start(service, wait_for_health=not unhealthy)
    metric = f"up_{tag}"
    rule = save_rule({"name": f"down_{tag}", "condition": f"{metric} < 1", "severity": "medium"})
    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    alice, rollback = HttpPeer(), HttpPeer()
    try:
        yield Stage(
            tag,
            service,
            f"http://127.0.0.1:{port}/health",
            metric,
            rule,
            provider,
            alice,
            rollback,
            mailbox,
            smtp.port,
        )
    finally:
        apply_remediation(saved_fixes)
        restore_documents(saved)
        provider.stop(service, grace_period=1)
        smtp.stop()
        alice.close()
        rollback.close()


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def observe(engine: Any, stage: Stage, value: float | None = None) -> dict[str, Any]:
    """Probe the service's health (or take `value`), push it as the rule's metric and evaluate the rule."""
    from automation.alerting.services.evaluation import evaluate_rules

    now = float(int(time.time()))
    seen = value if value is not None else (1.0 if healthy(stage.health_url) else 0.0)
    engine.push_samples(stage.metric, {"service": stage.service}, [(now, seen)])
    (report,) = evaluate_rules([stage.rule], now)
    return dict(report)


def escalate_and_fix(engine: Any, stage: Stage, *, first_timeout: float, within: float) -> None:
    """Alice on call (webhook) then bob (email); a workflow restarting the service whose compensation
    tells the rollback peer; a policy running it for the rule's alert, verified by the health check."""
    from automation import ActionDefinition, WorkflowDefinition
    from automation.incidents.services.escalation_config import apply_escalation
    from automation.incidents.services.remediation_config import apply_remediation

    alice_hook, bob_mail = stage.name("alice_hook"), stage.name("bob_mail")
    apply_receivers(
        webhook(alice_hook, f"{stage.alice.url}/alice"), mail(bob_mail, stage.smtp_port, "bob@example.org")
    )
    apply_escalation(
        {
            "users": [{"name": "alice", "receivers": [alice_hook]}, {"name": "bob", "receivers": [bob_mail]}],
            "schedules": [schedule(stage.name("primary"), ["alice"])],
            "policies": [
                {
                    "name": stage.name("policy"),
                    "match": {"services": [stage.service]},
                    "levels": [
                        level({"schedule": stage.name("primary")}, timeout=first_timeout),
                        level({"user": "bob"}, timeout=600),
                    ],
                }
            ],
        }
    )
    workflow = stage.name("restart")
    engine.register_workflow(
        WorkflowDefinition(
            name=workflow,
            actions=[
                ActionDefinition(
                    name="restart",
                    action_type="infrastructure.restart_service",
                    parameters={"service_name": "${service}", "graceful": True, "wait_for_health": False},
                    retry_attempts=0,
                    compensate={  # type: ignore[arg-type]
                        "action_type": "http.request",
                        "parameters": {
                            "url": f"{stage.rollback.url}/rollback",
                            "method": "POST",
                            "json": {"service": "${service}", "undoing": "${compensation.run}"},
                        },
                    },
                )
            ],
        )
    )
    apply_remediation(
        {
            "policies": [
                {
                    "name": stage.name("restart_policy"),
                    "match": {"alertname": stage.rule.name},
                    "workflow": workflow,
                    "inputs": {"service": "${alert.labels.service}"},
                    "verify": {"http": {"url": stage.health_url, "status": 200}, "within": within},
                    "circuit_breaker": {"failures": 1, "reset_after": 600},
                    # the service's replicas as its provider reports them (one: 100 % touched at once)
                    "blast_radius": {"max_services": 20, "max_replica_percent": 100, "provider": "local"},
                }
            ]
        }
    )


def remediations(incident: Any) -> list[Any]:
    from automation.models import Remediation

    return list(Remediation.objects.filter(incident=incident).order_by("pk"))


def follow_until(pk: int, *statuses: str, timeout: float = 90.0) -> Any:
    """Run the follow job (what Beat runs) until remediation `pk` reaches one of `statuses`."""
    from automation.incidents.services.verification import follow
    from automation.models import Remediation, StepRun

    def reached() -> bool:
        follow(time.time())
        return Remediation.objects.get(pk=pk).status in statuses

    try:
        wait_for(reached, timeout=timeout)
    except AssertionError:
        row = Remediation.objects.get(pk=pk)
        steps = list(StepRun.objects.filter(run_id=row.run_id).values_list("name", "status", "error"))
        raise AssertionError(f"remediation {row.status} ({row.guard}): {row.detail}; steps {steps}") from None
    return Remediation.objects.get(pk=pk)


def pages(incident: Any) -> list[int]:
    from automation.models import Escalation

    return [p.level + 1 for p in Escalation.objects.get(incident=incident).pages.order_by("round", "level")]


def tick_until(incident: Any, done: Any, timeout: float = 60.0) -> None:
    from automation.incidents.services.escalations import tick
    from automation.models import Escalation

    pk = Escalation.objects.get(incident=incident).pk
    wait_for(lambda: tick(time.time(), [pk]) is not None and done(), timeout=timeout)


def decisions(fingerprint: str) -> list[str]:
    from automation.models import AlertLog

    return list(AlertLog.objects.filter(alert__fingerprint=fingerprint).values_list("decision", flat=True))


def test_a_failed_health_check_is_paged_escalated_fixed_verified_and_resolved(
    engine: Any, stage: Stage
) -> None:
    from automation.incidents.services.transitions import auto_resolve
    from automation.models import Incident, WorkflowRun

    escalate_and_fix(engine, stage, first_timeout=2, within=30)
    before = stage.provider.status(stage.service)["replicas"][0]
    os.kill(before["pid"], signal.SIGKILL)  # the service dies: its health check fails
    wait_for(lambda: not healthy(stage.health_url))
    stage.provider.status(stage.service)  # reaps it (this process started it), as its own host would
    report = observe(engine, stage)
    assert len(report["fired"]) == 1, report
    fingerprint = report["fired"][0]
    incident = Incident.objects.get(alerts__fingerprint=fingerprint)

    # the on-call user is paged (the tick nudged when the incident opened, on the worker), and since
    # nobody acknowledges, level 2 (bob, by email) once level 1's 2 s have passed
    wait_for(lambda: pages(incident) == [1], timeout=60)
    tick_until(incident, lambda: pages(incident) == [1, 2])
    wait_for(lambda: len(stage.alice.received) == 1 and len(stage.mailbox.accepted) == 1, timeout=60)

    # the remediation was decided on the worker under its guards and restarted the service
    (fix,) = remediations(incident)
    fix = follow_until(fix.pk, "succeeded", "unverified", "failed")
    assert fix.status == "succeeded", fix.detail
    assert fix.detail.startswith(f"verified: health check GET {stage.health_url} answered 200")
    run = WorkflowRun.objects.get(pk=fix.run_id)
    assert run.status == "succeeded" and run.idempotency_key == f"remediation:{fix.pk}"
    after = stage.provider.status(stage.service)["replicas"][0]
    assert after["pid"] != before["pid"] and healthy(stage.health_url)
    assert stage.rollback.received == []  # nothing to undo

    # the alert resolves once its health is seen again, the incident once it stayed quiet
    wait_for(lambda: len(observe(engine, stage)["resolved"]) == 1 or _resolved(fingerprint), timeout=30)
    assert incident.pk in auto_resolve(time.time() + 1, 0.0)
    incident.refresh_from_db()
    assert incident.status == "resolved"

    seen = kinds(incident)
    for kind in ("opened", "paged", "escalated", "remediation_started", "verified", "auto_resolved"):
        assert kind in seen, seen
    assert seen.index("remediation_started") < seen.index("verified") < seen.index("auto_resolved")
    assert seen[0] == "opened" and seen[-1] == "auto_resolved"
    assert "workflow_started" in decisions(fingerprint) and "remediation_verified" in decisions(fingerprint)

    shown = cli("incidents", "report", str(incident.pk))
    assert shown.returncode == 0, shown.stderr
    for text in (
        "remediation_started",
        "verified",
        "paged",
        "escalated",
        "auto_resolved",
        stage.name("restart"),
    ):
        assert text in shown.stdout, shown.stdout
    assert f"{stage.name('restart_policy')} ({stage.name('restart')}): succeeded: verified" in shown.stdout
    listed = cli("remediation", "list", "--incident", str(incident.pk))
    assert f"succeeded         {stage.name('restart_policy')} on {stage.service}" in listed.stdout, (
        listed.stdout
    )


def _resolved(fingerprint: str) -> bool:
    from automation.models import Alert

    return Alert.objects.get(fingerprint=fingerprint).state == "resolved"


@pytest.mark.parametrize("stage", ["unhealthy"], indirect=True)
def test_a_fix_that_does_not_work_is_rolled_back_escalated_and_stops_the_breaker(
    engine: Any, stage: Stage
) -> None:
    from automation.models import Incident, WorkflowRun
    from automation.runs.compensation import compensation_of

    # level 1 waits 600 s: only the remediation's failure can bring level 2 before that
    escalate_and_fix(engine, stage, first_timeout=600, within=3)
    report = observe(engine, stage)
    assert len(report["fired"]) == 1, report
    fingerprint = report["fired"][0]
    incident = Incident.objects.get(alerts__fingerprint=fingerprint)
    wait_for(lambda: pages(incident) == [1], timeout=60)

    (fix,) = remediations(incident)
    fix = follow_until(fix.pk, "succeeded", "unverified", "failed")
    assert fix.status == "unverified", fix.detail
    assert f"verification failed: health check GET {stage.health_url} did not answer 200" in fix.detail
    assert "circuit breaker opened" in fix.detail
    undo = compensation_of(fix.run_id)
    assert undo is not None and str(undo.pk) == str(fix.compensation_run_id)
    wait_for(lambda: WorkflowRun.objects.get(pk=undo.pk).status == "succeeded", timeout=60)
    (rolled_back,) = [r for r in stage.rollback.received if r.method == "POST"]
    assert rolled_back.body == {"service": stage.service, "undoing": str(fix.run_id)}
    assert rolled_back.headers["Idempotency-Key"] == f"{undo.pk}:undo_restart"

    # escalated: level 2 (bob) paged now, not after level 1's 600 s
    tick_until(incident, lambda: pages(incident) == [1, 2])
    wait_for(lambda: len(stage.mailbox.accepted) == 1, timeout=60)

    # the alert fires again: the open circuit breaker refuses to act, and says so
    assert len(observe(engine, stage, value=1.0)["resolved"]) == 1
    time.sleep(1.0)  # the next evaluation's whole second
    assert len(observe(engine, stage)["fired"]) == 1
    second = remediations(incident)[1]
    wait_for(lambda: _status(second.pk) != "requested", timeout=60)
    second.refresh_from_db()
    assert (second.status, second.guard) == ("refused", "circuit_breaker"), second.detail
    assert second.run_id is None
    assert decisions(fingerprint).count("guard_refused") == 1
    assert decisions(fingerprint).count("remediation_failed") == 1

    seen = kinds(incident)
    for kind in (
        "remediation_started",
        "verification_failed",
        "rolled_back",
        "breaker_opened",
        "escalation_hastened",
        "escalated",
        "remediation_held",
    ):
        assert kind in seen, seen
    assert seen.index("verification_failed") < seen.index("rolled_back") < seen.index("escalation_hastened")
    shown = cli("incidents", "report", str(incident.pk))
    assert shown.returncode == 0, shown.stderr
    for text in ("verification_failed", "rolled_back", "breaker_opened", "[circuit_breaker]", "unverified"):
        assert text in shown.stdout, shown.stdout


def _status(pk: int) -> str:
    from automation.models import Remediation

    return str(Remediation.objects.get(pk=pk).status)


def test_a_resolved_alert_is_never_acted_on(engine: Any, stage: Stage) -> None:
    """The firing is requested, but the alert resolves before a worker decides: the decision reads the
    alert's durable state and refuses."""
    from automation.incidents.services.remediation_config import apply_remediation
    from automation.incidents.services.remediations import request, start
    from automation.models import Alert, Remediation

    escalate_and_fix(engine, stage, first_timeout=600, within=3)
    apply_remediation({"policies": []})  # the firing itself requests nothing
    fired = observe(engine, stage, value=0.0)["fired"]
    stale = Alert.objects.get(fingerprint=fired[0])  # as the pipeline saw it when it fired
    time.sleep(1.0)
    assert len(observe(engine, stage, value=1.0)["resolved"]) == 1
    escalate_and_fix(engine, stage, first_timeout=600, within=3)
    (pk,) = request(stale, time.time(), None)
    start(pk, time.time())  # the worker may have taken it first: the outcome is the same
    row = Remediation.objects.get(pk=pk)
    assert (row.status, row.guard, row.run_id) == ("refused", "alert_resolved", None)
    assert row.detail == "the alert no longer fires (resolved): nothing to fix"
    assert start(pk, time.time()) is None  # decided once
