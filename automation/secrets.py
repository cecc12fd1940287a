"""Masking secrets in what the engine shows: API answers, CLI output and logs never carry them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "********"
_SENSITIVE = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key)", re.IGNORECASE
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
