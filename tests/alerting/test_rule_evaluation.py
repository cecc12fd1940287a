"""Rules evaluated on pushed samples in the real database: the seed's alert scales a real local service
once per firing; a duration is judged from the data; a tick through a real worker fires once however
often it is delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from automation import AlertSeverity
from tests.alerting.test_pipeline import decisions, runs_of
from tests.conftest import ECHO_SERVICE, SERVICES_FILE, free_port, unique


@pytest.fixture
def autonomous(engine: Any) -> Iterator[None]:
    from automation import AutomationConfig
    from automation.config.apply import apply_config

    original = engine.config
    apply_config(AutomationConfig(**{**original.model_dump(), "level": "autonomous"}))
    yield
    apply_config(original)


@pytest.fixture
def recommendation_engine() -> Iterator[Any]:
    """The seed's `recommendation-engine`, a real local service (the demo's echo service), two replicas."""
    from automation.providers import get_provider

    port = free_ports(4)  # replica i listens on port + i: the seed's alert scales it from 2 to 3
    SERVICES_FILE.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "recommendation-engine": {
                        "command": ["{python}", str(ECHO_SERVICE), "--port", "{port}"],
                        "port": port,
                        "health_url": "http://127.0.0.1:{port}/health",
                        "grace_period": 5,
                    }
                }
            }
        )
    )
    provider = get_provider("local", services_file=str(SERVICES_FILE))
    provider.scale("recommendation-engine", replicas=2)
    yield provider
    provider.scale("recommendation-engine", replicas=0)


def free_ports(count: int) -> int:
    """A port such that it and the `count - 1` after it are free now."""
    import socket

    for _ in range(100):
        base = free_port()
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def push(metric: str, labels: dict[str, str], values: list[tuple[float, float]]) -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    ingest(PushedSample(metric, labels, value, at) for at, value in values)


def every(seconds: float, start: float, end: float, value: float) -> list[tuple[float, float]]:
    points, at = [], start
    while at <= end:
        points.append((at, value))
        at += seconds
    return points


@pytest.mark.usefixtures("worker", "autonomous")
def test_the_seed_alert_scales_a_real_service_once(engine: Any, recommendation_engine: Any) -> None:
    from automation.models import Alert

    metric = unique("cpu_usage").replace("-", "_")
    now = time.time()
    push(metric, {"service": "recommendation-engine"}, every(15, now - 420, now, 91.0))
    alert_config = {
        "name": unique("high_cpu_usage"),
        "condition": f"{metric} > 80 AND duration > 5m",
        "severity": AlertSeverity.HIGH,
        "actions": [
            {
                "type": "scale_infrastructure",
                "parameters": {
                    "service_name": "recommendation-engine",
                    "scale_factor": 1.5,
                    "max_instances": 20,
                },
            }
        ],
        "cooldown_period": 600,  # 10 minutes
    }
    name = engine.register_alert_workflow(alert_config)
    reports = engine.evaluate_alerts(now)
    assert len(reports[name]["fired"]) == 1
    fingerprint = reports[name]["fired"][0]
    engine.evaluate_alerts(now + 15)  # still firing: no second run
    runs = runs_of(f"alert.{name}")
    assert len(runs) == 1 and reports[name]["runs"] == [str(runs[0].id)]
    run = engine.get_run(runs[0].id).wait(60)
    assert run.status == "succeeded", run.steps
    assert run.step("scale_infrastructure").output["replicas"] == 3  # round(2 * 1.5)
    assert recommendation_engine.status("recommendation-engine")["running_replicas"] == 3
    alert = Alert.objects.get(fingerprint=fingerprint)
    assert alert.state == "firing" and alert.labels["service"] == "recommendation-engine"
    assert alert.labels["severity"] == "high" and alert.labels["alertname"] == name
    assert decisions(fingerprint)[:2] == ["fired", "workflow_started"]


@pytest.mark.usefixtures("engine")
def test_duration_is_judged_from_the_samples() -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.services.evaluation import evaluate_rule
    from automation.alerting.services.rules import save_rule

    metric = unique("latency").replace("-", "_")
    now = time.time()
    push(metric, {"pod": "a"}, every(15, now - 180, now, 0.9))  # high for 3 minutes only
    push(metric, {"pod": "b"}, every(15, now - 600, now, 0.9))  # high for 10 minutes
    push(metric, {"pod": "c"}, every(15, now - 600, now, 0.1))
    rule = save_rule({"name": unique("slow"), "condition": f"{metric} > 0.5 AND duration > 5m"})
    # Two evaluators, as after a restart, on the same data and time: the same answer, and one firing.
    first = evaluate_rule(rule, now, PushSource())
    second = evaluate_rule(rule, now, PushSource())
    assert len(first.fired) == 1 and len(first.pending) == 1
    assert second.fired == [] and second.pending == []
    # The condition stops holding: resolved.
    push(metric, {"pod": "b"}, [(now + 15, 0.1)])
    later = evaluate_rule(rule, now + 16, PushSource())
    assert later.resolved == first.fired


@pytest.mark.usefixtures("autonomous")
def test_a_tick_through_a_worker_fires_once_however_often_delivered(engine: Any, worker: Any) -> None:
    from automation.celery import app

    metric = unique("errors").replace("-", "_")
    now = time.time()
    push(metric, {"service": "api"}, every(10, now - 120, now, 42.0))
    name = engine.register_alert_workflow(
        {
            "name": unique("errors_high"),
            "condition": f"{metric} > 10",
            "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
        }
    )
    # The same evaluation sent three times (a redelivery, a second Beat): one firing, one run.
    results = [
        app.send_task("automation.alerting.evaluate_rule", (name, now), queue="critical") for _ in range(3)
    ]
    reports = [result.get(timeout=30) for result in results]
    # Every message was processed (their results are in): exactly one took the evaluation.
    assert sorted(len(r["fired"]) for r in reports) == [0, 0, 1]
    # One run, direct or behind its approval (the worker may still hold the level it read a moment ago).
    assert len(runs_of(f"alert.{name}")) + len(runs_of(f"alert.{name}.gated")) == 1


@pytest.mark.usefixtures("engine")
def test_bad_rule_text_names_the_column_and_stores_nothing() -> None:
    from automation.errors import DefinitionError
    from automation.models import AlertRule, Workflow

    name = unique("bad")
    with pytest.raises(DefinitionError, match=r"condition: column 13: expected a number"):
        from automation.alerting.services.rules import save_rule

        save_rule(
            {
                "name": name,
                "condition": "cpu_usage > abc",
                "actions": [{"type": "control.wait", "parameters": {"seconds": 1}}],
            }
        )
    assert not AlertRule.objects.filter(name=name).exists()
    assert not Workflow.objects.filter(name__startswith=f"alert.{name}").exists()
