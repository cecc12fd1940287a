"""Masking secrets in what the engine shows: API answers, CLI output and logs never carry them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "********"
_SENSITIVE = re.compile(r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key)",
                        re.IGNORECASE)


def is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE.search(name))


def mask(value: Any, *, secret_names: frozenset[str] = frozenset()) -> Any:
    """A copy of `value` with the values under sensitive keys (or keys in `secret_names`) masked."""
    if isinstance(value, Mapping):
        return {
            key: MASK if (key in secret_names or is_sensitive(str(key))) and item not in (None, "") else mask(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask(item) for item in value]
    return value
