"""Masking secrets in what the engine shows: API answers, CLI output and logs never carry them.

Two rules. By name: a value under a key that names a secret (`password`, `token`, `routing_key`...) is
masked wherever it is. By place: a notification action (`notification.*`) or an alerting receiver holds
its credential where it sends, so its `url` (a Slack incoming-webhook URL *is* the credential; others
carry `?token=`) and the values of its `headers` are masked too, whatever they hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "********"
_SENSITIVE = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|routing[_-]?key|authorization|cookie|credential|private[_-]?key)",
    re.IGNORECASE,
)


def is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE.search(name))


def _hidden(key: str, item: Any, secret_names: frozenset[str]) -> bool:
    return (key in secret_names or is_sensitive(key)) and item not in (None, "")


def mask(value: Any, *, secret_names: frozenset[str] = frozenset()) -> Any:
    """A copy of `value` with the values under sensitive keys (or keys in `secret_names`) masked."""
    if isinstance(value, Mapping):
        return {
            key: MASK if _hidden(str(key), item, secret_names) else mask(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask(item) for item in value]
    return value


#: Parameters of notification actions and receivers masked by place (besides the rule by name).
NOTIFICATION_SECRETS = frozenset({"url", "routing_key", "password", "bearer_token"})


def mask_notification(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a notification action (or a receiver's settings) as shown: masked by name, and
    their `url`, `routing_key`, `password`, `bearer_token` and every value of `headers` (names kept)."""
    shown: dict[str, Any] = mask(parameters, secret_names=NOTIFICATION_SECRETS)
    headers = parameters.get("headers")
    if isinstance(headers, Mapping):
        shown["headers"] = {str(name): MASK for name in headers}
    return shown


def is_notification(action_type: str) -> bool:
    return action_type.startswith("notification.")


def mask_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A workflow definition document (as stored) as shown: masked by name, and each notification
    action's parameters by place (`mask_notification`)."""
    shown: dict[str, Any] = mask(definition)
    actions = definition.get("actions")
    if isinstance(actions, list):
        shown["actions"] = [_masked_action(action) for action in actions]
    return shown


def _masked_action(action: Any) -> Any:
    if not isinstance(action, Mapping):
        return mask(action)
    shown: dict[str, Any] = mask(action)
    kind, name = str(action.get("action_type", "")), str(action.get("name", ""))
    resolved = kind if "." in kind else f"{kind}.{name}"
    parameters = action.get("parameters")
    if is_notification(resolved) and isinstance(parameters, Mapping):
        shown["parameters"] = mask_notification(parameters)
    return shown


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each (non-empty) secret replaced by the mask: for messages that
    quote a peer's answer, which may echo what it was sent."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
