"""The real peers the alerting tests stand on: Alertmanager calls its webhook, Prometheus fires rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.alerting.peers import post_alerts
from tests.conftest import wait_for


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _webhooks(peer, path: str = "/hook") -> list[dict]:
    return [r.body for r in list(peer.received) if r.path == path]


def test_alertmanager_sends_a_posted_alert_to_the_webhook_and_then_its_resolution(alertmanager_server, peer):
    base_url = alertmanager_server(f"{peer.url}/hook")
    started = datetime.now(UTC).replace(microsecond=0)
    alert = {
        "labels": {"alertname": "HighCPU", "host": "db-1", "severity": "page"},
        "annotations": {"summary": "CPU above 90% on db-1"},
        "startsAt": _iso(started),
        "generatorURL": "http://prometheus.invalid/graph",
    }
    post_alerts(base_url, [alert])

    wait_for(lambda: _webhooks(peer), timeout=30)
    payload = _webhooks(peer)[0]
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "webhook"
    assert payload["groupLabels"] == {"alertname": "HighCPU"}
    assert payload["commonLabels"] == alert["labels"]
    assert payload["commonAnnotations"] == alert["annotations"]
    assert payload["truncatedAlerts"] == 0
    assert payload["groupKey"]
    [sent] = payload["alerts"]
    assert sent["status"] == "firing"
    assert sent["labels"] == alert["labels"]
    assert sent["annotations"] == alert["annotations"]
    assert datetime.fromisoformat(sent["startsAt"]) == started
    assert sent["generatorURL"] == alert["generatorURL"]
    assert sent["fingerprint"]

    post_alerts(base_url, [{**alert, "endsAt": _iso(datetime.now(UTC) - timedelta(seconds=1))}])
    wait_for(lambda: any(p["status"] == "resolved" for p in _webhooks(peer)), timeout=30)
    resolved = next(p for p in _webhooks(peer) if p["status"] == "resolved")
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["fingerprint"] == sent["fingerprint"]


def test_prometheus_fires_a_rule_on_the_exporters_value_through_alertmanager(
    exporter, start_prometheus, alertmanager_server, peer
):
    exporter.gauge("peers_test_queue_depth", ["queue"]).labels(queue="mail").set(500)
    rules = {
        "groups": [
            {
                "name": "peers-test",
                "rules": [
                    {
                        "alert": "QueueDeep",
                        "expr": "peers_test_queue_depth > 100",
                        "labels": {"severity": "ticket"},
                        "annotations": {"summary": "queue {{ $labels.queue }} holds {{ $value }}"},
                    }
                ],
            }
        ]
    }
    alertmanager = alertmanager_server(f"{peer.url}/hook")
    start_prometheus(rule_files=[rules], alertmanagers=[alertmanager])

    wait_for(lambda: _webhooks(peer), timeout=60)
    [sent] = _webhooks(peer)[0]["alerts"]
    assert sent["labels"]["alertname"] == "QueueDeep"
    assert sent["labels"]["queue"] == "mail"
    assert sent["labels"]["severity"] == "ticket"
    assert sent["labels"]["instance"] == exporter.target
    assert sent["annotations"]["summary"] == "queue mail holds 500"
