"""Masking secrets in what the engine shows: API answers, CLI output and logs never carry them."""

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


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each (non-empty) secret replaced by the mask: for messages that
    quote a peer's answer, which may echo what it was sent."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
