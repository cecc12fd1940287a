"""What a message must look like before a worker accepts it: the transport's envelope and Celery's
task headers. A message that fails here is set aside, never handed on: past this point a malformed
field raises inside Celery's or kombu's machinery, where it can end the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

#: What the transport needs to know where a message goes back to.
ROUTING = ("exchange", "routing_key")


class MalformedMessage(ValueError):
    """A message the worker cannot accept, with what is wrong with it."""


def decode_envelope(raw: Any) -> dict[str, Any]:
    """The envelope as JSON, or MalformedMessage."""
    try:
        payload = loads(bytes_to_str(raw))
    except (TypeError, ValueError) as exc:
        raise MalformedMessage(f"not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedMessage(f"envelope is a {type(payload).__name__}, not an object")
    return payload


def check_envelope(payload: Any) -> None:
    properties = payload.get("properties") if isinstance(payload, dict) else None
    if not isinstance(properties, dict):
        raise MalformedMessage("envelope has no properties")
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise MalformedMessage("properties.delivery_tag is not a non-empty string")
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(isinstance(info.get(key), str) for key in ROUTING):
        raise MalformedMessage("properties.delivery_info has no exchange and routing_key")
    headers = payload.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise MalformedMessage("headers are not an object")
    if headers and "task" in headers:
        check_task_headers(headers)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_task_headers(headers: dict[str, Any]) -> None:
    """Celery's protocol 2 headers that it converts later, in places that cannot refuse a message."""
    problems = []
    if not isinstance(headers.get("task"), str):
        problems.append("task is not a string")
    if not isinstance(headers.get("id"), str) or not headers.get("id"):
        problems.append("id is not a non-empty string")
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, list | tuple) and len(limits) == 2 and all(v is None or _number(v) for v in limits)
    ):
        problems.append("timelimit is not two numbers or nulls")
    for name in ("eta", "expires"):
        value = headers.get(name)
        if value is not None and not _time(value) and not (name == "expires" and _number(value)):
            problems.append(f"{name} is not a date-time")
    retries = headers.get("retries")
    if retries is not None and not (isinstance(retries, int) and not isinstance(retries, bool)):
        problems.append("retries is not an integer")
    for name in ("root_id", "parent_id", "group"):
        value = headers.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(f"{name} is not a string")
    if problems:
        raise MalformedMessage("task headers: " + "; ".join(problems))
