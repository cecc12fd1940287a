"""A target's load read from a real Prometheus (PromQL range query over what it scraped from a real
exporter), and a source that cannot answer logged as an `error` decision that changes nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerting.conftest import exporter, prometheus_server  # noqa: F401 - fixtures
from tests.alerting.test_prometheus_rules import scraped
from tests.conftest import unique
from tests.scaling.test_loop import INTERVAL, decisions

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine", "predictive_scaling")]


@pytest.fixture
def prometheus_document(prometheus_server: Any) -> Iterator[None]:  # noqa: F811
    from automation.alerting.services.config import apply_document

    apply_document({"prometheus": {"url": prometheus_server.url, "timeout": 5}})
    yield
    apply_document({})


def prometheus_target(name: str, query: str) -> Any:
    from automation.scaling.services.targets import save_target

    return save_target(
        {
            "name": name,
            "service": "web-api",
            "provider": "stub",
            "load": {"source": "prometheus", "query": query, "step": 1, "history": 60},
            "capacity_per_replica": 200,
            "target_utilization": 1.0,
            "policy": "reactive",
        }
    )


@pytest.mark.usefixtures("prometheus_document")
def test_a_promql_load_drives_the_decision(exporter: Any, prometheus_server: Any) -> None:  # noqa: F811
    from automation.scaling.services.ticks import evaluate_targets

    metric = unique("inflight").replace("-", "_")
    gauge = exporter.gauge(metric, ["pod"])
    gauge.labels(pod="a").set(500)
    gauge.labels(pod="b").set(400)
    scraped(prometheus_server, f'{metric}{{pod="a"}}', 5)
    name = unique("prom")
    prometheus_target(name, f"sum({metric})")
    evaluate_targets([name], time.time() - 1, INTERVAL)
    [decision] = decisions(name)
    assert decision.observed_load == 900.0
    assert (decision.current_replicas, decision.desired_replicas) == (1, 5)  # the stub knows no service: 1
    assert decision.reasons[1].startswith("reactive: utilisation ratio 4.50"), decision.reasons


def test_a_source_that_cannot_answer_is_an_error_decision_that_changes_nothing() -> None:
    from automation.scaling.services.ticks import evaluate_targets

    name = unique("nosource")
    prometheus_target(name, "sum(up)")  # the alerting document names no Prometheus
    [report] = evaluate_targets([name], time.time(), INTERVAL)
    assert report["action"] == "error" and report["run_id"] is None
    assert "alerting document sets no `prometheus.url`" in report["reasons"][0]
