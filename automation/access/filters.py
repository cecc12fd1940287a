"""The audit list's filters, parsed from text (API query parameters and CLI options alike)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from automation.access.tokens import parse_duration

MAX_PAGE = 500
DEFAULT_PAGE = 100


@dataclass(frozen=True)
class AuditFilters:
    since: datetime | None = None
    actor: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    before_id: int | None = None
    limit: int = DEFAULT_PAGE


def parse_since(text: str, now: datetime) -> datetime:
    """'1h' (that long ago) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text[:60]}' is neither a duration (1h, 7d) nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_filters(values: dict[str, str], now: datetime) -> tuple[AuditFilters, list[tuple[str, str]]]:
    """The filters and the errors, each naming its field; unknown fields are errors."""
    known = {"since", "actor", "object_type", "object_id", "before", "limit"}
    errors = [(name, "unknown parameter") for name in values if name not in known]
    since = before_id = None
    limit = DEFAULT_PAGE
    if values.get("since"):
        try:
            since = parse_since(values["since"], now)
        except ValueError as exc:
            errors.append(("since", str(exc)))
    for name in ("before", "limit"):
        if values.get(name) is None:
            continue
        text = values[name]
        if not text.isdigit() or len(text) > 18:
            errors.append((name, f"must be a positive integer, not '{text[:40]}'"))
        elif name == "before":
            before_id = int(text)
        elif not 1 <= int(text) <= MAX_PAGE:
            errors.append(("limit", f"must be 1 to {MAX_PAGE}"))
        else:
            limit = int(text)
    filters = AuditFilters(
        since=since,
        actor=values.get("actor") or None,
        object_type=values.get("object_type") or None,
        object_id=values.get("object_id") or None,
        before_id=before_id,
        limit=limit,
    )
    return filters, errors
