"""The audit log's view of an object's state: a sha256 of canonical JSON, and a small summary; no secrets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from automation.secrets import mask

#: How many changed top-level fields a summary names.
SUMMARY_FIELDS = 20


def canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def state_digest(state: Any) -> str:
    """sha256 of the canonical JSON of the state ('' for no state: created or deleted)."""
    if state is None:
        return ""
    return hashlib.sha256(canonical(mask(state)).encode("utf-8", "surrogatepass")).hexdigest()


def summary(before: Any, after: Any, note: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Which top-level fields changed (names only, never values), plus the caller's note."""
    shown: dict[str, Any] = {}
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        shown["changed"] = changed[:SUMMARY_FIELDS]
    elif before is None and after is not None:
        shown["created"] = True
    elif after is None and before is not None:
        shown["deleted"] = True
    if note:
        shown.update(mask(dict(note)))
    return shown
