"""Which incidents a list asks for (API query, CLI options): status (or `open`), service, since (a
duration ago like `24h`, or an ISO 8601 time), limit. Pure; bad values name their field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from automation.errors import InvalidFieldsError
from automation.incidents.choices import IncidentStatus
from automation.incidents.limits import DEFAULT_LISTED, MAX_LISTED

__all__ = ["IncidentFilter", "STATUS_FILTERS", "parse_at", "parse_filter", "parse_since"]

#: What `status` accepts: a status, or `open` (any active one).
STATUS_FILTERS = (*IncidentStatus.ALL, IncidentStatus.OPEN)
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: Longest service name a filter takes (a longer one names no stored service).
MAX_SERVICE = 200


@dataclass(frozen=True)
class IncidentFilter:
    statuses: tuple[str, ...] | None = None
    service: str | None = None
    since: float | None = None
    limit: int = DEFAULT_LISTED


def parse_since(text: str, now: float) -> float:
    """`30m`, `24h`, `7d`, `1h30m` (that long before `now`) or an ISO 8601 time (UTC unless it says);
    ValueError with the reason otherwise."""
    cleaned = text.strip().lower()
    if _DURATION.match(cleaned):
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", cleaned)
        # a time before the epoch asks for everything; datetimes are not made of those
        return max(0.0, now - sum(float(number) * _UNITS[unit] for number, unit in parts))
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is neither a duration (30m, 24h, 7d) nor an ISO 8601 time") from None
    return max(0.0, (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


#: The latest moment `parse_at` takes (the last second of year 9999).
LATEST = 32503680000.0  # 3000-01-01: on-call times past it overflow the zone arithmetic


def parse_at(text: str | None, now: float) -> float:
    """A moment asked about (`oncall who --at`): an ISO 8601 time (UTC unless it says) or epoch seconds;
    `now` when not given. InvalidFieldsError naming `at` otherwise."""
    if text is None or not text.strip():
        return now
    cleaned = text.strip()
    try:
        moment = float(cleaned)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidFieldsError(
                [("at", f"{text[:40]!r} is neither an ISO 8601 time nor epoch seconds")]
            ) from None
        moment = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    if not 0 <= moment <= LATEST:
        raise InvalidFieldsError([("at", "must be a time from 1970 to 2999")])
    return moment


def parse_filter(
    *,
    status: str | None = None,
    service: str | None = None,
    since: str | None = None,
    limit: str | int | None = None,
    now: float,
) -> IncidentFilter:
    errors: list[tuple[str, str]] = []
    statuses: tuple[str, ...] | None = None
    if status is not None:
        if status == IncidentStatus.OPEN:
            statuses = IncidentStatus.ACTIVE
        elif status in IncidentStatus.ALL:
            statuses = (status,)
        else:
            errors.append(("status", f"must be one of {', '.join(STATUS_FILTERS)}"))
    if service is not None and not 0 < len(service) <= MAX_SERVICE:
        errors.append(("service", f"must be 1 to {MAX_SERVICE} characters"))
    moment = None
    if since is not None:
        try:
            moment = parse_since(since, now)
        except ValueError as exc:
            errors.append(("since", str(exc)))
    count = DEFAULT_LISTED
    if limit is not None:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_LISTED:
            errors.append(("limit", f"must be a whole number from 1 to {MAX_LISTED}"))
    if errors:
        raise InvalidFieldsError(errors)
    return IncidentFilter(statuses, service, moment, count)
