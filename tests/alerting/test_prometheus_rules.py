"""Rules on a real Prometheus scraping a real exporter: the rule language over its samples, and raw
PromQL (`expr` with `for`), both judged from Prometheus's data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import unique, wait_for

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def prometheus_document(prometheus_server: Any) -> Iterator[None]:
    from automation.alerting.services.config import apply_document

    apply_document({"prometheus": {"url": prometheus_server.url, "timeout": 5}})
    yield
    apply_document({})


def scraped(prometheus_server: Any, query: str, seconds: float) -> None:
    """Wait until Prometheus has `seconds` of scrapes of `query` (one per second)."""
    wait_for(
        lambda: (
            len(prometheus_server.instant(f"count_over_time({query}[1h])") or []) > 0
            and float(prometheus_server.instant(f"count_over_time({query}[1h])")[0]["value"][1]) >= seconds
        ),
        timeout=seconds + 30,
    )


@pytest.mark.usefixtures("prometheus_document")
def test_promql_rule_fires_after_for_and_resolves(exporter: Any, prometheus_server: Any) -> None:
    from automation.alerting.services.evaluation import evaluate_rule, rule_source
    from automation.alerting.services.rules import save_rule

    metric = unique("queue_depth").replace("-", "_")
    gauge = exporter.gauge(metric, ["queue"])
    gauge.labels(queue="orders").set(500)
    gauge.labels(queue="emails").set(3)
    rule = save_rule(
        {
            "name": unique("deep_queue"),
            "source": "prometheus",
            "expr": f"{metric} > 100",
            "for": "4s",
            "severity": "high",
        }
    )
    scraped(prometheus_server, f'{metric}{{queue="orders"}}', 8)
    now = time.time() - 1  # a second back: the latest scrape is in
    source = rule_source(rule)
    try:
        report = evaluate_rule(rule, now, source)
        assert len(report.fired) == 1 and report.series == 1  # orders only
        from automation.models import Alert

        alert = Alert.objects.get(fingerprint=report.fired[0])
        assert alert.labels["queue"] == "orders" and alert.value == 500 and "__name__" not in alert.labels
        # `for` is judged from the data: the same time evaluated again fires nothing new.
        assert evaluate_rule(rule, now, source).fired == []
    finally:
        source.close()

    gauge.labels(queue="orders").set(1)
    wait_for(lambda: not prometheus_server.instant(f"{metric} > 100"), timeout=30)
    source = rule_source(rule)
    try:
        assert evaluate_rule(rule, time.time(), source).resolved == report.fired
    finally:
        source.close()


@pytest.mark.usefixtures("prometheus_document")
def test_for_not_met_when_the_condition_is_younger(exporter: Any, prometheus_server: Any) -> None:
    from automation.alerting.services.evaluation import evaluate_rule, rule_source
    from automation.alerting.services.rules import save_rule

    metric = unique("errors").replace("-", "_")
    gauge = exporter.gauge(metric)
    gauge.set(42)
    rule = save_rule(
        {"name": unique("young"), "source": "prometheus", "expr": f"{metric} > 10", "for": "10m"}
    )
    scraped(prometheus_server, metric, 3)
    source = rule_source(rule)
    try:
        report = evaluate_rule(rule, time.time() - 1, source)
    finally:
        source.close()
    assert report.fired == [] and len(report.pending) == 1


@pytest.mark.usefixtures("prometheus_document")
def test_rule_language_on_prometheus_samples(exporter: Any, prometheus_server: Any) -> None:
    from automation.alerting.services.evaluation import evaluate_rule, rule_source
    from automation.alerting.services.rules import save_rule

    metric = unique("cpu").replace("-", "_")
    gauge = exporter.gauge(metric, ["service"])
    gauge.labels(service="api").set(93)
    gauge.labels(service="web").set(12)
    rule = save_rule(
        {"name": unique("cpu_high"), "source": "prometheus", "condition": f"max_over({metric}, 5s) > 80"}
    )
    scraped(prometheus_server, f'{metric}{{service="api"}}', 6)
    source = rule_source(rule)
    try:
        report = evaluate_rule(rule, time.time() - 1, source)
    finally:
        source.close()
    assert len(report.fired) == 1 and report.series == 2


def test_a_prometheus_rule_without_a_configured_url_is_an_error_naming_it() -> None:
    from automation.alerting.services.evaluation import rule_source
    from automation.alerting.services.rules import save_rule
    from automation.errors import SourceError

    rule = save_rule({"name": unique("nowhere"), "source": "prometheus", "expr": "up == 0"})
    with pytest.raises(SourceError, match="prometheus.url"):
        rule_source(rule)
