"""Silences: created with matchers and a time range, expired early by hand, read (cached briefly) by the
pipeline."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.alerting.limits import MAX_COMMENT, MAX_CREATED_BY
from automation.alerting.matchers import MatcherError, matcher_dicts, matchers_from_dicts, parse_matchers
from automation.alerting.series import Matcher
from automation.alerting.services.alerts import at
from automation.alerting.silencing import ActiveSilence
from automation.errors import InvalidFieldsError, NotFoundError, StateError
from automation.models import Silence

_CACHE_SECONDS = 2.0
_cache: tuple[float, list[ActiveSilence]] | None = None
MAX_SILENCE = 366 * 86_400.0


def create_silence(
    *, matchers: Any, starts_at: float, ends_at: float, created_by: str, comment: str, now: float
) -> Silence:
    errors: list[tuple[str, str]] = []
    parsed: tuple[Matcher, ...] = ()
    try:
        parsed = parse_matchers(matchers)
    except MatcherError as exc:
        errors.append(("matchers", str(exc)))
    if not errors and not parsed:
        errors.append(("matchers", "at least one matcher is required (a silence of everything is refused)"))
    if ends_at <= starts_at:
        errors.append(("ends_at", "must be after starts_at"))
    elif ends_at - starts_at > MAX_SILENCE:
        errors.append(("ends_at", "a silence lasts at most 366 days"))
    if ends_at <= now:
        errors.append(("ends_at", "is in the past"))
    for name, text, limit in (("created_by", created_by, MAX_CREATED_BY), ("comment", comment, MAX_COMMENT)):
        if not isinstance(text, str) or not text.strip():
            errors.append((name, "is required: a non-empty string"))
        elif len(text) > limit or "\x00" in text:
            errors.append((name, f"must be at most {limit} characters, without NUL"))
    if errors:
        raise InvalidFieldsError(errors)
    with transaction.atomic():
        silence = Silence.objects.create(
            matchers=matcher_dicts(parsed),
            starts_at=at(starts_at),
            ends_at=at(ends_at),
            created_by=created_by,
            comment=comment,
        )
        audit.record("silence.created", "silence", silence.pk, after=_state(silence))
    _forget()
    return silence


def expire_silence(silence_id: str, now: float) -> Silence:
    try:
        uuid.UUID(str(silence_id))
    except ValueError:
        raise InvalidFieldsError([("silence_id", f"'{silence_id}' is not a silence id (a UUID)")]) from None
    silence = Silence.objects.filter(pk=silence_id).first()
    if silence is None:
        raise NotFoundError(f"silence {silence_id} does not exist")
    if silence.ends_at.timestamp() <= now:
        raise StateError(f"silence {silence_id} has already expired")
    before = _state(silence)
    with transaction.atomic():
        Silence.objects.filter(pk=silence_id).update(ends_at=at(now))
        silence.refresh_from_db()
        audit.record("silence.expired", "silence", silence.pk, before=before, after=_state(silence))
    _forget()
    return silence


def _state(silence: Silence) -> dict[str, Any]:
    return {
        "matchers": silence.matchers,
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def active_silences(now: float) -> list[ActiveSilence]:
    global _cache
    clock = time.monotonic()
    if _cache is None or clock - _cache[0] >= _CACHE_SECONDS:
        rows = Silence.objects.filter(ends_at__gt=at(now)).values_list(
            "id", "matchers", "starts_at", "ends_at"
        )
        found = [
            ActiveSilence(str(sid), matchers_from_dicts(m), start.timestamp(), end.timestamp())
            for sid, m, start, end in rows
        ]
        _cache = (clock, found)
    return [s for s in _cache[1] if s.ends_at > now]


def _forget() -> None:
    global _cache
    _cache = None
