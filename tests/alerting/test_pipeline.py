"""The alert pipeline on the real database: received alerts through dedup, flap damping, inhibition,
silences, remediation (once per firing, cooldown, automation level) and grouped notifications, each
decision in the notification log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import close_thread_clients, unique

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def alerting_document() -> Iterator[Any]:
    from automation.alerting.services.config import apply_document

    def apply(document: dict[str, Any]) -> None:
        apply_document(document)

    yield apply
    apply_document({})


def received(name: str, *, firing: bool = True, starts: float | None = None, **labels: str) -> Any:
    from automation.alerting.matchers import digest
    from automation.alerting.services.intake import ReceivedAlert

    labels = {"alertname": name, **labels}
    return ReceivedAlert(
        fingerprint=digest("test", labels),
        origin="event",
        labels=labels,
        annotations={"summary": "test"},
        firing=firing,
        starts_at=datetime.fromtimestamp(starts or 1_800_000_000.0, tz=UTC),
    )


def decisions(fingerprint: str) -> list[str]:
    from automation.models import AlertLog

    return list(AlertLog.objects.filter(alert__fingerprint=fingerprint).values_list("decision", flat=True))


def handler(name: str, **extra: Any) -> None:
    """A rule evaluated by nobody: what to do with received alerts named `name`."""
    from automation.alerting.services.rules import save_rule

    save_rule(
        {
            "name": name,
            "severity": "low",
            "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
            **extra,
        }
    )


def runs_of(workflow: str) -> list[Any]:
    from automation.models import WorkflowRun

    return list(WorkflowRun.objects.filter(workflow__name=workflow))


def test_a_received_alert_fires_once_and_duplicates_are_logged(level: Any) -> None:
    from automation.alerting.services.intake import receive

    level("autonomous")
    name = unique("dup")
    handler(name)
    alert = received(name, service="api")
    first = receive(alert, time.time())

    # An HA pair of Alertmanagers and a retried webhook: the same firing, at once, from many callers.
    def again(_: int) -> str:
        try:
            return receive(alert, time.time()).outcome
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(again, range(8)))
    assert first.outcome == "fired"
    assert outcomes == ["deduplicated"] * 8
    log = decisions(alert.fingerprint)
    assert log.count("fired") == 1 and log.count("workflow_started") == 1
    assert log.count("deduplicated") == 1  # recorded once per firing, not once per copy
    assert len(runs_of(f"alert.{name}")) == 1


def test_a_new_alert_received_by_many_callers_at_once_fires_once(level: Any) -> None:
    """The first copies of a new alert race to create it (a new alert is inserted in one statement, and
    a caller that loses the race observes the winner's row instead): one firing, one run."""
    from automation.alerting.services.intake import receive

    level("autonomous")
    name = unique("race")
    handler(name)
    alert = received(name, service="api")

    def first(_: int) -> str:
        try:
            return receive(alert, time.time()).outcome
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(first, range(8)))
    assert sorted(outcomes) == ["deduplicated"] * 7 + ["fired"]
    log = decisions(alert.fingerprint)
    assert log.count("fired") == 1 and log.count("workflow_started") == 1
    assert len(runs_of(f"alert.{name}")) == 1


def _observation(fingerprint: str, now: float) -> Any:
    from automation.alerting.services.alerts import Observation

    return Observation(
        fingerprint=fingerprint,
        name="written",
        labels={"alertname": "written", "service": "api"},
        value=3.5,
        holds=True,
        active_since=now - 30,
        origin="event",
        severity="high",
        annotations={"summary": "s"},
    )


def _stored(fingerprint: str) -> dict[str, Any]:
    from automation.models import Alert, AlertLog

    row = Alert.objects.filter(fingerprint=fingerprint).values().get()
    log = list(AlertLog.objects.filter(alert_id=row["id"]).values("at", "decision", "detail", "once_key"))
    for entry in log:
        entry["once_key"] = entry["once_key"].replace(fingerprint, "<fp>")
    for name in ("id", "fingerprint", "updated_at"):
        row.pop(name)
    return {"alert": row, "log": log}


class _Counting:
    """The database driver's connection, counting what its cursors send (one `execute` is a round trip)."""

    def __init__(self, raw: Any, executed: list[str]) -> None:
        self._raw, self._executed = raw, executed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor, executed = self._raw.cursor(*args, **kwargs), self._executed

        class Cursor:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: Any) -> None:
                cursor.close()

            def execute(self, sql: str, params: Any = None) -> Any:
                executed.append(sql)
                return cursor.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

        return Cursor()


def test_a_new_alert_is_written_in_one_statement_as_the_locked_path_writes_it() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from automation.alerting.services.alerts import observe, observe_if_new
    from automation.alerting.services.rules import save_rule

    rule = save_rule({"name": unique("written"), "condition": "x > 1"})
    now = time.time()
    locked, fast = unique("locked"), unique("fast")
    assert observe(_observation(locked, now), now, rule=rule) is not None
    raw = connection.connection
    executed: list[str] = []
    try:
        connection.connection = _Counting(raw, executed)
        observe_if_new(_observation(unique("warm"), now), now, rule_name=rule.name)  # prepares on this one
        executed.clear()
        with CaptureQueriesContext(connection) as queries:
            sight = observe_if_new(_observation(fast, now), now, rule_name=rule.name)
    finally:
        connection.connection = raw
    assert queries.captured_queries == [] and len(executed) == 1  # one round trip
    assert sight.rule is not None and (sight.rule.pk, sight.rule.document) == (rule.pk, rule.document)
    assert sight.transition is not None and sight.found is None
    assert (sight.transition.before, sight.transition.after) == ("inactive", "firing")
    assert sight.transition.alert.pk is not None and sight.transition.alert.rule_id == rule.pk
    assert _stored(fast) == _stored(locked)


def test_an_alert_that_exists_is_read_not_written_by_its_first_sight() -> None:
    from automation.alerting.services.alerts import expire, observe, observe_if_new
    from automation.models import Alert

    now = time.time()
    fingerprint = unique("seen")
    first = observe_if_new(_observation(fingerprint, now), now, rule_name=unique("no-such-rule"))
    assert first.rule is None and first.transition is not None
    fired_at = Alert.objects.get(fingerprint=fingerprint).fired_at
    again = observe_if_new(_observation(fingerprint, now + 1), now + 1, rule_name="none")
    assert again.transition is None and again.found == ("firing", fired_at)
    expire(fingerprint, now + 2)
    resolved = observe_if_new(_observation(fingerprint, now + 3), now + 3, rule_name="none")
    assert resolved.transition is None and resolved.found is not None and resolved.found[0] == "resolved"
    refired = observe(_observation(fingerprint, now + 3), now + 3)
    assert refired is not None and (refired.before, refired.after) == ("resolved", "firing")
    assert decisions(fingerprint) == ["fired", "resolved", "fired"]


def test_an_alert_whose_rule_no_longer_validates_is_handled_as_without_a_rule(level: Any) -> None:
    from automation.alerting.definitions import RuleDefinition
    from automation.alerting.services.intake import receive
    from automation.models import AlertRule

    level("autonomous")
    name = unique("broken")
    handler(name)
    stored = AlertRule.objects.get(name=name)
    broken = {**stored.document, "severity": "not-a-severity"}  # its actions would start a run
    with pytest.raises(ValueError):
        RuleDefinition.model_validate(broken)
    # disabled: the evaluator's ticks (other tests') do not read it
    AlertRule.objects.filter(pk=stored.pk).update(document=broken, enabled=False)
    try:
        alert = received(name, service="api")
        assert receive(alert, time.time()).outcome == "fired"
        assert receive(alert, time.time()).outcome == "deduplicated"
        logged = decisions(alert.fingerprint)
        assert logged[0] == "fired" and "workflow_started" not in logged
        assert runs_of(f"alert.{name}") == []
    finally:
        AlertRule.objects.filter(pk=stored.pk).delete()


def test_a_new_firing_inside_the_cooldown_starts_no_run(level: Any) -> None:
    from automation.alerting.services.intake import receive

    level("autonomous")
    name = unique("cool")
    handler(name, cooldown_period=600)
    now = time.time()
    receive(received(name, starts=now - 100), now - 100)
    receive(received(name, firing=False), now - 50)
    receive(received(name, starts=now - 10), now)
    fingerprint = received(name).fingerprint
    assert decisions(fingerprint).count("workflow_started") == 1
    assert "cooldown" in decisions(fingerprint)
    assert len(runs_of(f"alert.{name}")) == 1


@pytest.mark.parametrize(
    ("mode", "severity", "expected"),
    [
        ("manual", "critical", "not_automated"),
        ("supervised", "low", "approval_required"),
        ("semi_autonomous", "low", "workflow_started"),
        ("semi_autonomous", "critical", "approval_required"),
        ("autonomous", "critical", "workflow_started"),
    ],
)
def test_the_automation_level_decides_how_a_run_starts(
    level: Any, mode: str, severity: str, expected: str
) -> None:
    from automation.alerting.services.intake import receive

    level(mode)
    name = unique("lvl")
    handler(name)
    alert = received(name, severity=severity)
    receive(alert, time.time())
    log = decisions(alert.fingerprint)
    assert expected in log
    gated = runs_of(f"alert.{name}.gated")
    direct = runs_of(f"alert.{name}")
    assert (len(gated), len(direct)) == {
        "not_automated": (0, 0),
        "approval_required": (1, 0),
        "workflow_started": (0, 1),
    }[expected]


def test_silences_and_inhibition_mute_notifications_and_remediation(
    level: Any, alerting_document: Any
) -> None:
    from automation.alerting.services.intake import receive
    from automation.alerting.services.silences import create_silence, expire_silence

    level("autonomous")
    name = unique("mute")
    handler(name)
    cluster = unique("cluster")
    alerting_document(
        {
            "inhibit_rules": [
                {
                    "source_matchers": ['severity="critical"'],
                    "target_matchers": ['severity="low"'],
                    "equal": ["cluster"],
                }
            ]
        }
    )
    now = time.time()
    silence = create_silence(
        matchers=[f'cluster="{cluster}"', 'team="storage"'],
        starts_at=now - 1,
        ends_at=now + 600,
        created_by="alice",
        comment="disk swap",
        now=now,
    )
    from automation.alerting.services.groups import flush_all
    from automation.models import AlertLog

    quiet = received(name, cluster=cluster, team="storage", severity="low")
    receive(quiet, now)
    # Muted: no remediation, but it joins its group (so it is notified once the silence ends).
    assert decisions(quiet.fingerprint) == ["fired", "silenced", "held"]
    source = received(unique("outage"), cluster=cluster, severity="critical")
    receive(source, now)
    target = received(name, cluster=cluster, team="web", severity="low")
    receive(target, now)
    assert decisions(target.fingerprint) == ["fired", "inhibited", "held"]
    other = received(name, cluster=unique("elsewhere"), team="web", severity="low")
    receive(other, now)
    assert "workflow_started" in decisions(other.fingerprint)
    assert len(runs_of(f"alert.{name}")) == 1  # only the alert neither silenced nor inhibited
    assert (
        str(silence.id)
        in AlertLog.objects.get(alert__fingerprint=quiet.fingerprint, decision="silenced").detail
    )

    flush_all(now + 60)  # past group_wait: muted alerts are left out of the notification
    assert "notified" not in decisions(quiet.fingerprint) and "notified" not in decisions(target.fingerprint)
    assert "notified" in decisions(other.fingerprint)
    expire_silence(str(silence.id), now + 61)
    receive(
        received(source.labels["alertname"], firing=False, cluster=cluster, severity="critical"), now + 62
    )
    flush_all(now + 400)  # the silence ended, the inhibiting alert resolved: both are notified now
    assert "notified" in decisions(quiet.fingerprint) and "notified" in decisions(target.fingerprint)


def test_groups_notify_once_per_change_and_never_twice(alerting_document: Any) -> None:
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.intake import receive

    service = unique("svc")
    alerting_document(
        {
            "route": {
                "receiver": "log",
                "group_by": ["service"],
                "group_wait": "10s",
                "group_interval": "1m",
                "repeat_interval": "1h",
            }
        }
    )
    now = time.time()
    a = received(unique("a"), service=service)
    b = received(unique("b"), service=service)
    receive(a, now)
    receive(b, now + 1)

    def notified() -> tuple[int, int]:
        return decisions(a.fingerprint).count("notified"), decisions(b.fingerprint).count("notified")

    flush_all(now + 5)
    assert notified() == (0, 0)  # group_wait
    assert "held" in decisions(a.fingerprint)

    def flush(_: int) -> int:
        try:
            return flush_all(now + 11)
        finally:
            close_thread_clients()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(flush, range(4)))
    assert notified() == (1, 1)  # four flushers, one notification of the whole group
    flush_all(now + 30)
    assert notified() == (1, 1)  # no change, repeat_interval not reached
    receive(received(a.labels["alertname"], firing=False, service=service), now + 40)
    flush_all(now + 50)
    assert notified() == (1, 1)  # a change, but inside group_interval
    flush_all(now + 72)
    assert notified() == (2, 2)  # the resolution (and b with it), after group_interval
    flush_all(now + 72 + 600)
    assert notified() == (2, 2)
    flush_all(now + 72 + 3601)
    assert notified() == (2, 3)  # b still firing: repeated after repeat_interval; a left the group


def test_a_flapping_alert_is_notified_once_then_held(level: Any) -> None:
    from automation.alerting.services.intake import receive

    level("autonomous")
    name = unique("flap")
    handler(name, flap={"changes": 3, "window": "10m"})
    now = time.time()
    for i in range(4):
        receive(received(name, starts=now + 20 * i), now + 20 * i)
        receive(received(name, firing=False), now + 20 * i + 10)
    fingerprint = received(name).fingerprint
    from automation.models import AlertLog

    log = decisions(fingerprint)
    # Changes at 0 (fired), 10, 20, 30: the fourth makes it flap (more than 3 in 10 minutes).
    assert log.count("workflow_started") == 2  # the firings at 0 and 20
    assert log.count("flapping") == 2  # the firings at 40 and 60, held
    spells = AlertLog.objects.filter(
        alert__fingerprint=fingerprint, detail__startswith="flapping: notified once"
    )
    from automation.alerting.services.groups import flush_all

    receive(received(name, starts=now + 80), now + 80)  # fires again while flapping: held
    assert spells.count() == 0
    flush_all(now + 200)
    assert decisions(fingerprint).count("notified") == 1  # the spell is in one notification
    assert spells.count() == 1
    flush_all(now + 520)  # still flapping, past group_interval: not notified again
    assert decisions(fingerprint).count("notified") == 1
    flush_all(now + 200 + 5 * 3600)  # its changes left the window: it settled, notified as it is now
    assert decisions(fingerprint).count("notified") == 2
    assert AlertLog.objects.filter(
        alert__fingerprint=fingerprint, detail__startswith="no longer flapping"
    ).exists()


@pytest.mark.parametrize("mode", ["autonomous", "supervised"])
def test_a_rule_starts_an_existing_workflow_with_inputs_from_the_alert(
    engine: Any, level: Any, mode: str
) -> None:
    from automation import ActionDefinition, WorkflowDefinition
    from automation.alerting.services.intake import receive
    from automation.alerting.services.rules import save_rule
    from automation.models import WorkflowRun

    target = unique("restart")
    engine.register_workflow(
        WorkflowDefinition(
            name=target,
            inputs={"service": {"type": "string"}, "value": {"type": "any", "required": False}},
            actions=[
                ActionDefinition(
                    name="hold", action_type="control.approval", parameters={"message": "${service}"}
                )
            ],
        )
    )
    level(mode)
    name = unique("svc_down")
    save_rule({"name": name, "workflow": {"name": target, "inputs": {"service": "${alert.labels.service}"}}})
    alert = received(name, service="checkout")
    receive(alert, time.time())
    if mode == "autonomous":
        (run,) = runs_of(target)
        assert run.inputs["service"] == "checkout"
        assert "workflow_started" in decisions(alert.fingerprint)
    else:
        # Behind an approval: the wrapper run waits; the target starts only once approved.
        (gate,) = runs_of(f"alert.{name}.gated")
        assert gate.inputs["call_inputs"] == {"service": "checkout"}
        assert runs_of(target) == [] and "approval_required" in decisions(alert.fingerprint)
        assert WorkflowRun.objects.filter(pk=gate.pk).exists()


def test_a_new_routing_document_regroups_the_alerts_already_firing(alerting_document: Any) -> None:
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.intake import receive
    from automation.alerting.services.pipeline import apply_routing
    from automation.errors import DefinitionError
    from automation.models import Alert

    service, name = unique("svc"), unique("reroute")
    timings = {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "1h"}
    alerting_document({"route": {"receiver": "log", "group_by": ["service"], **timings}})
    now = time.time()
    alert = received(name, service=service)
    receive(alert, now)

    def groups() -> list[dict[str, str]]:
        stored = Alert.objects.get(fingerprint=alert.fingerprint)
        return [dict(group.group_labels) for group in stored.groups.all()]

    assert groups() == [{"service": service}]
    with pytest.raises(DefinitionError):
        apply_routing({"route": {"receiver": "nobody", "group_by": ["alertname"]}}, now + 1)
    assert groups() == [{"service": service}]  # a refused document changes nothing

    document, rerouted = apply_routing(
        {"route": {"receiver": "log", "group_by": ["alertname"], **timings}}, now + 2
    )
    assert rerouted >= 1 and list(document.route.group_by) == ["alertname"]
    assert groups() == [{"alertname": name}]  # left the old group, joined the new one
    flush_all(now + 5)
    assert decisions(alert.fingerprint).count("notified") == 0  # the new group waits its group_wait
    flush_all(now + 13)
    assert decisions(alert.fingerprint).count("notified") == 1
    _, moved = apply_routing({"route": {"receiver": "log", "group_by": ["alertname"], **timings}}, now + 20)
    assert groups() == [{"alertname": name}] and moved == 0
    flush_all(now + 40)
    assert decisions(alert.fingerprint).count("notified") == 1  # same routes again: nothing moves


def test_remediate_when_keeps_actions_on_the_services_a_rule_may_touch(level: Any) -> None:
    from automation.alerting.services.intake import receive
    from automation.alerting.services.rules import save_rule
    from automation.errors import DefinitionError
    from automation.models import AlertLog

    level("autonomous")
    name = unique("guarded")
    handler(name, remediate_when=['service=~"checkout|search"'])
    outside = received(name, service="billing")
    inside = received(name, service="checkout")
    assert receive(outside, time.time()).outcome == "fired"
    assert receive(inside, time.time()).outcome == "fired"
    assert "workflow_refused" in decisions(outside.fingerprint)
    refused = AlertLog.objects.get(alert__fingerprint=outside.fingerprint, decision="workflow_refused")
    assert "remediate_when" in refused.detail and "checkout|search" in refused.detail
    assert "workflow_started" in decisions(inside.fingerprint)
    assert len(runs_of(f"alert.{name}")) == 1  # only the alert on a service the rule may act on

    with pytest.raises(DefinitionError) as caught:
        save_rule(
            {"name": unique("bad"), "actions": [{"type": "control.wait"}], "remediate_when": ["service"]}
        )
    assert any(field.startswith("remediate_when") for field, _ in caught.value.errors)
