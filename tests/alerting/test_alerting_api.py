"""The alerting HTTP API served by a real `automation serve`: metrics pushed and read back, events and
Alertmanager's webhook (from real Alertmanagers) through the pipeline, silences, the alerting document.
Bad input answers 4xx naming the field, and stores nothing."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.alerting.peers import alertmanager_alerts, post_alerts
from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique, wait_for

TOKEN = "alerting-t0ken"
HANDLER_ACTIONS = [{"type": "control.wait", "parameters": {"seconds": 0}}]


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    # One worker: the level and the alerting document a test sets are read by the process that answers
    # (each process caches them a few seconds); concurrent intake is tested in test_pipeline.
    started = ApiServer(log_path=STATE_DIR / f"{unique('alerting-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c


@pytest.fixture
def level(engine: Any, client: httpx.Client) -> Iterator[Callable[[str], None]]:
    """Set the automation level for one test, and wait until the server reads it (it caches the config
    a few seconds); restored afterwards."""
    from automation import AutomationConfig
    from automation.config.apply import apply_config

    original = engine.config

    def set_level(value: str) -> None:
        apply_config(AutomationConfig(**{**original.model_dump(), "level": value}))
        wait_for(lambda: client.get("/api/v1/engine").json()["config"]["level"] == value)

    yield set_level
    apply_config(original)


@pytest.fixture
def stored_document() -> Iterator[None]:
    """The alerting document as stored before the test, stored again after it."""
    from automation.alerting.services.config import apply_document
    from automation.models import AlertingConfig

    before = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() or {}
    yield
    apply_document(before)


def fields(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [error["field"] for error in answer.json()["errors"]]


def reasons(answer: httpx.Response) -> str:
    return "; ".join(f"{e['field']}: {e['reason']}" for e in answer.json()["errors"])


def decisions(client: httpx.Client, fingerprint: str) -> list[str]:
    """The alert's notification log through the API ([] while the alert does not exist)."""
    answer = client.get(f"/api/v1/alerts/{fingerprint}/log")
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return [entry["decision"] for entry in answer.json()["log"]]


def alert_state(client: httpx.Client, fingerprint: str) -> str | None:
    answer = client.get(f"/api/v1/alerts/{fingerprint}/log")
    return answer.json()["alert"]["state"] if answer.status_code == 200 else None


def save_handler(client: httpx.Client, name: str) -> None:
    """A rule without a condition: what to do with received alerts named `name`."""
    rule = {"name": name, "severity": "low", "actions": HANDLER_ACTIONS}
    answer = client.post("/api/v1/alert-rules", json=rule)
    assert answer.status_code == 201, answer.text


def runs_of(workflow: str) -> int:
    from automation.models import WorkflowRun

    return WorkflowRun.objects.filter(workflow__name=workflow).count()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- metrics ---------------------------------------------------------------------------------------------


def test_pushed_text_and_json_are_read_back_through_the_push_source(client: httpx.Client) -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.series import Matcher, Selector

    metric = f"api_cpu_{uuid.uuid4().hex[:8]}"
    now = time.time()
    first, second = int((now - 120) * 1000), int((now - 60) * 1000)
    text = (
        f"# HELP {metric} CPU in percent\n# TYPE {metric} gauge\n"
        f'{metric}{{host="a",zone="eu"}} 41.5 {first}\n'
        f'{metric}{{host="a",zone="eu"}} 42.5 {second}\n'
        f'{metric}{{host="b",zone="eu"}} 7 {second}\n'
    )
    exposition = {"Content-Type": "text/plain; version=0.0.4"}
    pushed = client.post("/api/v1/metrics", content=text, headers=exposition)
    assert (pushed.status_code, pushed.json()) == (202, {"accepted": 3})
    samples = [
        {"metric": metric, "labels": {"host": "c", "zone": "us"}, "value": 1.25, "timestamp": now - 30},
        {
            "metric": metric,
            "labels": {"host": "c", "zone": "us"},
            "value": 2.25,
            "timestamp": rfc3339(datetime.fromtimestamp(now - 20, tz=UTC)),
        },
    ]
    pushed = client.post("/api/v1/metrics", json={"samples": samples})
    assert (pushed.status_code, pushed.json()) == (202, {"accepted": 2})

    def read(*matchers: Matcher) -> dict[str, list[tuple[float, float]]]:
        found = PushSource().select(Selector(metric, matchers), now - 300, now)
        return {s.label_map["host"]: [(x.at, x.value) for x in s.samples] for s in found}

    assert read(Matcher("host", "=", "a")) == {"a": [(first / 1000, 41.5), (second / 1000, 42.5)]}
    us = read(Matcher("zone", "=", "us"))["c"]
    assert [value for _, value in us] == [1.25, 2.25]
    assert [at for at, _ in us] == pytest.approx([now - 30, now - 20], abs=1e-3)
    assert set(read(Matcher("zone", "=~", "eu|us"))) == {"a", "b", "c"}

    # A sample pushed again at the same time replaces its value: pushes are idempotent.
    again = client.post("/api/v1/metrics", content=f'{metric}{{host="a",zone="eu"}} 99 {second}\n')
    assert again.status_code == 202
    assert read(Matcher("host", "=", "a")) == {"a": [(first / 1000, 41.5), (second / 1000, 99.0)]}


def test_a_bad_push_names_its_line_or_field_and_stores_nothing(client: httpx.Client) -> None:
    from automation.models import MetricSample, MetricSeries

    def stored() -> tuple[int, int]:
        return MetricSeries.objects.count(), MetricSample.objects.count()

    metric = f"api_bad_{uuid.uuid4().hex[:8]}"
    before = stored()
    ahead = int((time.time() + 3600) * 1000)

    def text(body: str) -> httpx.Response:
        return client.post("/api/v1/metrics", content=body, headers={"Content-Type": "text/plain"})

    unclosed = text(f'{metric} 1\n{metric}{{host="a"}} 2\n{metric}{{host="b" 3\n')
    assert fields(unclosed) == ["line 3"]
    nul = text(f'{metric}{{host="a\x00b"}} 1\n')
    assert fields(nul) == ["line 1"] and "NUL" in reasons(nul)
    future = text(f"{metric} 1\n{metric} 2 {ahead}\n")
    assert fields(future) == ["line 2"] and "ahead of the server's clock" in reasons(future)
    assert fields(text(f"{metric} high\n")) == ["line 1"]

    bad_json = client.post(
        "/api/v1/metrics",
        json={
            "samples": [
                {"metric": metric, "value": 1},
                {"metric": metric, "value": "high"},
                {"metric": "1bad", "value": 2},
                {"metric": metric, "value": 3, "labels": {"__name__": "x"}},
            ]
        },
    )
    assert fields(bad_json) == ["samples[1].value", "samples[2].metric", "samples[3].labels.__name__"]
    assert fields(client.post("/api/v1/metrics", json={"sample": []})) == ["sample", "samples"]
    assert fields(client.post("/api/v1/metrics", json=[1, 2])) == ["body"]
    surrogate = client.post(
        "/api/v1/metrics",
        content=b'{"samples": [{"metric": "m", "value": 1, "labels": {"a": "\\ud800"}}]}',
        headers={"Content-Type": "application/json"},
    )
    assert fields(surrogate) == ["samples[0].labels.a"]
    xml = client.post("/api/v1/metrics", content="<m/>", headers={"Content-Type": "application/xml"})
    assert fields(xml) == ["Content-Type"]
    huge = client.post("/api/v1/metrics", content=b"m 1\n" * 300_000, headers={"Content-Type": "text/plain"})
    assert huge.status_code == 413
    assert stored() == before


# -- events ----------------------------------------------------------------------------------------------


def test_an_event_fires_an_alert_listed_with_its_log_then_resolves(
    client: httpx.Client, server: ApiServer
) -> None:
    name = unique("api_event")
    labels = {"alertname": name, "service": "checkout", "severity": "critical"}
    annotations = {"summary": "checkout down"}
    fired = client.post("/api/v1/events", json={"labels": labels, "annotations": annotations})
    assert fired.status_code == 202, fired.text
    receipt = fired.json()
    assert (receipt["outcome"], receipt["state"]) == ("fired", "firing")
    fingerprint = receipt["fingerprint"]

    firing = client.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
    alert = next(a for a in firing if a["fingerprint"] == fingerprint)
    assert (alert["name"], alert["origin"], alert["severity"]) == (name, "event", "critical")
    assert alert["labels"] == labels and alert["annotations"] == annotations
    assert decisions(client, fingerprint)[0] == "fired"
    metrics = client.get("/metrics").text
    firing_critical = re.search(r'automation_alerts\{severity="critical",state="firing"\} (\d+)', metrics)
    assert firing_critical and int(firing_critical.group(1)) >= 1
    assert re.search(r'automation_alert_decisions_last_hour\{decision="fired"\} [1-9]', metrics)

    again = client.post("/api/v1/events", json={"labels": labels})
    assert again.json()["outcome"] == "deduplicated"
    resolved = client.post("/api/v1/events", json={"labels": labels, "status": "resolved"})
    assert (resolved.status_code, resolved.json()["outcome"]) == (202, "resolved")
    log = decisions(client, fingerprint)
    assert (log.count("fired"), log.count("deduplicated"), log.count("resolved")) == (1, 1, 1)
    listed = client.get("/api/v1/alerts", params={"state": "resolved"}).json()["alerts"]
    assert fingerprint in {a["fingerprint"] for a in listed}

    assert client.get("/api/v1/alerts/0000000000000000/log").status_code == 404
    assert fields(client.get("/api/v1/alerts", params={"state": "burning"})) == ["state"]
    assert httpx.get(f"{server.url}/api/v1/alerts").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "labels"),
        ({"labels": {}}, "labels"),
        ({"labels": {"alertname": 5}}, "labels"),
        ({"labels": {"alertname": "x"}, "status": "burning"}, "status"),
        ({"labels": {"alertname": "x"}, "starts_at": "yesterday"}, "starts_at"),
        ({"labels": {"alertname": "x"}, "ends_at": 1e15}, "ends_at"),
        ({"labels": {"alertname": "x"}, "starts_at": "1969-12-31T23:00:00Z"}, "starts_at"),
        ({"labels": {"alertname": "x"}, "severity": "high"}, "severity"),
        ({"labels": {"alertname": "x" * 201}}, "labels.alertname"),
        ({"labels": {"alertname": "x"}, "fingerprint": "a/b"}, "fingerprint"),
        ({"labels": {"alertname": "x"}, "fingerprint": "f" * 41}, "fingerprint"),
        ({"labels": {"alertname": "x\x00"}}, "labels.alertname"),
        ({"labels": {"alertname": "x"}, "annotations": {"summary": ["a"]}}, "annotations"),
    ],
)
def test_a_bad_event_is_422_naming_the_field_and_stores_no_alert(
    client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    from automation.models import Alert

    before = Alert.objects.count()
    assert field in fields(client.post("/api/v1/events", json=body))
    assert Alert.objects.count() == before


def test_a_body_that_is_not_an_object_is_400(client: httpx.Client) -> None:
    for path in ("/api/v1/events", "/api/v1/alerts/alertmanager", "/api/v1/silences", "/api/v1/alert-rules"):
        for body in (b"[1, 2]", b'"text"', b"{", b'{"a": NaN}'):
            answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (path, body, answer.text)


# -- silences --------------------------------------------------------------------------------------------


def test_silences_are_created_listed_and_expired(client: httpx.Client) -> None:
    now = time.time()
    body = {
        "matchers": ['service="api"', 'env=~"prod|staging"'],
        "ends_at": now + 3600,
        "created_by": "alice",
        "comment": "disk swap",
    }
    created = client.post("/api/v1/silences", json=body)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["state"] == "active" and silence["created_by"] == "alice"
    assert silence["matchers"] == [
        {"name": "service", "op": "=", "value": "api"},
        {"name": "env", "op": "=~", "value": "prod|staging"},
    ]
    later = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    pending = client.post("/api/v1/silences", json={**body, "starts_at": later, "ends_at": now + 7200})
    assert pending.json()["state"] == "pending"
    listed = {s["id"]: s["state"] for s in client.get("/api/v1/silences").json()["silences"]}
    assert listed[silence["id"]] == "active" and listed[pending.json()["id"]] == "pending"

    expired = client.delete(f"/api/v1/silences/{silence['id']}")
    assert (expired.status_code, expired.json()["state"]) == (200, "expired")
    assert client.delete(f"/api/v1/silences/{silence['id']}").status_code == 409
    assert client.delete(f"/api/v1/silences/{uuid.uuid4()}").status_code == 404
    assert client.delete("/api/v1/silences/banana").status_code == 404
    listed = {s["id"]: s["state"] for s in client.get("/api/v1/silences").json()["silences"]}
    assert listed[silence["id"]] == "expired"
    assert client.delete(f"/api/v1/silences/{pending.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"matchers": ["service"]}, "matchers", "'service' is not a matcher"),
        ({"matchers": []}, "matchers", "at least one matcher"),
        ({"matchers": ['pod=~"("']}, "matchers", "bad regular expression"),
        ({"matchers": ['pod=~"a{99999999999}"']}, "matchers", "bad regular expression"),
        ({"matchers": {"bad name": "x"}}, "matchers", "not a label name"),
        ({"matchers": [{"name": "a", "op": "=", "value": 1}]}, "matchers", "strings"),
        ({"ends_at": None}, "ends_at", "is required"),
        ({"ends_at": "tomorrow"}, "ends_at", "not an RFC 3339 time"),
        ({"ends_at": 1_000_000}, "ends_at", "is in the past"),
        ({"ends_at": 1e300}, "ends_at", "between 1970 and 9999"),
        ({"ends_at": "0001-01-01T00:00:00Z"}, "ends_at", "zero time"),
        ({"starts_at": "2099-01-01T00:00:00Z"}, "ends_at", "after starts_at"),
        ({"ends_at": "2099-01-01T00:00:00Z"}, "ends_at", "at most 366 days"),
        ({"created_by": ""}, "created_by", "is required"),
        ({"created_by": "x" * 201}, "created_by", "at most 200"),
        ({"comment": 5}, "comment", "is required"),
        ({"duration": "2h"}, "duration", "unknown field"),
    ],
)
def test_a_bad_silence_is_422_naming_the_field_and_stores_nothing(
    client: httpx.Client, change: dict[str, Any], field: str, words: str
) -> None:
    from automation.models import Silence

    body = {"matchers": ['service="api"'], "ends_at": time.time() + 600, "created_by": "bob", "comment": "c"}
    body.update(change)
    before = Silence.objects.count()
    answer = client.post("/api/v1/silences", json={k: v for k, v in body.items() if v is not None})
    assert field in fields(answer)
    assert words in reasons(answer)
    assert Silence.objects.count() == before


# -- the alerting document -------------------------------------------------------------------------------


@pytest.mark.usefixtures("stored_document")
def test_an_unknown_receiver_is_named_and_nothing_is_applied(client: httpx.Client) -> None:
    from automation.models import AlertingConfig, Workflow

    team = unique("team")
    receivers = [{"name": team, "slack": {"url": "http://127.0.0.1:9/hook"}}]
    stored = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    bad = {
        "route": {"receiver": team, "routes": [{"matchers": ['severity="critical"'], "receiver": "pager"}]},
        "receivers": receivers,
    }
    answer = client.put("/api/v1/alerting", json=bad)
    assert fields(answer) == ["route.routes[0].receiver"]
    assert "unknown receiver 'pager'" in reasons(answer)
    bad_url = {"route": {"receiver": team}, "receivers": [{"name": team, "slack": {"url": "ftp://x"}}]}
    assert fields(client.put("/api/v1/alerting", json=bad_url)) == ["receivers[0].slack.url"]
    shadow = {"route": {"receiver": "log"}, "receivers": [{"name": "log", "slack": {"url": "http://x"}}]}
    assert fields(client.put("/api/v1/alerting", json=shadow)) == ["receivers[0].name"]
    assert fields(client.put("/api/v1/alerting", json={"route": {"group_by": ["a"]}})) == ["route.receiver"]
    assert client.put("/api/v1/alerting", content=b"").status_code == 400
    assert AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() == stored
    assert not Workflow.objects.filter(name=f"receiver.{team}").exists()

    critical = {"matchers": ['severity="critical"'], "receiver": team}
    applied = client.put("/api/v1/alerting", json={**bad, "route": {"receiver": team, "routes": [critical]}})
    assert applied.status_code == 200, applied.text
    stored_matchers = applied.json()["route"]["routes"][0]["matchers"]
    assert stored_matchers == [{"name": "severity", "op": "=", "value": "critical"}]
    assert Workflow.objects.filter(name=f"receiver.{team}").exists()


# -- Alertmanager's webhook ------------------------------------------------------------------------------


def test_a_real_alertmanager_pair_fires_one_alert_and_one_run_then_resolves(
    client: httpx.Client,
    server: ApiServer,
    alertmanager_server: Callable[..., str],
    level: Callable[[str], None],
) -> None:
    """Two Alertmanagers (an HA pair, not clustered) route the same alert to our webhook with the bearer
    token: one firing under Alertmanager's fingerprint, the second copy logged as deduplicated, one
    remediation run; then both send it resolved."""
    level("autonomous")
    name = unique("am_disk")
    save_handler(client, name)
    hook = f"{server.url}/api/v1/alerts/alertmanager"
    pair = [alertmanager_server(hook, bearer_token=TOKEN) for _ in range(2)]
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    alert = {
        "labels": {"alertname": name, "service": "disk", "severity": "low"},
        "annotations": {"summary": "disk full"},
        "startsAt": rfc3339(starts),
    }
    for alertmanager in pair:
        post_alerts(alertmanager, [alert])
    fingerprints = {a["fingerprint"] for am in pair for a in alertmanager_alerts(am)}
    assert len(fingerprints) == 1
    fingerprint = fingerprints.pop()

    wait_for(lambda: "deduplicated" in decisions(client, fingerprint))
    shown = client.get(f"/api/v1/alerts/{fingerprint}/log").json()["alert"]
    assert (shown["state"], shown["origin"], shown["name"]) == ("firing", "alertmanager", name)
    assert shown["labels"] == alert["labels"] and shown["annotations"] == alert["annotations"]
    assert datetime.fromisoformat(shown["fired_at"]) == starts
    log = decisions(client, fingerprint)
    assert (log.count("fired"), log.count("workflow_started")) == (1, 1)
    assert (runs_of(f"alert.{name}"), runs_of(f"alert.{name}.gated")) == (1, 0)

    ended = {**alert, "endsAt": rfc3339(datetime.now(UTC) - timedelta(seconds=1))}
    for alertmanager in pair:
        post_alerts(alertmanager, [ended])
    wait_for(lambda: alert_state(client, fingerprint) == "resolved")
    assert decisions(client, fingerprint).count("resolved") == 1
    assert runs_of(f"alert.{name}") == 1
    calls = [line for line in server.log().splitlines() if "Alertmanager/" in line]
    assert calls and all('" 200 ' in line for line in calls), calls


def test_the_same_webhook_payload_twice_is_one_firing_and_one_run(
    client: httpx.Client, level: Callable[[str], None]
) -> None:
    level("autonomous")
    name = unique("ha_dup")
    save_handler(client, name)
    fingerprint = uuid.uuid4().hex[:16]
    labels = {"alertname": name, "instance": "db-1", "severity": "low"}
    payload = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "engine",
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": rfc3339(datetime.now(UTC) - timedelta(minutes=2)),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": fingerprint,
            }
        ],
    }
    outcomes = []
    for _ in range(2):
        answer = client.post("/api/v1/alerts/alertmanager", json=payload)
        assert answer.status_code == 200, answer.text
        outcomes.append(answer.json()["alerts"][0]["outcome"])
    assert outcomes == ["fired", "deduplicated"]
    log = decisions(client, fingerprint)
    assert (log.count("fired"), log.count("deduplicated"), log.count("workflow_started")) == (1, 1, 1)
    assert runs_of(f"alert.{name}") == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "alerts"),
        ({"alerts": []}, "alerts"),
        ({"version": "3", "alerts": [{"labels": {"a": "b"}}]}, "version"),
        ({"alerts": [{"labels": {"alertname": "ok"}}, {"labels": "a=b"}]}, "alerts[1].labels"),
        ({"alerts": [{"labels": {"alertname": "ok"}}, 7]}, "alerts[1]"),
        ({"alerts": [{"labels": {"a": "b"}, "startsAt": "soon"}]}, "alerts[0].startsAt"),
        ({"alerts": [{"labels": {"a": "b"}, "status": "pending"}]}, "alerts[0].status"),
        ({"alerts": [{"labels": {"a": "b"}}] * 1001}, "alerts"),
    ],
)
def test_a_bad_webhook_payload_is_422_naming_the_field_and_stores_no_alert(
    client: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    from automation.models import Alert

    before = Alert.objects.count()
    assert field in fields(client.post("/api/v1/alerts/alertmanager", json=payload))
    assert Alert.objects.count() == before


def test_a_backfilled_push_does_not_let_retention_drop_newer_samples(client: httpx.Client) -> None:
    from automation.alerting.push import PushSource
    from automation.alerting.series import Selector
    from automation.alerting.services.samples import purge

    metric, other = f"api_backfill_{uuid.uuid4().hex[:8]}", f"api_gone_{uuid.uuid4().hex[:8]}"
    now = time.time()
    recent, old = int((now - 60) * 1000), int((now - 3 * 86_400) * 1000)
    first = client.post("/api/v1/metrics", content=f"{metric} 1 {recent}\n{other} 5 {old}\n")
    assert first.status_code == 202
    # A late push of an old sample: the series' newest push is now older than the retention.
    assert client.post("/api/v1/metrics", content=f"{metric} 0 {old}\n").status_code == 202
    purge(now - 2 * 86_400)
    kept = PushSource().select(Selector(metric), now - 4 * 86_400, now)
    assert [[(s.at, s.value) for s in series.samples] for series in kept] == [[(recent / 1000, 1.0)]]
    assert PushSource().select(Selector(other), now - 4 * 86_400, now) == []


# -- secrets in what the API shows -----------------------------------------------------------------------

SLACK_PATH = "/services/T0SECRET/B0SECRET/sl4ck-w3bhook-s3cret"
HOOK_TOKEN = "h00k-qu3ry-t0ken"
HEADER_VALUE = "h3ader-val-s3cret"
PROM_PASSWORD = "pr0m-passw0rd-s3cret"  # noqa: S105 - a made-up password the answers must not show
SECRETS = (SLACK_PATH, HOOK_TOKEN, HEADER_VALUE, PROM_PASSWORD)


def assert_no_secret(answer: httpx.Response) -> None:
    assert answer.status_code in (200, 201), answer.text
    shown = [secret for secret in SECRETS if secret in answer.text]
    assert not shown, f"{answer.request.url.path} shows {shown}"


@pytest.mark.usefixtures("worker", "stored_document")
def test_receiver_urls_and_headers_are_never_shown(client: httpx.Client, peer: Any) -> None:
    """A Slack webhook URL is the credential, a webhook's `?token=` and headers too: the alerting document,
    the receivers' delivery workflows and their runs all show them masked, while deliveries use them."""
    from automation.alerting.services.groups import flush_all
    from automation.secrets import MASK

    team = unique("team")
    chat, hook = f"chat_{team}", f"hook_{team}"
    document = {
        "route": {
            "receiver": "log",
            "routes": [
                {"matchers": [f'team="{team}"'], "receiver": chat, "group_wait": 0, "continue": True},
                {"matchers": [f'team="{team}"'], "receiver": hook, "group_wait": 0},
            ],
        },
        "receivers": [
            {"name": chat, "slack": {"url": f"{peer.url}{SLACK_PATH}"}},
            {
                "name": hook,
                "webhook": {
                    "url": f"{peer.url}/hook?token={HOOK_TOKEN}", "headers": {"X-Team": HEADER_VALUE}
                },
            },
        ],
        "prometheus": {"url": "http://127.0.0.1:9", "username": "ops", "password": PROM_PASSWORD},
    }
    applied = client.put("/api/v1/alerting", json=document)
    assert_no_secret(applied)
    shown = client.get("/api/v1/alerting")
    assert_no_secret(shown)
    receivers = {r["name"]: r for r in shown.json()["receivers"]}
    assert receivers[chat]["slack"]["url"] == MASK
    assert receivers[hook]["webhook"] == {"url": MASK, "headers": {"X-Team": MASK}}
    assert shown.json()["prometheus"]["password"] == MASK
    assert shown.json()["prometheus"]["url"] == "http://127.0.0.1:9"  # no credential: shown
    for name in (chat, hook):
        workflow = client.get(f"/api/v1/workflows/receiver.{name}")
        assert_no_secret(workflow)
        assert workflow.json()["definition"]["actions"][0]["parameters"]["url"] == MASK

    fired = client.post("/api/v1/events", json={"labels": {"alertname": unique("leak"), "team": team}})
    assert fired.status_code == 202, fired.text
    fingerprint = fired.json()["fingerprint"]
    flush_all(time.time() + 1)  # in case the intake left the group to the next flush
    wait_for(lambda: len(peer.received) >= 2)
    paths = sorted(r.path for r in peer.received)
    assert paths == sorted([SLACK_PATH, f"/hook?token={HOOK_TOKEN}"])  # delivered with the secrets
    assert next(r for r in peer.received if r.path.startswith("/hook")).headers["X-Team"] == HEADER_VALUE

    log = client.get(f"/api/v1/alerts/{fingerprint}/log").json()["log"]
    run_ids = {e["run_id"] for e in log if e["decision"] == "notified"}
    assert len(run_ids) == 2, log
    for run_id in run_ids:
        wait_for(lambda run_id=run_id: client.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded")
        assert_no_secret(client.get(f"/api/v1/runs/{run_id}"))


def test_a_url_with_user_and_password_is_refused_naming_the_field(client: httpx.Client) -> None:
    from automation.models import AlertingConfig

    stored = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    prometheus = {"prometheus": {"url": f"http://ops:{PROM_PASSWORD}@127.0.0.1:9090"}}
    answer = client.put("/api/v1/alerting", json=prometheus)
    assert fields(answer) == ["prometheus.url"]
    assert "username and password fields" in reasons(answer) and PROM_PASSWORD not in answer.text
    hook = {"name": "h", "webhook": {"url": f"https://ops:{HOOK_TOKEN}@example.org/hook"}}
    answer = client.put("/api/v1/alerting", json={"route": {"receiver": "h"}, "receivers": [hook]})
    assert fields(answer) == ["receivers[0].webhook.url"]
    assert HOOK_TOKEN not in answer.text
    assert AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() == stored


def test_a_regex_re2_refuses_is_422_naming_the_field(client: httpx.Client) -> None:
    ends = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    silence = {"matchers": ['service=~"(?=api)"'], "ends_at": ends, "created_by": "bob", "comment": "c"}
    answer = client.post("/api/v1/silences", json=silence)
    assert fields(answer) == ["matchers"]
    assert "bad regular expression (RE2" in reasons(answer)
    route = {"route": {"receiver": "log", "routes": [{"matchers": ['a=~"(x)\\\\1"'], "receiver": "log"}]}}
    assert fields(client.put("/api/v1/alerting", json=route)) == ["route.routes[0].matchers"]
