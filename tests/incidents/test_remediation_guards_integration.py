"""The guards and the automation level on real parts: alerts received through the alerting pipeline open
incidents on PostgreSQL, each remediation is decided by a real worker (the start task, through Redis), its
run executed there, its page delivered there. The loop and the blast radius refuse, the level `manual`
only notifies, and each decision is on the incident's timeline and in the alert's notification log.

Hastening the escalation is taken in the transaction of the decision that gives up (a loop refusal, a
failed run): a process dying in between loses neither, and when the tick's nudge after the commit is lost,
the escalation tick (Beat's sweep) pages the level due now. A request whose start message was never sent
is sent again by the follow pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import unique, wait_for
from tests.incidents.escalation_setup import (
    apply_receivers,
    level,
    restore_documents,
    stored_documents,
    webhook,
)
from tests.incidents.test_remediation_integration import receive
from tests.peers import Answer, HttpPeer

pytestmark = pytest.mark.usefixtures("engine", "worker")


class Crash(BaseException):  # noqa: N818 - stands for the process dying: nothing in the engine catches it
    """The process dies here."""


@dataclass
class Stage:
    """Unique names of one test, the peers its fix workflow and its pages reach, and what it applied."""

    tag: str = field(default_factory=lambda: unique("guard").replace("-", "_"))
    fixer: HttpPeer = field(default_factory=HttpPeer)
    alice: HttpPeer = field(default_factory=HttpPeer)
    bob: HttpPeer = field(default_factory=HttpPeer)
    #: Services whose fix answers 500 (its run fails).
    broken: set[str] = field(default_factory=set)
    workflow: str = ""
    policy: str = ""

    def service(self, role: str) -> str:
        return f"{role}-{self.tag}".replace("_", "-")

    @property
    def alertname(self) -> str:
        return f"down_{self.tag}"


@pytest.fixture
def stage(engine: Any) -> Iterator[Stage]:
    """A fix workflow posting to a peer; an escalation of two webhook levels (alice, then bob after 600 s:
    only a hastening pages bob within the test) for the alerts named after the stage. The alerting,
    escalation and remediation documents are put back after."""
    from automation import ActionDefinition, WorkflowDefinition
    from automation.incidents.services.escalation_config import apply_escalation
    from automation.incidents.services.remediation_config import (
        apply_remediation,
        as_json,
        current_remediation,
    )

    saved, saved_fixes = stored_documents(), as_json(current_remediation())
    made = Stage()
    made.fixer.responder = lambda r: Answer(status=500) if r.path.split("/")[-1] in made.broken else Answer()
    made.workflow = unique("fix")
    engine.register_workflow(
        WorkflowDefinition(
            name=made.workflow,
            actions=[
                ActionDefinition(
                    name="act",
                    action_type="http.request",
                    parameters={"url": f"{made.fixer.url}/fix/${{service}}", "method": "POST"},
                    retry_attempts=0,
                )
            ],
        )
    )
    alice_hook, bob_hook = f"alice_{made.tag}", f"bob_{made.tag}"
    apply_receivers(webhook(alice_hook, f"{made.alice.url}/alice"), webhook(bob_hook, f"{made.bob.url}/bob"))
    apply_escalation(
        {
            "users": [{"name": "alice", "receivers": [alice_hook]}, {"name": "bob", "receivers": [bob_hook]}],
            "policies": [
                {
                    "name": f"policy_{made.tag}",
                    "match": {"services": [made.service(role) for role in ("a", "b")]},
                    "levels": [level({"user": "alice"}, timeout=600), level({"user": "bob"}, timeout=600)],
                }
            ],
        }
    )
    try:
        yield made
    finally:
        apply_remediation(saved_fixes)
        restore_documents(saved)
        for peer in (made.fixer, made.alice, made.bob):
            peer.close()


def apply(stage: Stage, **guards: Any) -> None:
    """One remediation policy for the stage's alerts, with `guards` (rate limits off unless given)."""
    from automation.incidents.services.remediation_config import apply_remediation

    stage.policy = unique("policy")
    policy = {
        "name": stage.policy,
        "match": {"alertname": stage.alertname},
        "workflow": stage.workflow,
        "inputs": {"service": "${alert.labels.service}"},
        "verify": {"within": 60},
        "rate_limit": {"per_service": None, "per_workflow": None},
        **guards,
    }
    apply_remediation({"policies": [policy]})


def fire(stage: Stage, service: str, *, firing: bool = True) -> str:
    """The stage's alert on `service` received (firing or resolved) through the pipeline; its fingerprint."""
    return receive(stage.alertname, service, firing=firing)


def newest(fingerprint: str) -> Any:
    from automation.models import Remediation

    return Remediation.objects.filter(fingerprint=fingerprint).order_by("-pk").first()


def decided(fingerprint: str, *statuses: str) -> Any:
    """The newest remediation of the alert once the worker decided it (its status one of `statuses`)."""
    wait_for(lambda: newest(fingerprint) is not None and newest(fingerprint).status in statuses, timeout=60)
    return newest(fingerprint)


def events(incident_id: int, fingerprint: str | None = None) -> list[tuple[str, str]]:
    """(kind, detail) of the incident's timeline, of one alert when given."""
    from automation.models import IncidentEvent

    rows = IncidentEvent.objects.filter(incident_id=incident_id)
    if fingerprint is not None:
        rows = rows.filter(alert_fingerprint=fingerprint)
    return list(rows.order_by("at", "id").values_list("kind", "detail"))


def logged(fingerprint: str) -> list[tuple[str, str]]:
    """(decision, detail) of the alert's notification log."""
    from automation.models import AlertLog

    rows = AlertLog.objects.filter(alert__fingerprint=fingerprint).order_by("at", "id")
    return list(rows.values_list("decision", "detail"))


def escalation(incident_id: int) -> Any:
    from automation.models import Escalation

    return Escalation.objects.get(incident_id=incident_id)


def paged(peer: HttpPeer) -> int:
    return len([r for r in list(peer.received) if r.method == "POST"])


def approved_and_run(fingerprint: str) -> Any:
    """Approve the alert's remediation (the default level, supervised, waits for it); the worker starts
    its run; returns the row once the run ended."""
    from automation.incidents.services.remediations import approve
    from automation.models import WorkflowRun

    row = decided(fingerprint, "awaiting_approval")
    approve(row.pk, by="ann", now=time.time())
    row = decided(fingerprint, "running")
    wait_for(lambda: WorkflowRun.objects.get(pk=row.run_id).status in ("succeeded", "failed"), timeout=60)
    return row


def worked_once(stage: Stage, service: str) -> str:
    """One remediation of the alert on `service` that worked: run, verified by the alert resolving."""
    from automation.incidents.services.verification import follow

    fingerprint = fire(stage, service)
    approved_and_run(fingerprint)
    follow(time.time())
    assert newest(fingerprint).status == "verifying"
    fire(stage, service, firing=False)
    follow(time.time())
    row = newest(fingerprint)
    assert (row.status, row.detail) == ("succeeded", "verified: the alert resolved")
    return fingerprint


def settle(stage: Stage, service: str) -> None:
    """Resolve the alert on `service` and follow its remediations to an end: no row stays active for later
    tests (the blast radius counts every active one)."""
    from automation.incidents.services.verification import follow
    from automation.models import Remediation

    fire(stage, service, firing=False)

    def ended() -> bool:
        follow(time.time())
        active = Remediation.objects.filter(policy=stage.policy, status__in=("running", "verifying"))
        return not active.exists()

    wait_for(ended, timeout=60)


def test_the_loop_guard_refuses_a_fix_that_does_not_hold_and_hastens_the_escalation(stage: Stage) -> None:
    """The alert's remediation worked once; the alert fires again within the loop's window: the worker
    refuses (before any approval), says so on the timeline and in the log, and pages the next level now."""
    from automation.incidents.services.escalations import tick

    apply(stage, loop={"max_repeats": 1, "window": 600})
    service = stage.service("a")
    fingerprint = worked_once(stage, service)
    first = newest(fingerprint)
    wait_for(lambda: paged(stage.alice) == 1, timeout=60)  # level 1 when the incident opened

    assert fire(stage, service) == fingerprint  # the same alert, a new firing
    row = decided(fingerprint, "refused", "awaiting_approval", "running")
    assert row.pk != first.pk
    assert (row.status, row.guard, row.run_id) == ("refused", "loop", None), row.detail
    reason = (
        "loop: this alert fired again after 1 remediation(s) of it that worked in the last 600 s "
        "(at most 1): its fix does not hold"
    )
    assert row.detail == reason
    text = f"policy {stage.policy} ({stage.workflow}): not run: {reason}"
    assert ("remediation_held", text) in events(row.incident_id, fingerprint)
    assert ("guard_refused", text) in logged(fingerprint)
    hastened = [d for k, d in events(row.incident_id) if k == "escalation_hastened"]
    assert hastened == [f"policy {stage.policy} refused to act ({reason}): paging the next level now"]
    # bob is paged now (the nudge, or the tick), not after level 1's 600 s
    pk = escalation(row.incident_id).pk
    wait_for(lambda: tick(time.time(), [pk]) is not None and paged(stage.bob) == 1, timeout=60)
    assert [r.path for r in stage.fixer.received] == [f"/fix/{service}"]  # the one run that worked


def test_the_blast_radius_refuses_a_service_beyond_its_bound(stage: Stage) -> None:
    """One remediation runs on service a (active until followed); with at most that many services under
    remediation, the worker refuses the one on service b, and says so; the blast radius does not
    escalate (it is the fleet's state, not this incident's)."""
    from automation.models import Remediation

    busy = set(
        Remediation.objects.filter(status__in=("running", "verifying")).values_list("service", flat=True)
    )
    apply(stage, blast_radius={"max_services": len(busy) + 1})
    first = fire(stage, stage.service("a"))
    try:
        row = approved_and_run(first)
        assert Remediation.objects.get(pk=row.pk).status == "running"  # not followed yet: active

        second = fire(stage, stage.service("b"))
        refused = decided(second, "refused", "awaiting_approval")
        assert (refused.status, refused.guard, refused.run_id) == ("refused", "blast_radius", None)
        assert refused.detail.startswith(
            f"blast radius: {len(busy) + 1} service(s) under remediation now ("
        ) and refused.detail.endswith(f", at most {len(busy) + 1}")
        assert stage.service("a") in refused.detail
        text = f"policy {stage.policy} ({stage.workflow}): not run: {refused.detail}"
        assert ("remediation_held", text) in events(refused.incident_id, second)
        assert ("guard_refused", text) in logged(second)
        assert "escalation_hastened" not in [k for k, _ in events(refused.incident_id)]
        assert [r.path for r in stage.fixer.received] == [f"/fix/{stage.service('a')}"]
    finally:
        settle(stage, stage.service("a"))


def test_a_failed_fix_hastens_the_escalation_even_if_the_process_dies_on_the_way(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fix's run failed. The follow pass dies while hastening: its giving up is rolled back with it
    (with the hastening after the commit, the row ended `failed` and nothing looked at it again: the
    escalation stayed 600 s away). The next pass gives up and hastens; the nudge to the tick is lost
    too (a broker refusal, or the process dying after the commit): the escalation tick pages the next
    level, now due, on its own."""
    from automation.incidents.services import escalations, verification
    from automation.incidents.services.verification import follow

    apply(stage)
    service = stage.service("a")
    stage.broken.add(service)
    fingerprint = fire(stage, service)
    row = approved_and_run(fingerprint)
    wait_for(lambda: paged(stage.alice) == 1, timeout=60)
    due = escalation(row.incident_id).next_due_at.timestamp()
    assert due > time.time() + 500

    real = verification.hasten

    def die(incident_id: int, now: float, reason: str) -> bool:
        if incident_id == row.incident_id:
            raise Crash()
        return real(incident_id, now, reason)  # another test's row, followed by the same pass

    with monkeypatch.context() as patched:
        patched.setattr(verification, "hasten", die)
        with pytest.raises(Crash):
            follow(time.time())
    row = newest(fingerprint)
    assert row.status == "running", row.detail  # nothing of the giving up was committed
    assert "remediation_failed" not in [k for k, _ in events(row.incident_id)]

    nudged: list[Any] = []
    with monkeypatch.context() as patched:
        patched.setattr(escalations, "nudge", nudged.append)  # the message is never sent
        follow(time.time())
    row = newest(fingerprint)
    assert row.status == "failed" and row.detail.startswith("run failed:"), row.detail
    assert nudged  # the nudge was asked for once the giving up committed, and lost
    kinds = [k for k, _ in events(row.incident_id)]
    assert kinds.count("remediation_failed") == 1 and kinds.count("escalation_hastened") == 1
    assert kinds.index("remediation_failed") < kinds.index("escalation_hastened")
    assert escalation(row.incident_id).next_due_at.timestamp() <= time.time()
    assert ("remediation_failed", f"policy {stage.policy} ({stage.workflow}): {row.detail}") in logged(
        fingerprint
    )
    time.sleep(0.5)
    assert paged(stage.bob) == 0  # nobody sent the tick

    # the Beat job's body: the escalation due now is paged on this pass
    from automation.incidents.services.escalations import tick

    pk = escalation(row.incident_id).pk
    assert tick(time.time(), [pk]) == {str(pk): ["page"]}
    wait_for(lambda: paged(stage.bob) == 1, timeout=60)


def test_a_refusal_that_escalates_is_hastened_even_if_the_deciding_process_dies(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop refusal, decided here (its start message kept from the worker): the process dies while
    hastening, and the refusal is rolled back with it (with the hastening after the commit, the row stayed
    refused and nothing looked at it again). Decided again, it is refused and hastened once."""
    from automation.incidents.services import remediations

    apply(stage, loop={"max_repeats": 1, "window": 600})
    service = stage.service("a")
    fingerprint = worked_once(stage, service)
    with monkeypatch.context() as patched:
        patched.setattr(remediations, "send_start", lambda ids: None)
        fire(stage, service)
    row = newest(fingerprint)
    assert row.status == "requested"

    def die(incident_id: int, now: float, reason: str) -> bool:
        raise Crash()

    with monkeypatch.context() as patched:
        patched.setattr(remediations, "hasten", die)
        with pytest.raises(Crash):
            remediations.start(row.pk, time.time())
    assert newest(fingerprint).status == "requested"  # the follow pass sends its start again
    assert "escalation_hastened" not in [k for k, _ in events(row.incident_id)]

    again = remediations.start(row.pk, time.time())
    assert again is not None and (again.status, again.guard) == ("refused", "loop")
    assert [k for k, _ in events(row.incident_id)].count("escalation_hastened") == 1
    assert escalation(row.incident_id).next_due_at.timestamp() <= time.time()


def test_a_request_whose_start_was_never_sent_is_decided_once_the_follow_pass_sends_it(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request is committed, its start message never sent (the process died after the commit): the
    follow pass sends it again once it is `RESEND_AFTER` old, and the worker decides it."""
    from automation.incidents.services import remediations
    from automation.incidents.services.verification import RESEND_AFTER, follow
    from automation.models import Remediation

    apply(stage)
    with monkeypatch.context() as patched:
        patched.setattr(remediations, "send_start", lambda ids: None)
        fingerprint = fire(stage, stage.service("a"))
    row = newest(fingerprint)
    follow(time.time())  # too young to send again: its message may only be queued
    time.sleep(0.5)
    assert newest(fingerprint).status == "requested"  # nobody was told
    long_ago = datetime.fromtimestamp(time.time() - RESEND_AFTER - 1, tz=UTC)
    Remediation.objects.filter(pk=row.pk).update(updated_at=long_ago)  # committed, then nothing
    assert follow(time.time())["resent"] >= 1
    row = decided(fingerprint, "awaiting_approval", "refused", "running")
    assert (row.status, row.detail) == (
        "awaiting_approval",
        "level supervised, severity medium: waiting for an approval",
    )


@pytest.fixture
def manual(engine: Any) -> Iterator[None]:
    """Level `manual`, seen by the worker (its copy of the config is cached 5 s); the engine's config put
    back after, and waited for the same way (a later test must not decide at `manual` from a stale copy)."""
    from automation import AutomationConfig
    from automation.config.apply import apply_config

    apply_config(AutomationConfig(**{**engine.config.model_dump(), "level": "manual"}))
    time.sleep(5.5)
    try:
        yield
    finally:
        apply_config(engine.config)
        time.sleep(5.5)


@pytest.mark.usefixtures("manual")
def test_level_manual_notifies_only(stage: Stage) -> None:
    """At level `manual` the worker starts no run: the remediation is `notified`, and the timeline and the
    notification log say so; no guard is asked, the escalation is left to its own time."""
    apply(stage)
    fingerprint = fire(stage, stage.service("a"))
    row = decided(fingerprint, "notified", "awaiting_approval", "running", "refused")
    detail = "level manual: notify only, nothing runs"
    assert (row.status, row.guard, row.detail, row.run_id) == ("notified", "level", detail, None)
    text = f"policy {stage.policy} ({stage.workflow}): {detail}"
    assert ("remediation_held", text) in events(row.incident_id, fingerprint)
    assert ("not_automated", text) in logged(fingerprint)
    assert "escalation_hastened" not in [k for k, _ in events(row.incident_id)]
    time.sleep(0.5)
    assert stage.fixer.received == []
