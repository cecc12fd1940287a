"""Notification actions: a Slack-compatible webhook, and the alerting receivers (PagerDuty, an
Alertmanager-shaped webhook, email). Each delivery is one step: the engine retries it and keeps its
effect to one per run and step; the receivers' messages carry the step's key for them to deduplicate."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from automation.actions import ActionContext, action
from automation.alerting.receivers.alertmanager import AlertmanagerWebhookParams
from automation.alerting.receivers.email import EmailParams, compose, deliver
from automation.alerting.receivers.pagerduty import PagerDutyParams, event_body, refusal_detail
from automation.errors import ActionError
from automation.outbound import is_retryable_status, send, shown_url


class WebhookParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    text: str = Field(min_length=1)
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    blocks: list[dict[str, Any]] | None = None
    #: Extra fields merged into the body (they cannot replace `text`).
    fields: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0, le=120)


@action("notification.webhook", params=WebhookParams, outputs=("status_code", "host", "idempotency_key"))
def webhook(ctx: ActionContext, params: WebhookParams) -> dict[str, Any]:
    """POST a Slack-compatible message ({"text": ...}) to a webhook URL."""
    body: dict[str, Any] = {**params.fields, "text": params.text}
    for key in ("channel", "username", "icon_emoji", "blocks"):
        value = getattr(params, key)
        if value is not None:
            body[key] = value
    response = send(ctx, "POST", str(params.url), headers=params.headers, json=body, timeout=params.timeout)
    if response.status_code >= 300:
        raise ActionError(
            f"webhook answered {response.status_code}", retryable=is_retryable_status(response.status_code)
        )
    return {
        "status_code": response.status_code,
        "host": params.url.host,
        "idempotency_key": ctx.idempotency_key,
    }


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@action("notification.pagerduty", params=PagerDutyParams, outputs=("status_code", "dedup_key", "host"))
def pagerduty(ctx: ActionContext, params: PagerDutyParams) -> dict[str, Any]:
    """Send a PagerDuty Events API v2 event (trigger, acknowledge, resolve), deduplicated by fingerprint."""
    dedup_key = params.chosen_dedup_key(ctx.idempotency_key)
    response = send(
        ctx, "POST", str(params.url), json=event_body(params, dedup_key=dedup_key), timeout=params.timeout
    )
    answer = _json(response)
    if not response.is_success:
        detail = refusal_detail(answer, params)
        raise ActionError(
            f"PagerDuty {shown_url(str(params.url))} answered {response.status_code}"
            + (f": {detail}" if detail else ""),
            retryable=is_retryable_status(response.status_code),
        )
    answered = answer.get("dedup_key") if isinstance(answer, dict) else None
    return {
        "status_code": response.status_code,
        "dedup_key": answered if isinstance(answered, str) and answered else dedup_key,
        "host": params.url.host,
    }


@action(
    "notification.alertmanager_webhook",
    params=AlertmanagerWebhookParams,
    outputs=("status_code", "host", "group_key", "alerts", "idempotency_key"),
)
def alertmanager_webhook(ctx: ActionContext, params: AlertmanagerWebhookParams) -> dict[str, Any]:
    """POST a group of alerts as Alertmanager's webhook does (payload version 4) to any receiver of it."""
    url = str(params.url)
    headers = params.sent_headers()
    response = send(ctx, "POST", url, headers=headers, json=params.payload(), timeout=params.timeout)
    if not response.is_success:
        raise ActionError(
            f"webhook {shown_url(url)} answered {response.status_code}",
            retryable=is_retryable_status(response.status_code),
        )
    return {
        "status_code": response.status_code,
        "host": params.url.host,
        "group_key": params.group_key,
        "alerts": len(params.alerts),
        "idempotency_key": ctx.idempotency_key,
    }


@action("notification.email", params=EmailParams, outputs=("message_id", "accepted", "refused", "host"))
def email(ctx: ActionContext, params: EmailParams) -> dict[str, Any]:
    """Send an email over SMTP (plain, STARTTLS or TLS); its Message-ID comes from the step's key."""
    message = compose(params, idempotency_key=ctx.idempotency_key)
    delivery = deliver(params, message)
    return {
        "message_id": message["Message-ID"],
        "accepted": delivery.accepted,
        "refused": delivery.refused,
        "host": params.host,
    }
