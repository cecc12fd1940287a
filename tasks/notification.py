"""Notification actions: `notification.webhook` posts a Slack-compatible JSON body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from automation.actions import ActionContext, action
from automation.errors import ActionError
from automation.outbound import is_retryable_status, send


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
