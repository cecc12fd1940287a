"""The pipeline where it used to lose or invent pages: a muted group sends nothing, a storm-sized group is
truncated and still delivered, a deleted rule's alerts resolve, a received alert is not resolved by a rule
of its name, a late evaluation changes nothing, a transition whose follow-up died is taken up again, a
newer firing from a sender that lost its resolution is a firing of its own, a run sent but not yet
recorded on its alert when the process died is recorded by the repair (never a second run)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.test_pipeline import decisions, handler, received, runs_of
from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def alerting_document() -> Iterator[Any]:
    from automation.alerting.services.config import apply_document

    yield apply_document
    apply_document({})


def test_a_group_whose_alerts_are_all_silenced_sends_nothing(alerting_document: Any) -> None:
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.intake import receive
    from automation.alerting.services.silences import create_silence
    from automation.models import AlertGroup

    team = unique("team")
    alerting_document(
        {"route": {"receiver": "log", "group_by": ["team"], "group_wait": "0s", "group_interval": "1m"}}
    )
    now = time.time()
    alert = received(unique("disk"), team=team)
    receive(alert, now)
    flush_all(now + 1)
    group = AlertGroup.objects.get(alerts__fingerprint=alert.fingerprint)
    assert group.sequence == 1
    create_silence(
        matchers=[f'team="{team}"'],
        starts_at=now + 2,
        ends_at=now + 86400,
        created_by="bob",
        comment="maintenance",
        now=now + 2,
    )
    flush_all(now + 120)
    flush_all(now + 5 * 3600)
    group.refresh_from_db()
    assert group.sequence == 1  # no "resolved" (PagerDuty: resolve) notification for a firing alert
    assert decisions(alert.fingerprint).count("notified") == 1


def test_a_storm_sized_group_is_truncated_and_still_delivered(alerting_document: Any) -> None:
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.intake import receive
    from automation.models import AlertGroup, WorkflowRun

    team = unique("storm")
    alerting_document(
        {
            "route": {"receiver": "hook", "group_by": ["team"], "group_wait": "0s"},
            "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        }
    )
    now = time.time()
    alerts = [received(unique("a"), team=team, pod=f"pod-{i}", note="x" * 100) for i in range(300)]
    for alert in alerts:
        receive(alert, now)
    flush_all(now + 1)
    group = AlertGroup.objects.get(alerts__fingerprint=alerts[0].fingerprint)
    assert group.sequence == 1
    run = WorkflowRun.objects.get(idempotency_key=f"notify:{group.key}:1")
    payload = run.inputs["notification"]["payload"]
    assert payload["truncatedAlerts"] > 0
    assert len(payload["alerts"]) + payload["truncatedAlerts"] == 300
    assert "[FIRING:300]" in run.inputs["notification"]["summary"]
    assert all("delivery_failed" not in decisions(a.fingerprint) for a in alerts[:3])


def test_deleting_a_rule_resolves_its_firing_alerts() -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.rules import delete_rule, save_rule
    from automation.alerting.services.samples import ingest
    from automation.models import Alert

    metric = unique("load").replace("-", "_")
    now = time.time()
    ingest([PushedSample(metric, {"host": "a"}, 9.0, now - 5)])
    rule = save_rule({"name": unique("load_high"), "condition": f"{metric} > 5"})
    report = evaluate_rule(rule, now, PushSource())
    assert len(report.fired) == 1
    delete_rule(rule.name, now=now + 10)
    assert Alert.objects.get(fingerprint=report.fired[0]).state == "resolved"


def test_a_received_alert_is_not_resolved_by_the_rule_of_its_name() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.intake import receive
    from automation.alerting.services.rules import save_rule
    from automation.models import Alert

    metric = unique("nothing").replace("-", "_")
    name = unique("shared_name")
    rule = save_rule({"name": name, "condition": f"{metric} > 1"})  # no data: it never holds
    alert = received(name, service="api")
    receive(alert, time.time())
    evaluate_rule(rule, time.time() + 60, PushSource())
    assert Alert.objects.get(fingerprint=alert.fingerprint).state == "firing"


def test_a_late_evaluation_changes_nothing() -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.rules import save_rule
    from automation.alerting.services.samples import ingest
    from automation.models import Alert

    metric = unique("temp").replace("-", "_")
    t = time.time() - 600
    ingest([PushedSample(metric, {}, 90.0, t + 50), PushedSample(metric, {}, 10.0, t + 110)])
    rule = save_rule({"name": unique("hot"), "condition": f"{metric} > 50"})
    fired = evaluate_rule(rule, t + 60, PushSource()).fired
    assert evaluate_rule(rule, t + 120, PushSource()).resolved == fired
    late = evaluate_rule(rule, t + 60, PushSource())  # redelivered, or a backlog's older message
    assert late.fired == []
    assert Alert.objects.get(fingerprint=fired[0]).state == "resolved"


def test_a_transition_whose_pipeline_died_is_taken_up_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from automation.alerting.services import pipeline
    from automation.alerting.services.intake import receive

    name = unique("crash")
    handler(name)
    alert = received(name, service="api")
    real = pipeline.remediate

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("worker killed mid-pipeline")

    monkeypatch.setattr(pipeline, "remediate", dies)
    now = time.time()
    with pytest.raises(RuntimeError):
        receive(alert, now)
    assert receive(alert, now + 1).outcome == "deduplicated"  # the transition was taken...
    assert "held" not in decisions(alert.fingerprint)  # ...but its follow-up never ran
    monkeypatch.setattr(pipeline, "remediate", real)
    # Not before REPAIR_AFTER: it may still be running. (Other tests' transitions left unhandled long
    # enough ago may be repaired meanwhile: this alert's log is what tells.)
    pipeline.repair(now + 5)
    assert "held" not in decisions(alert.fingerprint)
    assert pipeline.repair(now + pipeline.REPAIR_AFTER + 5) >= 1
    assert "held" in decisions(alert.fingerprint)
    assert pipeline.repair(now + pipeline.REPAIR_AFTER + 10) == 0 or "held" in decisions(alert.fingerprint)


def test_a_sender_cannot_skip_the_approval_by_labelling_its_alert_low(engine: Any) -> None:
    from automation import AutomationConfig
    from automation.alerting.services.intake import receive
    from automation.alerting.services.rules import save_rule
    from automation.config.apply import apply_config

    name = unique("gate")
    save_rule(
        {
            "name": name,
            "severity": "critical",
            "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
        }
    )
    apply_config(AutomationConfig(**{**engine.config.model_dump(), "level": "semi_autonomous"}))
    try:
        alert = received(name, severity="low")
        receive(alert, time.time())
    finally:
        apply_config(engine.config)
    assert "approval_required" in decisions(alert.fingerprint)
    assert runs_of(f"alert.{name}") == [] and len(runs_of(f"alert.{name}.gated")) == 1


def test_a_newer_firing_after_a_lost_resolution_is_a_firing_of_its_own() -> None:
    from automation.alerting.services.intake import receive

    name = unique("lost")
    now = time.time()
    receive(received(name, starts=now - 3600), now - 3600)
    assert receive(received(name, starts=now - 60), now).outcome == "fired"
    log = decisions(received(name).fingerprint)
    assert log.count("fired") == 2 and log.count("resolved") == 1


def test_history_is_purged_after_its_retention_but_open_alerts_stay() -> None:
    from automation.alerting.services.intake import receive
    from automation.alerting.services.retention import HISTORY_SECONDS, purge_history
    from automation.models import Alert, AlertLog

    now = time.time()
    settled, open_ = received(unique("old")), received(unique("open"))
    receive(settled, now)
    receive(received(settled.labels["alertname"], firing=False), now + 1)
    receive(open_, now)
    later = now + HISTORY_SECONDS + 3600
    from automation.models import AlertGroup

    AlertGroup.objects.filter(alerts__fingerprint=settled.fingerprint).first().alerts.remove(
        Alert.objects.get(fingerprint=settled.fingerprint)
    )
    purged = purge_history(later)
    assert purged.log_entries >= 3 and purged.alerts >= 1
    assert not Alert.objects.filter(fingerprint=settled.fingerprint).exists()
    assert Alert.objects.get(fingerprint=open_.fingerprint).state == "firing"  # open alerts stay
    assert not AlertLog.objects.filter(alert__fingerprint=open_.fingerprint).exists()  # its old log went


@pytest.fixture
def dies_recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The process dies after the remediation run was stored and sent, before the alert records it."""
    from automation.alerting.services import pipeline

    real = pipeline.record_run

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died after sending the run")

    monkeypatch.setattr(pipeline, "record_run", dies)
    yield lambda: monkeypatch.setattr(pipeline, "record_run", real)


def test_a_run_sent_but_not_recorded_is_recorded_by_the_repair_though_the_alert_moved_on(
    level: Any, dies_recording: Any
) -> None:
    import dataclasses

    from automation.alerting.services import pipeline
    from automation.alerting.services.intake import receive
    from automation.models import Alert

    level("autonomous")
    name = unique("unrecorded")
    handler(name)
    alert = dataclasses.replace(received(name, service="api"), value=1.0)
    now = time.time()
    with pytest.raises(RuntimeError):
        receive(alert, now)
    dies_recording()
    (run,) = runs_of(f"alert.{name}")
    # The sender sends the firing again with a new value (the run's inputs would differ now).
    assert receive(dataclasses.replace(alert, value=2.0), now + 10).outcome == "deduplicated"
    assert pipeline.repair(now + pipeline.REPAIR_AFTER + 15) >= 1
    assert [r.id for r in runs_of(f"alert.{name}")] == [run.id]
    assert Alert.objects.get(fingerprint=alert.fingerprint).last_run_id == run.id
    log = decisions(alert.fingerprint)
    assert log.count("workflow_started") == 1 and "workflow_refused" not in log


def test_a_run_sent_but_not_recorded_stays_the_only_run_when_the_level_changed(
    level: Any, dies_recording: Any
) -> None:
    from automation.alerting.services import pipeline
    from automation.alerting.services.intake import receive

    level("autonomous")
    name = unique("regated")
    handler(name)
    alert = received(name, service="api")
    now = time.time()
    with pytest.raises(RuntimeError):
        receive(alert, now)
    dies_recording()
    level("supervised")  # would gate a new run behind an approval
    assert pipeline.repair(now + pipeline.REPAIR_AFTER + 15) >= 1
    assert len(runs_of(f"alert.{name}")) == 1
    assert runs_of(f"alert.{name}.gated") == []
    assert decisions(alert.fingerprint).count("workflow_started") == 1
