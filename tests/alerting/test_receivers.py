"""The alerting receivers: PagerDuty, an Alertmanager-shaped webhook and email.

The message builders are tested alone; the deliveries run as steps of real workflows on a real worker,
against a real HTTP server and a real SMTP server (aiosmtpd) on loopback.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from automation import ActionDefinition, WorkflowDefinition
from automation.alerting.receivers.alertmanager import AlertmanagerWebhookParams, fingerprint
from automation.alerting.receivers.email import EmailParams, compose, deliver, message_id
from automation.alerting.receivers.pagerduty import PagerDutyParams, event_body, refusal_detail
from automation.errors import ActionError
from automation.secrets import MASK, mask
from tests.conftest import STATE_DIR, free_port, unique
from tests.peers import Answer, HttpPeer, Received

ROUTING_KEY = "R0UT1NGk3y-0123456789abcdef0123"
BEARER = "b3arer-t0ken-value"
PASSWORD = "c0rrect-h0rse-battery"  # noqa: S105 - the SMTP test server's own password
FINGERPRINT = "c0ffee00decade01"

# The builders alone.


def errors_at(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in exc.errors()}


def test_fingerprint_is_alertmanagers() -> None:
    # The vectors of prometheus/common's model tests (labelSetToFingerprint).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    labels = {"name": "garland, briggs", "fear": "love is not enough"}
    assert fingerprint(labels) == f"{5799056148416392346:016x}"


def test_alert_group_fills_in_what_alertmanager_computes() -> None:
    params = AlertmanagerWebhookParams.model_validate(
        {
            "url": "http://127.0.0.1:9/hook",
            "receiver": "ops",
            "groupLabels": {"alertname": "HighLatency"},
            "alerts": [
                {
                    "status": "resolved",
                    "labels": {"alertname": "HighLatency", "pod": "a"},
                    "annotations": {"summary": "slow"},
                    "startsAt": "2026-11-29T18:00:00Z",
                    "endsAt": "2026-11-29T18:10:00+01:00",
                },
                {
                    "status": "firing",
                    "labels": {"alertname": "HighLatency", "pod": "b"},
                    "annotations": {"summary": "slow", "runbook": "r"},
                    "startsAt": "2026-11-29T18:01:00.5Z",
                },
            ],
        }
    )
    body = params.payload()
    assert list(body) == [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ]
    assert body["status"] == "firing"
    assert body["groupKey"] == '{}:{alertname="HighLatency"}'
    assert body["commonLabels"] == {"alertname": "HighLatency"}
    assert body["commonAnnotations"] == {"summary": "slow"}
    assert body["alerts"][0]["endsAt"] == "2026-11-29T17:10:00Z"
    assert body["alerts"][1]["startsAt"] == "2026-11-29T18:01:00.500000Z"
    assert body["alerts"][1]["endsAt"] == "0001-01-01T00:00:00Z"
    assert body["alerts"][1]["fingerprint"] == fingerprint({"alertname": "HighLatency", "pod": "b"})


def test_alert_group_refuses_bad_content() -> None:
    with pytest.raises(ValidationError) as refused:
        AlertmanagerWebhookParams.model_validate(
            {
                "url": "http://127.0.0.1:9/hook",
                "receiver": "ops",
                "group_key": "snake",
                "headers": {"authorization": "Basic x"},
                "bearer_token": BEARER,
                "alerts": [{"status": "pending", "labels": {"a": "1"}, "startsAt": "2026-11-29T18:00:00"}],
            }
        )
    at = errors_at(refused.value)
    assert set(at) == {"group_key", "bearer_token", "alerts.0.status", "alerts.0.startsAt"}
    assert at["bearer_token"] == "cannot go with an Authorization header"
    assert BEARER not in str(refused.value.errors(include_input=False))


def test_pagerduty_event_and_its_rules() -> None:
    trigger = PagerDutyParams.model_validate(
        {
            "routing_key": ROUTING_KEY,
            "fingerprint": FINGERPRINT,
            "payload": {"summary": "p99 high", "source": "prometheus", "severity": "high"},
        }
    )
    assert str(trigger.url) == "https://events.pagerduty.com/v2/enqueue"
    assert trigger.chosen_dedup_key("run:step") == FINGERPRINT
    assert event_body(trigger, dedup_key=FINGERPRINT) == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": FINGERPRINT,
        "payload": {"summary": "p99 high", "source": "prometheus", "severity": "error"},
    }
    assert ROUTING_KEY not in repr(trigger) and ROUTING_KEY not in str(trigger)
    assert mask({"routing_key": ROUTING_KEY}) == {"routing_key": MASK}
    # Without a fingerprint, a trigger retried by the engine still opens one incident.
    anonymous = trigger.model_copy(update={"fingerprint": None})
    assert anonymous.chosen_dedup_key("run:step") == "run:step"

    resolve = PagerDutyParams.model_validate(
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "incident-7"}
    )
    assert event_body(resolve, dedup_key=resolve.chosen_dedup_key("run:step")) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "incident-7",
    }
    with pytest.raises(ValidationError) as refused:
        PagerDutyParams.model_validate({"routing_key": ROUTING_KEY, "event_action": "acknowledge"})
    assert errors_at(refused.value) == {
        "dedup_key": "acknowledge needs the trigger's dedup_key (or the alert's fingerprint)"
    }
    with pytest.raises(ValidationError) as refused:
        PagerDutyParams.model_validate(
            {"routing_key": ROUTING_KEY, "payload": None, "links": [{"text": "x"}]}
        )
    assert set(errors_at(refused.value)) == {"payload", "links.0.href"}


def test_pagerduty_refusal_is_told_without_the_routing_key() -> None:
    params = PagerDutyParams.model_validate(
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "d"}
    )
    answer = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [f"routing key {ROUTING_KEY} is unknown"],
    }
    assert refusal_detail(answer, params) == f"Event object is invalid; routing key {MASK} is unknown"
    assert refusal_detail("<html>", params) == ""


def mail_params(**extra: Any) -> EmailParams:
    return EmailParams.model_validate(
        {
            "host": "127.0.0.1",
            "from": "Alerts <alerts@example.org>",
            "to": ["oncall@example.org"],
            "subject": "p99 high",
            "text": "the p99 latency of api is 870 ms",
            **extra,
        }
    )


def test_email_message_and_its_id() -> None:
    params = mail_params(cc=["Lead <lead@example.org>"], html="<p>870 ms</p>")
    message = compose(params, idempotency_key="run-1:mail")
    assert message["Message-ID"] == message_id("run-1:mail", params.sender)
    assert message["Message-ID"].endswith("@example.org>")
    assert compose(params, idempotency_key="run-1:mail")["Message-ID"] == message["Message-ID"]
    assert message_id("run-2:mail", params.sender) != message["Message-ID"]
    assert (message["From"], message["To"], message["Cc"]) == (
        "Alerts <alerts@example.org>",
        "oncall@example.org",
        "Lead <lead@example.org>",
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_body(("plain",)).get_content().strip() == "the p99 latency of api is 870 ms"
    assert message.get_body(("html",)).get_content().strip() == "<p>870 ms</p>"
    assert params.recipients == ["oncall@example.org", "lead@example.org"]
    ports = [mail_params(**tls).chosen_port for tls in ({}, {"starttls": True}, {"ssl": True})]
    assert ports == [25, 587, 465]


def test_email_refuses_bad_parameters() -> None:
    with pytest.raises(ValidationError) as refused:
        mail_params(
            ssl=True,
            starttls=True,
            password=PASSWORD,
            to=["oncall@example.org\nBcc: x@y.z"],
            cc=["not an address"],
            subject="a\r\nBcc: x@y.z",
        )
    at = errors_at(refused.value)
    assert set(at) == {"starttls", "password", "to.0", "cc.0", "subject"}
    assert at["password"] == "needs a username"
    assert at["to.0"] == "must not hold a line break"
    with pytest.raises(ValidationError) as refused:
        mail_params(username="alerts")
    assert errors_at(refused.value) == {"password": "is needed with a username"}


def test_email_login_needs_tls_unless_insecure_auth_is_allowed() -> None:
    with pytest.raises(ValidationError) as refused:
        mail_params(username="alerts", password=PASSWORD)
    at = errors_at(refused.value)
    assert list(at) == ["password"]
    assert at["password"].startswith("needs ssl or starttls")
    assert PASSWORD not in at["password"]
    for secured in ({"ssl": True}, {"starttls": True}, {"allow_insecure_auth": True}):
        assert mail_params(username="alerts", password=PASSWORD, **secured).username == "alerts"
    assert mail_params().allow_insecure_auth is False  # without a login there is nothing to protect


@pytest.mark.usefixtures("worker")
def test_a_workflow_logging_in_over_plain_smtp_is_refused_naming_the_field(engine: Any) -> None:
    from automation.errors import DefinitionError

    with pytest.raises(DefinitionError) as refused:
        one_step_workflow(engine, "mail-plain", email_step(25, username="alerts", password=PASSWORD))
    [(field, reason)] = refused.value.errors
    assert field == "actions[0].parameters.password" and reason.startswith("needs ssl or starttls")
    assert PASSWORD not in str(refused.value)
    # A templated password is only known at run time: the step fails then, at once, before connecting.
    login = {"username": "alerts", "password": "${smtp_password}"}
    name = one_step_workflow(engine, "mail-plain", email_step(free_port(), **login), "smtp_password")
    run = engine.run_workflow(name, {"smtp_password": PASSWORD}).wait(60)
    assert run.status == "failed"
    step = run.step("mail")
    assert step.attempts == 1 and "parameters.password: needs ssl or starttls" in step.error
    assert PASSWORD not in step_error_and_logs(run.id)


def test_email_to_a_closed_port_is_retryable() -> None:
    params = mail_params(
        port=free_port(), username="alerts", password=PASSWORD, allow_insecure_auth=True, timeout=5
    )
    with pytest.raises(ActionError) as failed:
        deliver(params, compose(params, idempotency_key="run:mail"))
    assert failed.value.retryable
    assert str(failed.value) == f"SMTP 127.0.0.1:{params.port}: connection refused"


# Deliveries as engine steps.


def step_error_and_logs(run_id: str) -> str:
    """Everything the engine shows or writes about a run: its API view and every worker's log."""
    from automation.api.serializers import run_json
    from automation.models import WorkflowRun

    shown = str(run_json(WorkflowRun.objects.get(id=run_id)))
    return shown + "".join(log.read_text() for log in STATE_DIR.glob("*.log"))


def one_step_workflow(engine: Any, prefix: str, step: ActionDefinition, *secrets: str) -> str:
    name = unique(prefix)
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            inputs={secret: {"type": "string", "secret": True} for secret in secrets},
            actions=[step],
        )
    )
    return name


def pagerduty_step(url: str, **extra: Any) -> ActionDefinition:
    return ActionDefinition(
        name="page",
        action_type="notification.pagerduty",
        retry_attempts=2,
        parameters={
            "url": url,
            "routing_key": "${pd_routing_key}",
            "fingerprint": FINGERPRINT,
            "payload": {
                "summary": "p99 latency of api above 500 ms",
                "source": "prometheus",
                "severity": "critical",
                "timestamp": "2026-11-29T18:00:00+00:00",
                "component": "api",
                "group": "payments",
                "class": "latency",
                "custom_details": {"p99_ms": 870, "threshold_ms": 500},
            },
            "links": [{"href": "https://grafana.example/d/api", "text": "Dashboard"}],
            "images": [{"src": "https://grafana.example/render/api.png", "alt": "p99"}],
            **extra,
        },
    )


def scripted(*answers: Answer) -> HttpPeer:
    """A peer giving `answers` in turn, then the last one again."""
    given: list[Received] = []

    def answer(request: Received) -> Answer:
        given.append(request)
        return answers[min(len(given), len(answers)) - 1]

    return HttpPeer(answer)


@pytest.fixture
def pagerduty() -> Iterator[HttpPeer]:
    server = scripted(
        Answer(status=503, body={"status": "unavailable"}),
        Answer(202, body={"status": "success", "message": "Event processed", "dedup_key": FINGERPRINT}),
    )
    yield server
    server.close()


@pytest.mark.usefixtures("worker")
def test_pagerduty_event_is_retried_after_a_5xx_with_the_same_key(engine: Any, pagerduty: HttpPeer) -> None:
    name = one_step_workflow(engine, "pd", pagerduty_step(f"{pagerduty.url}/v2/enqueue"), "pd_routing_key")
    run = engine.run_workflow(name, {"pd_routing_key": ROUTING_KEY}).wait(60)
    assert run.status == "succeeded", run.steps
    step = run.step("page")
    assert step.attempts == 2
    assert step.output == {"status_code": 202, "dedup_key": FINGERPRINT, "host": "127.0.0.1"}
    assert len(pagerduty.received) == 2
    expected = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": FINGERPRINT,
        "payload": {
            "summary": "p99 latency of api above 500 ms",
            "source": "prometheus",
            "severity": "critical",
            "timestamp": "2026-11-29T18:00:00Z",
            "component": "api",
            "group": "payments",
            "class": "latency",
            "custom_details": {"p99_ms": 870, "threshold_ms": 500},
        },
        "links": [{"href": "https://grafana.example/d/api", "text": "Dashboard"}],
        "images": [{"src": "https://grafana.example/render/api.png", "alt": "p99"}],
    }
    assert [request.body for request in pagerduty.received] == [expected, expected]
    assert [request.path for request in pagerduty.received] == ["/v2/enqueue"] * 2
    keys = {request.headers["Idempotency-Key"] for request in pagerduty.received}
    assert keys == {f"{run.id}:page"}
    assert ROUTING_KEY not in step_error_and_logs(run.id)


@pytest.mark.usefixtures("worker")
def test_pagerduty_bad_request_fails_the_step_at_once(engine: Any) -> None:
    answer = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [f"routing key {ROUTING_KEY} is unknown"],
    }
    server = HttpPeer(lambda _: Answer(status=400, body=answer))
    try:
        page = pagerduty_step(f"{server.url}/v2/enqueue")
        name = one_step_workflow(engine, "pd-400", page, "pd_routing_key")
        run = engine.run_workflow(name, {"pd_routing_key": ROUTING_KEY}).wait(60)
        assert run.status == "failed"
        step = run.step("page")
        assert step.attempts == 1
        assert len(server.received) == 1
        assert f"answered 400: Event object is invalid; routing key {MASK} is unknown" in step.error
        assert ROUTING_KEY not in step_error_and_logs(run.id)
    finally:
        server.close()


def alertmanager_step(url: str) -> ActionDefinition:
    return ActionDefinition(
        name="notify",
        action_type="notification.alertmanager_webhook",
        retry_attempts=2,
        parameters={
            "url": url,
            "bearer_token": "${hook_token}",
            "headers": {"X-Team": "payments"},
            "receiver": "payments-oncall",
            "groupLabels": {"alertname": "HighLatency"},
            "externalURL": "http://automation.example",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "HighLatency", "service": "api", "severity": "critical"},
                    "annotations": {"summary": "p99 latency of api above 500 ms"},
                    "startsAt": "2026-11-29T18:00:00Z",
                    "generatorURL": "http://automation.example/rules/high-latency",
                    "fingerprint": FINGERPRINT,
                }
            ],
        },
    )


@pytest.mark.usefixtures("worker")
def test_alertmanager_webhook_body_and_retry(engine: Any) -> None:
    server = scripted(Answer(status=500), Answer(status=200))
    try:
        name = one_step_workflow(engine, "am", alertmanager_step(f"{server.url}/alerts"), "hook_token")
        run = engine.run_workflow(name, {"hook_token": BEARER}).wait(60)
        assert run.status == "succeeded", run.steps
        step = run.step("notify")
        assert step.attempts == 2
        assert step.output == {
            "status_code": 200,
            "host": "127.0.0.1",
            "group_key": '{}:{alertname="HighLatency"}',
            "alerts": 1,
            "idempotency_key": f"{run.id}:notify",
        }
        labels = {"alertname": "HighLatency", "service": "api", "severity": "critical"}
        expected = {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "payments-oncall",
            "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": labels,
            "commonAnnotations": {"summary": "p99 latency of api above 500 ms"},
            "externalURL": "http://automation.example",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": "p99 latency of api above 500 ms"},
                    "startsAt": "2026-11-29T18:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://automation.example/rules/high-latency",
                    "fingerprint": FINGERPRINT,
                }
            ],
        }
        assert [request.body for request in server.received] == [expected, expected]
        for request in server.received:
            assert request.headers["Idempotency-Key"] == f"{run.id}:notify"
            assert request.headers["Authorization"] == f"Bearer {BEARER}"
            assert request.headers["X-Team"] == "payments"
        assert BEARER not in step_error_and_logs(run.id)
    finally:
        server.close()


@pytest.mark.usefixtures("worker")
def test_alertmanager_webhook_client_error_is_not_retried(engine: Any) -> None:
    server = HttpPeer(lambda _: Answer(status=400, body={"error": "bad payload"}))
    try:
        name = one_step_workflow(engine, "am-400", alertmanager_step(f"{server.url}/alerts"), "hook_token")
        run = engine.run_workflow(name, {"hook_token": BEARER}).wait(60)
        assert run.status == "failed"
        assert run.step("notify").attempts == 1
        assert len(server.received) == 1
        assert f"webhook http://127.0.0.1:{server.port}/… answered 400" in run.step("notify").error
    finally:
        server.close()


@dataclass
class Mailbox:
    """An aiosmtpd handler: refuses the first `busy` DATA commands (451), refuses `nobody@` recipients,
    keeps every message it was offered and those it accepted."""

    busy: int = 0
    offered: list[EmailMessage] = field(default_factory=list)
    accepted: list[tuple[str, list[str], EmailMessage, bytes | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.offered.append(parsed)
            if len(self.offered) <= self.busy:
                return "451 4.3.0 try again later"
            login = session.auth_data if session.authenticated else None
            self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), parsed, login))
        return "250 OK"


def login_check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    good = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"alerts",
        PASSWORD.encode(),
    )
    return AuthResult(success=good, handled=False, auth_data=auth_data.login if good else None)


def smtp_server(mailbox: Mailbox, **options: Any) -> Any:
    from aiosmtpd.controller import Controller

    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller


def email_step(port: int, **extra: Any) -> ActionDefinition:
    return ActionDefinition(
        name="mail",
        action_type="notification.email",
        retry_attempts=2,
        parameters={
            "host": "127.0.0.1",
            "port": port,
            "from": "Alerts <alerts@example.org>",
            "to": ["oncall@example.org", "nobody@example.org"],
            "cc": ["Lead <lead@example.org>"],
            "subject": "[FIRING] HighLatency api",
            "text": "p99 latency of api is 870 ms",
            "html": "<p>p99 latency of <b>api</b> is 870 ms</p>",
            "timeout": 10,
            **extra,
        },
    )


@pytest.mark.usefixtures("worker")
def test_email_reaches_the_server_with_a_stable_message_id(engine: Any) -> None:
    mailbox = Mailbox(busy=1)
    server = smtp_server(mailbox)
    try:
        run = engine.run_workflow(one_step_workflow(engine, "mail", email_step(server.port))).wait(60)
        assert run.status == "succeeded", run.steps
        step = run.step("mail")
        assert step.attempts == 2  # the 451 is retried by the engine
        expected_id = message_id(f"{run.id}:mail", "alerts@example.org")
        assert step.output == {
            "message_id": expected_id,
            "accepted": 2,
            "refused": ["nobody@example.org"],
            "host": "127.0.0.1",
        }
        assert [offered["Message-ID"] for offered in mailbox.offered] == [expected_id, expected_id]
        [(sender, recipients, message, login)] = mailbox.accepted
        assert (sender, login) == ("alerts@example.org", None)
        assert recipients == ["oncall@example.org", "lead@example.org"]
        assert message["From"] == "Alerts <alerts@example.org>"
        assert message["To"] == "oncall@example.org, nobody@example.org"
        assert message["Cc"] == "Lead <lead@example.org>"
        assert message["Subject"] == "[FIRING] HighLatency api"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Date"] is not None
        assert message.get_body(("plain",)).get_content().strip() == "p99 latency of api is 870 ms"
        html = message.get_body(("html",)).get_content()
        assert html.strip() == "<p>p99 latency of <b>api</b> is 870 ms</p>"
    finally:
        server.stop()


@pytest.mark.usefixtures("worker")
def test_email_logs_in_and_a_wrong_password_fails_at_once(engine: Any) -> None:
    mailbox = Mailbox()
    server = smtp_server(mailbox, authenticator=login_check, auth_require_tls=False)
    try:
        # aiosmtpd here speaks plain SMTP: the login in clear is allowed in so many words.
        login = {
            "username": "alerts", "password": "${smtp_password}", "allow_insecure_auth": True,
            "to": ["oncall@example.org"],
        }
        name = one_step_workflow(engine, "mail-auth", email_step(server.port, **login), "smtp_password")
        good = engine.run_workflow(name, {"smtp_password": PASSWORD}).wait(60)
        assert good.status == "succeeded", good.steps
        [(_, recipients, _, logged_in)] = mailbox.accepted
        assert (recipients, logged_in) == (["oncall@example.org", "lead@example.org"], b"alerts")

        wrong = "wr0ng-passw0rd-value"
        bad = engine.run_workflow(name, {"smtp_password": wrong}).wait(60)
        assert bad.status == "failed"
        step = bad.step("mail")
        assert step.attempts == 1
        assert f"SMTP 127.0.0.1:{server.port}: authentication as 'alerts' refused (535" in step.error
        assert len(mailbox.accepted) == 1
        shown = step_error_and_logs(bad.id)
        assert wrong not in shown and PASSWORD not in shown
    finally:
        server.stop()
