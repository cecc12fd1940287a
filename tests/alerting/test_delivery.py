"""Grouped notifications delivered by a real worker to real HTTP peers: Alertmanager's webhook shape, a
PagerDuty Events v2 body and a Slack-compatible message, once per notification however often flushed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.test_pipeline import received
from tests.conftest import unique, wait_for

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def alerting_document() -> Iterator[Any]:
    from automation.alerting.services.config import apply_document

    yield apply_document
    apply_document({})


def test_a_group_is_delivered_once_to_each_receiver(peer: Any, alerting_document: Any) -> None:
    from automation.alerting.services.groups import flush_all
    from automation.alerting.services.intake import receive
    from automation.models import AlertLog, WorkflowRun

    team = unique("team")
    alerting_document(
        {
            "route": {
                "receiver": "log",
                "routes": [
                    {
                        "matchers": [f'team="{team}"'],
                        "receiver": "hook",
                        "group_by": ["team"],
                        "group_wait": "5s",
                        "continue": True,
                    },
                    {
                        "matchers": [f'team="{team}"'],
                        "receiver": "pager",
                        "group_by": ["team"],
                        "group_wait": "5s",
                        "continue": True,
                    },
                    {
                        "matchers": [f'team="{team}"'],
                        "receiver": "chat",
                        "group_by": ["team"],
                        "group_wait": "5s",
                    },
                ],
            },
            "receivers": [
                {"name": "hook", "webhook": {"url": f"{peer.url}/hook"}},
                {
                    "name": "pager",
                    "pagerduty": {"url": f"{peer.url}/pd", "routing_key": "R0UTING-KEY-secret"},
                },
                {"name": "chat", "slack": {"url": f"{peer.url}/chat"}},
            ],
        }
    )
    now = time.time()
    first = received(unique("disk"), team=team, severity="critical")
    second = received(unique("cpu"), team=team, severity="medium")
    receive(first, now)
    receive(second, now)
    flush_all(now + 6)
    flush_all(now + 6)  # a second flusher (another Beat, a redelivered message): nothing more
    wait_for(lambda: len(peer.received) >= 3)
    by_path = {r.path: r for r in peer.received}
    assert sorted(by_path) == ["/chat", "/hook", "/pd"] and len(peer.received) == 3

    hook = by_path["/hook"].body
    assert hook["version"] == "4" and hook["status"] == "firing" and hook["receiver"] == "hook"
    assert hook["groupLabels"] == {"team": team}
    assert sorted(a["fingerprint"] for a in hook["alerts"]) == sorted([first.fingerprint, second.fingerprint])
    assert hook["commonLabels"]["team"] == team

    pd = by_path["/pd"].body
    assert pd["routing_key"] == "R0UTING-KEY-secret" and pd["event_action"] == "trigger"
    assert pd["payload"]["severity"] == "critical" and "[FIRING:2]" in pd["payload"]["summary"]
    assert "[FIRING:2]" in by_path["/chat"].body["text"]

    runs = WorkflowRun.objects.filter(workflow__name__in=["receiver.hook", "receiver.pager", "receiver.chat"])
    notified = AlertLog.objects.filter(alert__fingerprint=first.fingerprint, decision="notified")
    assert notified.count() == 3 and {str(n.run_id) for n in notified} <= {str(r.id) for r in runs}
    # Each alert's log says whether the receiver took it, once the delivery runs finished.
    from automation.alerting.services.groups import record_delivery_results
    from automation.choices import RunStatus

    wait_for(lambda: all(r.status in RunStatus.TERMINAL for r in runs.all()) and runs.count() == 3)
    assert len(peer.received) == 3  # every delivery run finished: no second message
    record_delivery_results(time.time())
    record_delivery_results(time.time())  # once per delivery, however often swept
    delivered = AlertLog.objects.filter(alert__fingerprint=first.fingerprint, decision="delivered")
    assert sorted(delivered.values_list("receiver", flat=True)) == ["chat", "hook", "pager"]
    # The routing key never appears in what the API shows of the delivery runs.
    from automation.api.serializers import run_json

    for run in runs:
        assert "R0UTING-KEY-secret" not in str(run_json(run))


def test_an_approved_gate_starts_the_named_workflow_once(engine: Any) -> None:
    from automation import ActionDefinition, AutomationConfig, WorkflowDefinition
    from automation.alerting.services.intake import receive
    from automation.alerting.services.rules import save_rule
    from automation.config.apply import apply_config
    from tests.alerting.test_pipeline import runs_of

    target = unique("failover")
    engine.register_workflow(
        WorkflowDefinition(
            name=target,
            inputs={"service": {"type": "string"}},
            actions=[ActionDefinition(name="pause", action_type="control.wait", parameters={"seconds": 0})],
        )
    )
    name = unique("db_down")
    save_rule({"name": name, "workflow": {"name": target, "inputs": {"service": "${alert.labels.service}"}}})
    apply_config(AutomationConfig(**{**engine.config.model_dump(), "level": "supervised"}))
    try:
        receive(received(name, service="orders-db"), time.time())
    finally:
        apply_config(engine.config)
    (gate,) = runs_of(f"alert.{name}.gated")
    from automation.errors import StateError

    def approved() -> bool:
        try:
            engine.approve(gate.id, "approve", by="alice", comment="go")
        except StateError:  # the gate has not asked yet
            return False
        return True

    assert runs_of(target) == []
    wait_for(approved, 30)
    assert engine.get_run(gate.id).wait(60).status == "succeeded"
    (started,) = runs_of(target)
    assert started.inputs == {"service": "orders-db"}
    assert engine.get_run(started.id).wait(60).status == "succeeded"
