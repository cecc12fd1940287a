"""Sizes the HTTP API accepts: a request body, and the free-text fields of cancel and approval requests."""

from __future__ import annotations

from automation.runs.intake import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_INPUTS_BYTES

#: Largest request body; a definition or a run request is far smaller (inputs are bounded to 64 KiB).
MAX_BODY_BYTES = 1024 * 1024

#: Longest value, in characters, of each free-text field.
TEXT_LIMITS = {"reason": 1000, "by": 200, "comment": 2000}

__all__ = ["MAX_BODY_BYTES", "MAX_IDEMPOTENCY_KEY_LENGTH", "MAX_INPUTS_BYTES", "TEXT_LIMITS"]
