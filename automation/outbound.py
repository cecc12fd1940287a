"""Outbound HTTP for actions: the stable Idempotency-Key header, retryable statuses, masked headers."""

from __future__ import annotations

from typing import Any

import httpx

from automation.actions import ActionContext
from automation.errors import ActionError
from automation.secrets import mask

MAX_TEXT = 64 * 1024


def masked_headers(headers: Any) -> dict[str, str]:
    masked: dict[str, str] = mask(dict(headers))
    return masked


def send(
    ctx: ActionContext,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
    content: str | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """Send one request carrying `Idempotency-Key: <run_id>:<step>`; transport errors are retryable.

    Errors name the URL by scheme and host only: a path or query may hold a credential (webhooks, tokens).
    """
    shown = shown_url(url)
    sent = {"Idempotency-Key": ctx.idempotency_key, "User-Agent": "automation-engine/0.1"}
    sent.update(headers or {})
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            return client.request(method, url, headers=sent, json=json, content=content)
    except httpx.TimeoutException as exc:
        raise ActionError(f"{method} {shown}: timed out after {timeout} s ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        detail = str(exc).replace(url, shown)
        raise ActionError(f"{method} {shown}: {type(exc).__name__}: {detail}") from None


def shown_url(url: str) -> str:
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}/…"


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)
