"""A recorded change (a deploy, a config change, a workflow run on a service) as the API and the CLI take it,
checked field by field, and which changes count for root-cause analysis. Pure."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from automation.errors import InvalidFieldsError
from automation.incidents.choices import ChangeKind
from automation.incidents.filters import parse_at
from automation.incidents.limits import MAX_BY, MAX_CHANGE_DESCRIPTION, MAX_CHANGE_KEY
from automation.runs.intake import json_type

__all__ = ["CHANGE_FIELDS", "ChangeRecord", "parse_change"]

#: Fields a change document may carry; `service` and `kind` are required.
#: The prefix of the keys the engine records its own steps' changes under (`run:RUN:STEP`).
ENGINE_KEY_PREFIX = "run:"
CHANGE_FIELDS = ("service", "kind", "description", "at", "actor", "run_id", "key")
#: How far from now a change's time may be: a typo of a year is refused, a clock a little off is not.
MAX_FUTURE_SECONDS = 300.0


@dataclass(frozen=True)
class ChangeRecord:
    service: str
    kind: str
    description: str
    #: Epoch seconds.
    at: float
    actor: str
    run_id: uuid.UUID | None
    #: Empty: not idempotent (each POST records one more change).
    key: str


def _text(
    body: dict[str, Any], name: str, limit: int, errors: list[tuple[str, str]], *, required: bool
) -> str:
    value = body.get(name)
    if value is None:
        if required:
            errors.append((name, "required"))
        return ""
    if not isinstance(value, str):
        errors.append((name, f"must be a string, not {json_type(value)}"))
        return ""
    cleaned = value.strip()
    if required and not cleaned:
        errors.append((name, "must not be empty"))
    elif len(cleaned) > limit:
        errors.append((name, f"must be at most {limit} characters (got {len(cleaned)})"))
    return cleaned


def parse_change(body: Any, *, now: float) -> ChangeRecord:
    """The change a document describes (`at` defaults to now); InvalidFieldsError naming every field at
    fault, so nothing is stored from a half-valid document."""
    if not isinstance(body, dict):
        raise InvalidFieldsError([("(body)", "must be a JSON object")])
    errors = [(name, "unknown field") for name in body if name not in CHANGE_FIELDS]
    service = _text(body, "service", MAX_BY, errors, required=True)
    kind = _text(body, "kind", 32, errors, required=True)
    if kind and kind not in ChangeKind.ALL:
        errors.append(("kind", f"must be one of {', '.join(ChangeKind.ALL)}"))
    description = _text(body, "description", MAX_CHANGE_DESCRIPTION, errors, required=False)
    actor = _text(body, "actor", MAX_BY, errors, required=False)
    key = _text(body, "key", MAX_CHANGE_KEY, errors, required=False)
    if key.startswith(ENGINE_KEY_PREFIX):
        errors.append(("key", f"'{ENGINE_KEY_PREFIX}...' keys are the engine's own (its steps' changes)"))
    at = now
    raw_at = body.get("at")
    if isinstance(raw_at, bool) or not isinstance(raw_at, (str, int, float, type(None))):
        errors.append(("at", "must be an ISO 8601 time or epoch seconds"))
    elif isinstance(raw_at, (int, float)):
        if not math.isfinite(raw_at):
            errors.append(("at", "must be an ISO 8601 time or epoch seconds"))
        else:
            try:
                at = parse_at(str(raw_at), now)
            except InvalidFieldsError as exc:
                errors.extend(exc.errors)
    elif raw_at is not None:
        try:
            at = parse_at(raw_at, now)
        except InvalidFieldsError as exc:
            errors.extend(exc.errors)
    if at > now + MAX_FUTURE_SECONDS:
        errors.append(("at", "must not be in the future"))
    run_id = None
    raw_run = body.get("run_id")
    if raw_run is not None:
        try:
            run_id = uuid.UUID(str(raw_run))
        except ValueError:
            errors.append(("run_id", "must be a run's id (a UUID)"))
    if errors:
        raise InvalidFieldsError(errors)
    return ChangeRecord(service, kind, description, at, actor, run_id, key)
