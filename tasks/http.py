"""`http.request`: call any HTTP endpoint, with the step's idempotency key."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from automation.actions import ActionContext, action
from automation.errors import ActionError
from automation.outbound import MAX_TEXT, is_retryable_status, masked_headers, send, shown_url


class RequestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, str | int | float | bool] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    timeout: float = Field(default=10.0, gt=0, le=600)
    #: Statuses that count as success; anything else fails the step (5xx, 408, 425, 429 are retried).
    expected_status: list[int] = Field(default_factory=lambda: list(range(200, 300)))


@action(
    "http.request",
    params=RequestParams,
    outputs=("status_code", "headers", "text", "json (when the answer is JSON)"),
)
def request(ctx: ActionContext, params: RequestParams) -> dict[str, Any]:
    """Send an HTTP request; output: status_code, headers, json (when the body is JSON), text."""
    headers = {key: str(value) for key, value in params.headers.items()}
    response = send(
        ctx, params.method, str(params.url), headers=headers, json=params.json_body, timeout=params.timeout
    )
    if response.status_code not in params.expected_status:
        raise ActionError(
            f"{params.method} {shown_url(str(params.url))} answered {response.status_code}",
            retryable=is_retryable_status(response.status_code),
        )
    output: dict[str, Any] = {
        "status_code": response.status_code,
        "headers": masked_headers(response.headers),
        "text": response.text[:MAX_TEXT],
    }
    if "json" in response.headers.get("content-type", ""):
        try:
            output["json"] = response.json()
        except ValueError:
            pass
    return output
